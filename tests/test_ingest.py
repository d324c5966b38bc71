"""Ingest: content-based recognition, layout, idempotence, and crash safety (SIGKILL)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import dataset_heads, git_status, run_killed_at, run_windl, study_path


def _sourcedata(site: Path) -> Path:
    return study_path(site) / "sourcedata"


def test_dicom_without_extension_is_recognised_and_non_image_dicom_kept(
    site: Path, data: Path
) -> None:
    proc = run_windl(
        "ingest",
        "study1",
        data / "heudiconv_testdata" / "data",
        "--subject",
        "01",
        "--json",
        "--site",
        site,
    )
    result = json.loads(proc.stdout)
    kinds = {s["description"]: s["kind"] for s in result["series"]}
    assert kinds["PhoenixZIPReport"] == "non-image"
    assert kinds["BOLD MOSAIC 64 resting"] == "image"  # XA60 files named MRe.<uid>, no extension
    src = _sourcedata(site) / "sub-01"
    assert len(list((src / "dicom-nonimage").rglob("*.dcm"))) == 1
    xa60 = [p for p in (src / "dicom").rglob("MRe.*")]
    assert len(xa60) == 2
    # non-DICOM fixtures are kept, byte for byte, but apart from the DICOM
    assert (src / "misc" / "sample_nifti.nii.gz").exists()
    original = (data / "heudiconv_testdata" / "data" / "phantom.dcm").read_bytes()
    assert next((src / "dicom").rglob("phantom.dcm")).read_bytes() == original
    assert git_status(_sourcedata(site)) == ""


def test_non_image_dicom_is_never_converted(site: Path, data: Path) -> None:
    run_windl(
        "ingest", "study1", data / "heudiconv_testdata" / "data", "--subject", "01", "--site", site
    )
    proc = run_windl("convert", "study1", "--site", site, "--json")
    (session,) = json.loads(proc.stdout)
    descriptions = {s["description"] for s in session["series"]}
    assert "PhoenixZIPReport" not in descriptions
    reasons = {
        s["description"]: s["reason"] for s in session["series"] if s["status"] != "converted"
    }
    # the interrupted XA60 run is reported with why, not crashed on
    assert "interrupted" in reasons["BOLD MOSAIC 64 resting"]
    assert "localizer" in reasons["AAHead_Scout"]


@pytest.mark.parametrize("number", range(1, 10))
def test_every_transfer_syntax_of_dcm_qa_ts_is_accepted(
    site: Path, data: Path, tmp_path: Path, number: int
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / f"{number}.dcm").write_bytes(
        (data / "dcm_qa_ts" / "In" / f"{number}.dcm").read_bytes()
    )
    proc = run_windl("ingest", "study1", folder, "--subject", "01", "--site", site, "--json")
    assert json.loads(proc.stdout)["added"] == 1


def test_transfer_syntaxes_convert_to_the_reference_voxels(site: Path, data: Path) -> None:
    import nibabel as nib
    import numpy as np

    run_windl("ingest", "study1", data / "dcm_qa_ts" / "In", "--subject", "01", "--site", site)
    run_windl("convert", "study1", "--site", site)
    for number in range(1, 10):
        (ours,) = study_path(site).glob(f"sub-01/func/*_run-{number}_sbref.nii.gz")
        ref = data / "dcm_qa_ts" / "Ref" / f"{number}.nii"
        assert np.array_equal(
            np.asanyarray(nib.load(ours).dataobj), np.asanyarray(nib.load(ref).dataobj)
        )


def test_unsupported_transfer_syntax_is_refused_with_its_name(
    site: Path, data: Path, tmp_path: Path
) -> None:
    import pydicom

    ds = pydicom.dcmread(data / "dcm_qa_ts" / "In" / "9.dcm")  # encapsulated (JPEG 2000)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # HTJ2K Lossless
    folder = tmp_path / "in"
    folder.mkdir()
    ds.save_as(folder / "htj2k.dcm", enforce_file_format=True)
    before = dataset_heads(site)
    proc = run_windl("ingest", "study1", folder, "--subject", "01", "--site", site, check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "htj2k.dcm" in line and "1.2.840.10008.1.2.4.201" in line
    assert dataset_heads(site) == before


def test_ingest_layout_is_per_subject_session_and_series(site: Path, data: Path) -> None:
    run_windl(
        "ingest",
        "study1",
        data / "dcm_qa_nih" / "In" / "20180918Si",
        "--subject",
        "sub-07",
        "--session",
        "pre",
        "--site",
        site,
    )
    series = sorted(p.name for p in (_sourcedata(site) / "sub-07" / "ses-pre" / "dicom").iterdir())
    assert [s.split("-", 1)[0] for s in series] == ["003", "004", "005", "006"]


def test_reingest_of_same_files_under_other_names_adds_nothing(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    run_windl("ingest", "study1", source, "--subject", "01", "--site", site)
    before = dataset_heads(site)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for i, f in enumerate(sorted(source.rglob("*.dcm"))):
        (renamed / f"file{i}").write_bytes(f.read_bytes())
    proc = run_windl("ingest", "study1", renamed, "--subject", "01", "--site", site)
    assert "nothing new" in proc.stdout
    assert dataset_heads(site) == before


def test_second_session_keeps_the_first(site: Path, data: Path) -> None:
    nih = data / "dcm_qa_nih" / "In"
    run_windl(
        "ingest", "study1", nih / "20180918Si", "--subject", "01", "--session", "a", "--site", site
    )
    run_windl(
        "ingest", "study1", nih / "20180918Si", "--subject", "01", "--session", "b", "--site", site
    )
    src = _sourcedata(site) / "sub-01"
    assert (
        len(list((src / "ses-a").rglob("*.dcm"))) == len(list((src / "ses-b").rglob("*.dcm"))) == 8
    )
    assert git_status(study_path(site)) == ""


def test_zip_and_tar_sources_are_ingested_like_folders(
    site: Path, data: Path, tmp_path: Path
) -> None:
    import shutil

    folder = data / "dcm_qa_nih" / "In" / "20180918Si"
    archive = shutil.make_archive(str(tmp_path / "si"), "zip", folder)
    tarball = shutil.make_archive(str(tmp_path / "si"), "gztar", folder)
    run_windl("ingest", "study1", archive, "--subject", "01", "--session", "zip", "--site", site)
    run_windl("ingest", "study1", tarball, "--subject", "01", "--session", "tar", "--site", site)
    src = _sourcedata(site) / "sub-01"
    zipped = sorted(p.relative_to(src / "ses-zip") for p in (src / "ses-zip").rglob("*.dcm"))
    tarred = sorted(p.relative_to(src / "ses-tar") for p in (src / "ses-tar").rglob("*.dcm"))
    assert zipped == tarred and len(zipped) == 8
    assert git_status(_sourcedata(site)) == ""


# --------------------------------------------------------------------------- crash safety
@pytest.mark.parametrize("point", ["scanned", "staged", "annexed", "committed"])
def test_ingest_killed_leaves_datasets_unchanged_and_rerun_completes(
    site: Path, data: Path, tmp_path: Path, point: str
) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918GE"
    before = dataset_heads(site)
    run_killed_at(["ingest", "study1", source, "--subject", "01", "--site", site], point, tmp_path)
    assert dataset_heads(site) == before
    assert git_status(study_path(site)) == ""
    assert git_status(_sourcedata(site)) == ""
    assert not (_sourcedata(site) / "sub-01").exists()  # no partial files in the dataset
    run_windl("ingest", "study1", source, "--subject", "01", "--site", site)
    assert len(list((_sourcedata(site) / "sub-01" / "dicom").rglob("*.dcm"))) == 600
    assert git_status(_sourcedata(site)) == "" and git_status(study_path(site)) == ""
    assert not any((_sourcedata(site) / ".git" / "windl" / "txn").glob("*"))


def test_ingest_killed_after_its_commit_is_recorded_upwards_by_the_next_run(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    run_killed_at(
        ["ingest", "study1", source, "--subject", "01", "--site", site], "merged", tmp_path
    )
    # the raw data is committed in the new subject's dataset, now in its place; only the
    # record of it in sourcedata (and upwards) is behind
    assert git_status(_sourcedata(site) / "sub-01") == ""
    assert "sub-01" in git_status(_sourcedata(site))  # not registered yet
    run_windl("ingest", "study1", source, "--subject", "02", "--site", site)
    for parent in (_sourcedata(site), study_path(site), site / "superdataset"):
        assert git_status(parent) == ""
    heads = dataset_heads(site)
    for parent, child, head in (
        (_sourcedata(site), "sub-01", heads["sourcedata/sub-01"]),
        (study_path(site), "sourcedata", heads["sourcedata"]),
    ):
        recorded = subprocess.run(
            ["git", "-C", str(parent), "ls-tree", "HEAD", child],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert recorded[:1] == ["160000"] and recorded[2] == head


def test_ingested_content_passes_git_annex_fsck(site: Path, data: Path) -> None:
    run_windl(
        "ingest", "study1", data / "heudiconv_testdata" / "data", "--subject", "01", "--site", site
    )
    src = _sourcedata(site) / "sub-01"  # the subject's own dataset
    fsck = subprocess.run(
        ["git", "annex", "fsck", "--json"], cwd=src, capture_output=True, text=True, check=True
    )
    results = [json.loads(line) for line in fsck.stdout.splitlines()]
    assert len(results) == 13  # 9 DICOM + 4 other files, all annexed
    assert all(r["success"] for r in results)
    whereis = subprocess.run(
        ["git", "annex", "whereis", "--json", "dicom"],
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(len(json.loads(line)["whereis"]) == 1 for line in whereis.stdout.splitlines())
