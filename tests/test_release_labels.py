"""Labels are vetted, not derived: free text that became a label never reaches a release.

Real data with a name planted where operators type it: a GE EPI series (``dcm_qa_nih``)
whose SeriesDescription reads ``fMRI JohnSmithQx`` (the default heuristic makes its task
label from it) and a BrainVision recording (``mne_testfiles``) saved as ``JaneDoeQx.vhdr``
(mne-bids conversion makes its task label from the file name). The study approves neither,
so the release re-keys them to neutral labels; the audit fails a planted unapproved label.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import copy_site, git_out, release_dir, run_windl, study_path

#: the planted names, as they stand in labels (lower case) and in the raw data
MARKERS = ("johnsmithqx", "janedoeqx")
SETTINGS = """
[deid]
retain_modified_dates = true
clean_descriptors = true
"""


def _planted_dicom(data: Path, target: Path) -> Path:
    import pydicom

    target.mkdir(parents=True)
    for path in sorted((data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.SeriesDescription = "fMRI JohnSmithQx"
        ds.save_as(target / path.name)
    return target


def _planted_brainvision(data: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    source = data / "mne_testfiles" / "brainvision"
    shutil.copyfile(source / "test.eeg", target / "JaneDoeQx.eeg")
    shutil.copyfile(source / "test.vmrk", target / "JaneDoeQx.vmrk")
    header = (source / "test.vhdr").read_bytes()
    header = header.replace(b"DataFile=test.eeg", b"DataFile=JaneDoeQx.eeg")
    header = header.replace(b"MarkerFile=test.vmrk", b"MarkerFile=JaneDoeQx.vmrk")
    (target / "JaneDoeQx.vhdr").write_bytes(header)
    marker = (target / "JaneDoeQx.vmrk").read_bytes()
    (target / "JaneDoeQx.vmrk").write_bytes(
        marker.replace(b"DataFile=test.eeg", b"DataFile=JaneDoeQx.eeg")
    )
    return target


@pytest.fixture(scope="module")
def planted_site_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """study1 with the planted GE EPI (sub-01) and BrainVision (sub-02), QC, members 1.0.0."""
    from windl.datasets import save

    base = tmp_path_factory.mktemp("labels")
    root = copy_site(empty_site_template, base / "site")
    study = study_path(root)
    (study / "code" / "study.toml").write_text(SETTINGS, encoding="utf-8")
    save(study, ["code/study.toml"], "test: settings")
    site = ("--site", root)
    dicom = _planted_dicom(data, base / "dicom")
    run_windl("ingest", "study1", dicom, "--subject", "01", *site)
    eeg = _planted_brainvision(data, base / "eeg")
    run_windl("ingest", "study1", eeg, "--subject", "02", *site)
    run_windl("convert", "study1", *site)
    run_windl("qc", "study1", *site)
    for subject in ("01", "02"):
        run_windl("consent", "set", "study1", subject, "--scope", "members", *site)
    run_windl("release", "build", "study1", "--scope", "members", "--version", "1.0.0", *site)
    return root


@pytest.fixture
def planted_site(planted_site_template: Path, tmp_path: Path) -> Path:
    return copy_site(planted_site_template, tmp_path / "site")


def _contents(path: Path) -> bytes:
    raw = path.read_bytes()  # follows the annex symlink to the content
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def _release_files(ds: Path) -> list[str]:
    return [n for n in git_out(ds, "ls-files", "-z").split("\0") if n]


def _audit(site: Path, ds: Path) -> tuple[int, dict]:
    proc = run_windl("audit", ds, "--site", site, "--json", check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_the_study_has_the_derived_labels(planted_site_template: Path) -> None:
    """The planted names did become labels in the study (else the release test proves nothing)."""
    names = git_out(study_path(planted_site_template), "ls-files").lower()
    assert all(f"task-{'fmri' if m.startswith('john') else ''}{m}" in names for m in MARKERS)


def test_release_holds_no_unapproved_label_anywhere(planted_site_template: Path) -> None:
    site = planted_site_template
    ds = release_dir(site, "members")
    files = _release_files(ds)
    assert any(f.endswith("_bold.nii.gz") for f in files)
    assert any(f.endswith("_eeg.vhdr") for f in files)
    assert any(f.startswith("derivatives/qc/sub-") for f in files)
    for name in files:
        assert not any(m in name.lower() for m in MARKERS), name
    tasks = {p.split("task-", 1)[1].split("_", 1)[0] for p in files if "_task-" in p}
    assert tasks and all(t.startswith("task") and t[4:].isdigit() for t in tasks)

    for name in files:
        text = _contents(ds / name).lower()
        for marker in MARKERS:
            assert marker.encode() not in text, f"{marker} in {name}"
    objects = subprocess.run(
        ["git", "-C", str(ds), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout.lower()
    assert objects and not any(m.encode() in objects for m in MARKERS)

    # inside files: TaskName, the BrainVision links and scans.tsv name the release files
    sidecars = [
        n for n in files if n.startswith("sub-") and n.endswith(("_bold.json", "_eeg.json"))
    ]
    assert sidecars
    for name in sidecars:
        data = json.loads((ds / name).read_text())
        assert data["TaskName"] == name.split("task-", 1)[1].split("_", 1)[0]
        assert "SeriesDescription" not in data
    (vhdr,) = [n for n in files if n.endswith(".vhdr")]
    header = (ds / vhdr).read_text(encoding="utf-8", errors="replace")
    stem = Path(vhdr).name.removesuffix(".vhdr")
    assert f"DataFile={stem}.eeg" in header and f"MarkerFile={stem}.vmrk" in header
    scans = [n for n in files if n.endswith("_scans.tsv")]
    assert scans
    for name in scans:
        for line in (ds / name).read_text().splitlines()[1:]:
            assert line.split("\t")[0] in {f.split("/", 1)[1] for f in files if "/" in f}

    # the neutral labels are kept in restricted/, without the study's labels in the message
    table = (study_path(site) / "restricted" / "entity-labels.tsv").read_text()
    assert "fmrijohnsmithqx" in table and "janedoeqx" in table
    log = git_out(study_path(site) / "restricted", "log", "--format=%B").lower()
    assert not any(m in log for m in MARKERS)

    code, result = _audit(site, ds)
    assert code == 0, result["findings"]


def test_neutral_labels_are_stable_and_a_planted_label_fails_the_audit(
    planted_site: Path,
) -> None:
    ds = release_dir(planted_site, "members")
    before = sorted(_release_files(ds))
    run_windl(
        "release", "build", "study1", "--scope", "members", "--version", "1.0.1",
        "--site", planted_site,
    )  # fmt: skip
    assert sorted(_release_files(ds)) == before

    (sidecar,) = [n for n in before if n.startswith("sub-") and n.endswith("_eeg.json")]
    planted = sidecar.replace("_task-", "_acq-SmithQx_task-", 1)
    git_out(ds, "mv", sidecar, planted)
    data = json.loads((ds / planted).read_text())
    data["TaskName"] = "SmithQx"
    (ds / planted).write_text(json.dumps(data, indent=2) + "\n")
    git_out(ds, "add", planted)
    git_out(ds, "commit", "-q", "-m", "planted")

    code, result = _audit(planted_site, ds)
    assert code != 0
    findings = [f for f in result["findings"] if f["check"] == "labels"]
    assert {f["path"] for f in findings} == {planted}
    messages = " ".join(f["message"] for f in findings)
    assert "acq label" in messages and "TaskName" in messages
    assert "smithqx" not in json.dumps(findings).lower().replace(planted.lower(), "")


# ----------------------------------------------------------------------- the pieces alone
def test_rename_rekeys_unapproved_labels_in_folders_and_names() -> None:
    from windl.release.plan import rename
    from windl.release.relabel import Relabel
    from windl.vocabulary import Vocabulary

    relabel = Relabel(
        Vocabulary({"task": frozenset({"rest"})}),
        {("task", "fmrijohnsmithqx"): "task1", ("acq", "EPI"): "acq1"},
    )
    labels, sessions = {"sub-01": "sub-Ab3dEf7h"}, {("sub-01", "20180918"): "Xy12Zw34"}
    path = (
        "sub-01/ses-20180918/func/"
        "sub-01_ses-20180918_task-fmrijohnsmithqx_acq-EPI_dir-AP_run-4_bold.nii.gz"
    )
    assert rename(path, labels, sessions, relabel.label) == (
        "sub-Ab3dEf7h/ses-Xy12Zw34/func/"
        "sub-Ab3dEf7h_ses-Xy12Zw34_task-task1_acq-acq1_dir-AP_run-4_bold.nii.gz"
    )
    assert rename("task-rest_bold.json", labels, sessions, relabel.label) == "task-rest_bold.json"
    # a label without a neutral one is never kept as it is
    from windl.errors import PseudonymMissing

    with pytest.raises(PseudonymMissing):
        rename("sub-01/func/sub-01_task-other_bold.json", labels, sessions, relabel.label)


def test_sidecar_labels_and_paths_are_rekeyed_or_dropped() -> None:
    from windl.release.plan import rename
    from windl.release.relabel import Relabel, rekey_sidecar
    from windl.vocabulary import Vocabulary

    relabel = Relabel(
        Vocabulary({"SeriesDescription": frozenset({"ep2d_bold"})}),
        {("task", "janedoeqx"): "task2", ("B0FieldIdentifier", "smithmap"): "b0field1"},
    )
    labels = {"sub-02": "sub-Q1w2E3r4"}

    def rename_path(path: str) -> str:
        return rename(path, labels, {}, relabel.label, "sub-02")

    data = {
        "TaskName": "janedoeqx",
        "SeriesDescription": "fMRI JohnSmithQx",
        "ProtocolName": "JohnSmithQx",
        "IntendedFor": [
            "bids::sub-02/func/sub-02_task-janedoeqx_bold.nii.gz",
            "func/x_task-no_bold",
        ],
        "B0FieldSource": "smithmap",
        "B0FieldIdentifier": ["smithmap", "unmapped"],
        "RepetitionTime": 2.0,
    }
    out = rekey_sidecar(data, "sub-Q1w2E3r4_task-task2_bold.json", relabel, rename_path)
    assert out == {
        "TaskName": "task2",
        "IntendedFor": ["bids::sub-Q1w2E3r4/func/sub-Q1w2E3r4_task-task2_bold.nii.gz"],
        "B0FieldSource": "b0field1",
        "B0FieldIdentifier": ["b0field1"],
        "RepetitionTime": 2.0,
    }
    approved = rekey_sidecar({"SeriesDescription": "ep2d_bold"}, "x.json", relabel, rename_path)
    assert approved == {"SeriesDescription": "ep2d_bold"}


def test_neutral_labels_are_stable_per_scope_and_never_approved_ones(site: Path) -> None:
    from windl.pseudonyms import ensure_entity_labels, entity_mapping
    from windl.study import Study
    from windl.vocabulary import Vocabulary

    study = Study(name="study1", root=study_path(site))
    vocabulary = Vocabulary({"task": frozenset({"rest", "task1"})})
    first = ensure_entity_labels(
        study, "members", [("task", "rest"), ("task", "janedoeqx"), ("acq", "EPI")], vocabulary
    )
    assert first == {("task", "janedoeqx"): "task2", ("acq", "EPI"): "acq1"}
    again = ensure_entity_labels(
        study, "members", [("task", "fmrijohnsmithqx"), ("task", "janedoeqx")], vocabulary
    )
    assert again == {("task", "fmrijohnsmithqx"): "task3", ("task", "janedoeqx"): "task2"}
    assert entity_mapping(study, "external") == {}
    other = ensure_entity_labels(study, "external", [("task", "fmrijohnsmithqx")], vocabulary)
    assert other == {("task", "fmrijohnsmithqx"): "task2"}
    log = git_out(study.restricted, "log", "--format=%B").lower()
    assert not any(m in log for m in MARKERS)
