"""Conversion of public scanner data beyond ``../shared/data`` (issue 23, DICOM part).

The inputs come from the public corpus (``benchmarks/corpus.py``: neurolabusc's
``dcm_qa_*`` repositories) and pydicom's own public test files. Where a case exists in
no public file (dates anonymised to ``***``, a GE ``PatientSex`` of ``0``) a real series is
copied with only those header values changed.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from windl.convert.headers import classify, series_headers
from windl.convert.heuristic import decide

from conftest import dataset_heads, git_out, git_status, rerun_onto_parent, run_windl, study_path

Corpus = Callable[[str], Path]


def _copy(source: Path, into: Path, **changes: str) -> Path:
    """Copy a series (``.gz`` files decompressed), setting header ``changes`` in each file."""
    into.mkdir(parents=True, exist_ok=True)
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        rel = path.relative_to(source) if path != source else Path(path.name)
        target = into / rel.with_name(path.stem if path.suffix == ".gz" else path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        if changes:
            ds = pydicom.dcmread(target)
            for keyword, value in changes.items():
                if keyword in ds:
                    ds[keyword].value = value
            ds.save_as(target)
    return into


def _records(site: Path, subject: str) -> list[dict[str, str]]:
    path = study_path(site) / "code" / "conversion" / f"sub-{subject}.tsv"
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _voxels(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj)


def _bvals(path: Path) -> list[float]:
    return [float(v) for v in path.read_text().split()]


# ------------------------------------------------------- heudiconv fails on one series
_STARRED = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


@pytest.fixture(scope="module")
def starred_site(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus) -> Path:
    """GE DTI: series 2 with its dates ``***`` (and sex ``0``, age ``010W``), series 3 intact."""
    ge = corpus("dcm_qa_ge") / "In"
    base = tmp_path_factory.mktemp("starred")
    raw = base / "raw"
    changes = {k: "***" for k in _STARRED} | {"PatientSex": "0", "PatientAge": "010W"}
    _copy(ge / "02_Ax_DWI_TENSOR_R3", raw / "02", **changes)
    _copy(ge / "03_Ax_DWI_TENSOR_R1p5", raw / "03", PatientSex="0", PatientAge="010W")
    site = base / "site"
    run_windl("site", "init", site)
    run_windl("study", "create", "study1", "--site", site)
    run_windl("ingest", "study1", raw, "--subject", "01", "--site", site)
    run_windl("convert", "study1", "--site", site)
    return site


def test_series_heudiconv_fails_on_is_converted_by_dcm2niix(
    starred_site: Path, corpus: Corpus
) -> None:
    study = study_path(starred_site)
    ref = corpus("dcm_qa_ge") / "Ref"
    rows = {r["series"]: r for r in _records(starred_site, "01")}
    assert rows["2"]["status"] == "converted", rows
    assert "Unable to parse datetime string: ***" in rows["2"]["reason"]
    assert "dcm2niix alone" in rows["2"]["reason"]
    assert rows["3"]["status"] == "converted" and "heudiconv failed" not in rows["3"]["reason"]
    for series, reference in (("2", "Ax_DWI_TENSOR_R3_2"), ("3", "Ax_DWI_TENSOR_R1p5_3")):
        (nifti,) = (study / n for n in rows[series]["bids_name"].split(","))
        assert nifti.parent.name == "dwi" and nifti.name.endswith("_dwi.nii.gz")
        assert np.array_equal(_voxels(nifti), _voxels(ref / f"{reference}.nii"))
        ours = nifti.with_name(nifti.name.replace(".nii.gz", ".bval"))
        assert _bvals(ours) == _bvals(ref / f"{reference}.bval")
    scans = (study / "sub-01" / "sub-01_scans.tsv").read_text()
    assert all(rows[s]["bids_name"].removeprefix("sub-01/") in scans for s in ("2", "3"))


def test_fallback_keeps_one_run_record_and_reruns_identically(starred_site: Path) -> None:
    study = study_path(starred_site)
    runs = git_out(study, "log", "--format=%s", "--grep=DATALAD RUNCMD").splitlines()
    assert len(runs) == 1, runs
    keys = {p.name: p.readlink().name for p in sorted(study.glob("sub-01/dwi/*.nii.gz"))}
    assert len(keys) == 2
    rerun_onto_parent(study, "convert: sub-01", "rerun-check")
    assert {p.name: p.readlink().name for p in sorted(study.glob("sub-01/dwi/*.nii.gz"))} == keys
    assert git_status(study) == ""


def test_sex_zero_and_age_in_weeks_are_normalised(starred_site: Path) -> None:
    study = study_path(starred_site)
    with (study / "participants.tsv").open(newline="") as fh:
        (row,) = list(csv.DictReader(fh, delimiter="\t"))
    assert row["participant_id"] == "sub-01"
    assert row["sex"] == "n/a"  # GE's 0 is no level participants.json declares
    assert row["age"] == "0.19"  # 10 weeks
    proc = run_windl("validate", "study1", "--site", starred_site, "--json")
    assert json.loads(proc.stdout)["errors"] == {}


def test_own_heuristic_is_not_bypassed_by_the_fallback(
    site: Path, tmp_path: Path, corpus: Corpus
) -> None:
    """With a study's own heuristic, a series heudiconv fails on is listed, not renamed."""
    study = study_path(site)
    (study / "code" / "heuristic.py").write_text(
        "import windl.convert.heuristic as windl_default\n\n"
        "infotodict = windl_default.infotodict\n"
        "custom_seqinfo = windl_default.custom_seqinfo\n"
    )
    git_out(study, "commit", "-qm", "own heuristic", "code/heuristic.py")
    ge = corpus("dcm_qa_ge") / "In" / "02_Ax_DWI_TENSOR_R3"
    raw = _copy(ge, tmp_path / "raw", **{k: "***" for k in _STARRED})
    run_windl("ingest", "study1", raw, "--subject", "01", "--site", site)
    proc = run_windl("convert", "study1", "--site", site, check=False)
    assert proc.returncode != 0
    (row,) = _records(site, "01")
    assert row["status"] == "not converted"
    assert "Unable to parse datetime string" in row["reason"]
    assert "own heuristic" in row["reason"]
    assert not list((study / "sub-01").rglob("*.nii.gz"))


