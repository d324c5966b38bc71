"""End to end on real scanner DICOM: ingest → convert → validate, compared with references."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import dataset_heads, git_head, git_status, rerun_onto_parent, run_windl, study_path


def _voxels(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj)


def _annex_keys(ds: Path, pattern: str) -> dict[str, str]:
    return {
        str(p.relative_to(ds)): Path(p.readlink()).name
        for p in sorted(ds.glob(pattern))
        if p.is_symlink()
    }


@pytest.fixture(scope="module")
def nih_site(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A site whose study holds GE (sub-01) and Siemens (sub-02) of dcm_qa_nih, converted."""
    site = tmp_path_factory.mktemp("nih") / "site"
    run_windl("site", "init", site)
    run_windl("study", "create", "study1", "--site", site)
    nih = data / "dcm_qa_nih" / "In"
    run_windl("ingest", "study1", nih / "20180918GE", "--subject", "01", "--site", site)
    run_windl("ingest", "study1", nih / "20180918Si", "--subject", "02", "--site", site)
    run_windl("convert", "study1", "--site", site)
    return site


# GE series 4..7 → Ref/DCM2NIIX_regression_test_N; Siemens 3..6 → Ref/EPI_PE=XX_N
NIH_REFERENCES = [
    *[("01", n, f"DCM2NIIX_regression_test_{n}.nii") for n in (4, 5, 6, 7)],
    ("02", 3, "EPI_PE=AP_3.nii"),
    ("02", 4, "EPI_PE=PA_4.nii"),
    ("02", 5, "EPI_PE=RL_5.nii"),
    ("02", 6, "EPI_PE=LR_6.nii"),
]


@pytest.mark.parametrize(("subject", "series", "reference"), NIH_REFERENCES)
def test_dcm_qa_nih_bids_images_are_voxel_identical_to_reference(
    nih_site: Path, data: Path, subject: str, series: int, reference: str
) -> None:
    study = study_path(nih_site)
    matches = sorted(study.glob(f"sub-{subject}/func/sub-{subject}_*_run-{series}_bold.nii.gz"))
    assert len(matches) == 1, matches
    ours = _voxels(matches[0])
    ref = _voxels(data / "dcm_qa_nih" / "Ref" / reference)
    assert ours.shape == ref.shape
    assert np.array_equal(ours, ref)
    sidecar = json.loads(
        matches[0].with_name(matches[0].name.replace(".nii.gz", ".json")).read_text()
    )
    ref_sidecar = json.loads(
        (data / "dcm_qa_nih" / "Ref" / reference.replace(".nii", ".json")).read_text()
    )
    for key in ("RepetitionTime", "EchoTime", "SliceTiming", "PhaseEncodingDirection"):
        if key in ref_sidecar:
            assert sidecar[key] == pytest.approx(ref_sidecar[key]), key
    assert sidecar["TaskName"]


def test_dcm_qa_nih_study_passes_bids_validator(nih_site: Path) -> None:
    proc = run_windl("validate", "study1", "--site", nih_site, "--json")
    report = json.loads(proc.stdout)
    assert report["errors"] == {}
    assert report["commit"] == git_head(study_path(nih_site))
    # the result is stored with the commit it refers to
    note = subprocess.run(
        ["git", "-C", str(study_path(nih_site)), "notes", "--ref=windl/validation", "show", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(note)["commit"] == report["commit"]


def test_conversion_is_recorded_as_datalad_run_with_inputs_and_outputs(nih_site: Path) -> None:
    study = study_path(nih_site)
    log = subprocess.run(
        [
            "git",
            "-C",
            str(study),
            "log",
            "--format=%B",
            "-n",
            "1",
            "--grep=sub-01",
            "--grep=RUNCMD",
            "--all-match",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    record = json.loads(log.split("=== Do not change lines below ===")[1].split("^^^")[0])
    assert record["cmd"].startswith("WINDL_PLAN_OUT=")
    assert "heudiconv" in record["cmd"] and "-c dcm2niix" in record["cmd"]
    assert record["inputs"] == ["sourcedata/sub-01/dicom"]
    assert "sub-01" in record["outputs"]


def test_conversion_record_lists_every_series(nih_site: Path) -> None:
    tsv = (study_path(nih_site) / "code" / "conversion" / "sub-02.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in tsv[1:]]
    assert sorted(r[0] for r in rows) == ["3", "4", "5", "6"]
    assert all(r[5] == "converted" for r in rows)


def test_ingest_and_convert_again_make_no_new_commit(nih_site: Path, data: Path) -> None:
    before = dataset_heads(nih_site)
    again = run_windl(
        "ingest",
        "study1",
        data / "dcm_qa_nih" / "In" / "20180918GE",
        "--subject",
        "01",
        "--site",
        nih_site,
    )
    assert "nothing new" in again.stdout
    converted = run_windl("convert", "study1", "--site", nih_site)
    assert converted.stdout.count("up to date") == 2
    assert dataset_heads(nih_site) == before
    assert git_status(study_path(nih_site)) == ""


def test_datalad_rerun_reproduces_the_same_annexed_keys(nih_site: Path, tmp_path: Path) -> None:
    study = study_path(nih_site)
    original = _annex_keys(study, "sub-01/func/*.nii.gz")
    assert len(original) == 4
    # rerun on a branch that starts before the conversion: outputs are written from scratch
    rerun_onto_parent(study, "convert: sub-01", "rerun-check")
    assert _annex_keys(study, "sub-01/func/*.nii.gz") == original
    assert git_status(study) == ""


def test_conversion_leaves_no_temporary_files_with_header_dumps(
    site: Path, data: Path, tmp_path: Path
) -> None:
    """heudiconv writes DICOM header dumps (patient data) into the run's {tmpdir}."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}
    run_windl(
        "ingest",
        "study1",
        data / "dcm_qa_nih/In/20180918Si",
        "--subject",
        "01",
        "--site",
        site,
        env=env,
    )
    run_windl("convert", "study1", "--site", site, env=env)
    assert list(scratch.iterdir()) == []
    assert not list((study_path(site) / ".git" / "windl").glob("run-tmp/*"))
