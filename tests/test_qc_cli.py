"""``windl qc``: derivatives/qc under datalad run, reproduced by datalad rerun."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
from pathlib import Path

import nibabel as nib

from windl.qc import GROUP_TEXT_COLUMNS, read_group

from conftest import Runner, git_head, git_status, open_in_chromium, rerun_onto_parent, study_path

TINY = "mne_bids_tiny_bids/tiny_bids"
BOLD = "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii"


def _bids_with_eeg_and_bold(data: Path, root: Path) -> Path:
    shutil.copytree(data / TINY, root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    func = root / "sub-02" / "func"
    func.mkdir(parents=True)
    nib.save(nib.load(data / BOLD), func / "sub-02_task-rest_bold.nii.gz")
    (func / "sub-02_task-rest_bold.json").write_text(
        json.dumps({"TaskName": "rest", "RepetitionTime": 5.0})
    )
    table = root / "participants.tsv"
    columns = table.read_text(encoding="utf-8-sig").splitlines()[0].split("\t")
    table.write_text(
        table.read_text(encoding="utf-8-sig") + "\t".join(["sub-02"] + ["n/a"] * (len(columns) - 1))
        + "\n", encoding="utf-8",
    )  # fmt: skip
    return root


def _metric_files(qc: Path) -> dict[str, bytes]:
    return {
        p.relative_to(qc).as_posix(): p.read_bytes()
        for p in sorted(qc.rglob("*"))
        if p.is_file() and p.suffix in (".json", ".tsv", ".html")
    }


def test_qc_writes_bids_derivatives_and_rerun_reproduces_them(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    windl("import", "study1", _bids_with_eeg_and_bold(data, tmp_path / "bids"), "--site", site)
    study = study_path(site)
    out = json.loads(windl("qc", "study1", "--site", site, "--json").stdout)
    assert out["recordings"] == 2 and out["changed"]
    qc = study / "derivatives" / "qc"
    description = json.loads((qc / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "windl-qc"
    assert "k-means" in description["GeneratedBy"][0]["Description"]
    with (qc / "group_bold.tsv").open() as fh:
        (row,) = csv.DictReader(fh, delimiter="\t")
    assert row["bids_name"] == "sub-02_task-rest_bold" and float(row["tsnr"]) > 1
    assert float(row["fd_mean"]) >= 0 and "dvars_std" in row
    with (qc / "group_eeg.tsv").open() as fh:
        (row,) = csv.DictReader(fh, delimiter="\t")
    assert row["power_line_frequency"] == "60.0"  # from the sidecar
    assert (qc / "sub-02" / "func" / "sub-02_task-rest_bold_timeseries.tsv").exists()
    assert "<img" in (qc / "group_qc.html").read_text()
    assert git_status(study) == ""
    message = subprocess.run(
        ["git", "-C", str(study), "log", "-1", "--format=%B"], capture_output=True, text=True
    ).stdout
    assert "windl qc: study1" in message and "python -m windl.qc.step" in message

    for page in ("group_qc.html", "sub-02/func/sub-02_task-rest_bold_qc.html"):
        opened = open_in_chromium(qc / page, f"qc-{Path(page).stem}.png")
        assert opened["errors"] == [] and opened["broken_images"] == 0
        assert opened["images"] >= 1 and opened["screenshot"].stat().st_size > 10_000
        assert all((qc / page).parent.joinpath(href).is_file() for href in opened["links"])
    groups = {p.name: read_group(p) for p in qc.glob("group_*.tsv")}
    assert set(groups) == {"group_bold.tsv", "group_eeg.tsv"}
    for rows in groups.values():  # the format the catalog reads (windl.qc docstring)
        for row in rows:
            numbers = {k: v for k, v in row.items() if k not in GROUP_TEXT_COLUMNS}
            assert numbers and all(v is None or math.isfinite(v) for v in numbers.values())

    before = _metric_files(qc)
    head = git_head(study)
    assert "unchanged" in windl("qc", "study1", "--site", site).stdout
    assert git_head(study) == head

    rerun_onto_parent(study, "windl qc: study1", "rerun-qc")
    assert _metric_files(qc) == before


def test_qc_of_a_study_without_recordings_is_a_one_line_error(site: Path, windl: Runner) -> None:
    proc = windl("qc", "study1", "--site", site, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "windl: error: no T1w, T2w, BOLD, EEG or MEG files in study study1"
    ]