# ------------------------------------------------------- headers when BidsGuess is silent
@pytest.mark.parametrize(
    ("repo", "series", "datatype", "suffix"),
    [
        ("dcm_qa_ge", "In/02_Ax_DWI_TENSOR_R3", "dwi", "dwi"),
        ("dcm_qa_toshiba", "In/Galan/8006_DTI_AX_30d", "dwi", "dwi"),
        ("dcm_qa_philips_dwi", "In/cl/DICOM", "dwi", "dwi"),
        ("dcm_qa_ge", "In/05_3D_Ax_T1_MP_RAGE_R22", "anat", "T1w"),
        ("dcm_qa_ge", "In/SliceTiming/4_Ax_fMRI_HB8_80sl_int_asc", "func", "bold"),
    ],
)
def test_headers_classify_real_series(
    corpus: Corpus, tmp_path: Path, repo: str, series: str, datatype: str, suffix: str
) -> None:
    folder = _copy(corpus(repo) / series, tmp_path / "series")
    found = classify(series_headers([str(p) for p in sorted(folder.iterdir())]))
    assert (found.datatype, found.suffix) == (datatype, suffix), found


def test_classic_philips_dti_is_dwi_whatever_the_guess(corpus: Corpus, tmp_path: Path) -> None:
    """b-values in the headers beat a BidsGuess of T2w (issue 23)."""
    folder = _copy(corpus("dcm_qa_philips_dwi") / "In" / "cl" / "DICOM", tmp_path / "dti")
    headers = series_headers([str(p) for p in sorted(folder.iterdir())])
    base = dict(series_id="701-DTI", series_number="701", description="DTI", files=544, dims="")
    plan = decide(base, "DTI", (("anat", "_T2w"),), headers, None)
    assert plan.target is not None and plan.target.endswith(
        "/dwi/{bids_subject_session_prefix}_dwi"
    )
    assert "b-values" in plan.reason


@pytest.mark.parametrize(
    "name", ["MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"]
)
def test_series_without_bidsguess_is_named_from_its_headers(
    site: Path, tmp_path: Path, name: str
) -> None:
    """pydicom's public MR_small (SE, TR 4000, TE 240), plain, JPEG-LS and JPEG 2000.

    dcm2niix guesses nothing for it.
    """
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(get_testdata_file(name), raw / "mr.dcm")
    ds = pydicom.dcmread(raw / "mr.dcm")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]  # it says DERIVED, which windl skips
    ds.save_as(raw / "mr.dcm")
    run_windl("ingest", "study1", raw, "--subject", "01", "--site", site)
    run_windl("convert", "study1", "--site", site)
    (row,) = _records(site, "01")
    assert row["status"] == "converted", row
    assert row["bids_name"].endswith("/anat/sub-01_T2w.nii.gz")
    assert "from the headers" in row["reason"]
    nifti = study_path(site) / row["bids_name"]
    plain = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    assert np.array_equal(_voxels(nifti)[:, ::-1, 0].T, plain)


# ------------------------------------------------------- non-MR modalities, empty sessions
def test_session_of_ct_only_fails_with_the_list(site: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), raw / "ct.dcm")
    run_windl("ingest", "study1", raw, "--subject", "01", "--site", site)
    proc = run_windl("convert", "study1", "--site", site, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("windl: error:")]
    assert len(errors) == 1 and "sub-01" in errors[0] and "1 series" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    (row,) = _records(site, "01")
    assert row["status"] == "not converted"
    assert row["reason"].startswith("modality CT: kept in sourcedata")
    assert "NOT CONVERTED: modality CT" in proc.stdout
    assert (study_path(site) / "sourcedata" / "sub-01" / "dicom").is_dir()
    assert not list((study_path(site) / "sub-01").rglob("*.nii.gz"))
    before = dataset_heads(site)
    again = run_windl("convert", "study1", "--site", site, check=False)
    assert again.returncode != 0 and "no BIDS file from 1 series" in again.stderr
    assert dataset_heads(site) == before


# ------------------------------------------------------- vendors of the corpus
#: (subject, repo, series folder, BIDS datatype, reference NIfTI, reference bval) — the
#: references are dcm2niix's own, shipped in the repository (None where it ships none)
VENDOR_SERIES = [
    ("ge", "dcm_qa_ge", "In/01_Ax_DWI_TENSOR_R2", "dwi",
     "Ref/Ax_DWI_TENSOR_R2_1.nii", "Ref/Ax_DWI_TENSOR_R2_1.bval"),
    ("toshiba", "dcm_qa_toshiba", "In/Galan/8006_DTI_AX_30d", "dwi",
     None, "Ref/8006_DTI_AX_30d.bval"),
    # with the CD's DICOMDIR, which ingest keeps under misc/
    ("philips", "dcm_qa_philips_dwi", "In/cl", "dwi",
     None, "Ref/701_DTI_Biobank_2mm_MB3S2_EPI_cl.bval"),
    ("xa30", "dcm_qa_xa30", "In/5_anat-T1w_acq-tfl", "anat", "Ref/5_anat-T1w_acq-tfl.nii", None),
    # enhanced multi-frame: nibabel's wrapper raises inside heudiconv, dcm2niix converts it
    ("canonenh", "dcm_qa_canon_61", "In/enh/3000.dcm.gz", "dwi",
     "Ref/3000_DTI_PA-ortho_enh.nii.gz", "Ref/3000_DTI_PA-ortho_enh.bval"),
]  # fmt: skip


@pytest.fixture(scope="module")
def vendor_site(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus) -> Path:
    base = tmp_path_factory.mktemp("corpus-vendors")
    site = base / "site"
    run_windl("site", "init", site)
    run_windl("study", "create", "study1", "--site", site)
    for subject, repo, series, *_ in VENDOR_SERIES:
        raw = _copy(corpus(repo) / series, base / subject)
        run_windl("ingest", "study1", raw, "--subject", subject, "--site", site)
    run_windl("convert", "study1", "--site", site)
    return site


@pytest.mark.parametrize(
    ("subject", "repo", "series", "datatype", "reference", "bval"), VENDOR_SERIES
)
def test_corpus_series_convert_to_reference(
    vendor_site: Path, corpus: Corpus, subject: str, repo: str, series: str, datatype: str,
    reference: str | None, bval: str | None,
) -> None:  # fmt: skip
    rows = [r for r in _records(vendor_site, subject) if r["status"] == "converted"]
    assert len(rows) == 1, _records(vendor_site, subject)
    (name,) = rows[0]["bids_name"].split(",")
    assert name.split("/")[1] == datatype, name
    nifti = study_path(vendor_site) / name
    if reference:
        assert np.array_equal(_voxels(nifti), _voxels(corpus(repo) / reference))
    if bval:
        ours = nifti.with_name(nifti.name.replace(".nii.gz", ".bval"))
        assert _bvals(ours) == _bvals(corpus(repo) / bval)


def test_wrapper_error_of_heudiconv_is_recorded(vendor_site: Path) -> None:
    (row,) = _records(vendor_site, "canonenh")
    assert "heudiconv failed (WrapperError: " in row["reason"], row
    assert "converted by dcm2niix alone" in row["reason"]


def test_corpus_study_passes_bids_validator(vendor_site: Path) -> None:
    proc = run_windl("validate", "study1", "--site", vendor_site, "--json")
    assert json.loads(proc.stdout)["errors"] == {}
    assert git_status(study_path(vendor_site)) == ""
