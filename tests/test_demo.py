"""The README's demo command, end to end: ingest → convert → validate → release → audit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from windl.datasets import tool_env
from windl.qc import read_group

from conftest import git_head, git_status, open_in_chromium, run_windl


def test_demo_builds_a_valid_study_with_mri_eeg_and_meg(tmp_path: Path) -> None:
    site = tmp_path / "demo"
    proc = run_windl("demo", site)
    assert "0 errors" in proc.stdout
    study = site / "superdataset" / "studies" / "demo"
    datatypes = {p.name for p in study.glob("sub-*/ses-*/*") if p.is_dir()}
    assert {"func", "fmap", "eeg", "meg", "anat"} <= datatypes
    assert (study / "phenotype" / "handedness.tsv").exists()
    report = json.loads(run_windl("validate", "demo", "--json", "--site", site).stdout)
    assert report["errors"] == {}
    assert git_status(study) == "" and git_status(site / "superdataset") == ""
    releases = site / "superdataset" / "releases" / "demo"
    for scope in ("members", "external"):
        assert f"audit {scope} 1.0.0\n   PASSED" in proc.stdout
        audit = json.loads(run_windl("audit", releases / scope, "--json").stdout)
        assert audit["passed"] and audit["version"] == "1.0.0"
    assert len(list((releases / "external").glob("sub-*"))) == 5  # external consent only
    assert "DataCite metadata valid" in proc.stdout
    for scope in ("members", "external"):
        tags = subprocess.run(
            ["git", "-C", str(releases / scope), "tag"], capture_output=True, text=True, check=True
        ).stdout
        assert tags.split() == ["v1.0.0"]
        assert f"ria+file://{site}/stores/{scope}#~demo-{scope}@v1.0.0" in proc.stdout
    assert list((releases / "members").glob("sub-*/ses-*/anat/*_T1w.nii.gz"))  # defaced
    # QC ran before the releases: the study's report opens in a browser, releases carry QC
    qc = study / "derivatives" / "qc"
    assert f"dataset report: {qc / 'group_qc.html'}" in proc.stdout
    opened = open_in_chromium(qc / "group_qc.html", "demo-group_qc.png")
    assert opened["errors"] == [] and opened["broken_images"] == 0 and opened["images"] >= 4
    assert all((qc / href).is_file() for href in opened["links"])
    kinds = {"T1w", "bold", "eeg", "meg"}
    assert {p.stem.removeprefix("group_") for p in qc.glob("group_*.tsv")} == kinds
    for scope in ("members", "external"):
        released = releases / scope / "derivatives" / "qc"
        assert f"QC report of the release: {released / 'group_qc.html'}" in proc.stdout
        rows = [r for p in released.glob("group_*.tsv") for r in read_group(p)]
        subjects = {str(r["bids_name"]).split("_")[0] for r in rows}
        assert subjects and subjects <= {p.name for p in (releases / scope).glob("sub-*")}
    assert "runs rerun: all identical" in proc.stdout  # windl reproduce on the demo study
    # the catalog, indexed after publishing: outsiders find the external release only
    assert "== search 'rest modality:eeg' as an external user: 1 dataset(s)" in proc.stdout
    assert "   demo/external v1.0.0: " in proc.stdout
    # a separate user clones the members store and gets a NIfTI and an EEG file
    clone = tmp_path / "user" / "members"
    subprocess.run(
        ["datalad", "clone", f"ria+file://{site}/stores/members#~demo-members", str(clone)],
        env=tool_env(),
        check=True,
        capture_output=True,
    )
    wanted = [
        next(clone.glob("sub-*/ses-*/anat/*_T1w.nii.gz")),
        next(clone.glob("sub-*/ses-*/eeg/*_eeg.eeg")),
    ]
    subprocess.run(
        ["datalad", "get", *map(str, wanted)],
        cwd=clone,
        env=tool_env(),
        check=True,
        capture_output=True,
    )
    for path in wanted:
        original = releases / "members" / path.relative_to(clone)
        assert path.read_bytes() == original.read_bytes()
    # the README's command can be repeated: the second run changes nothing
    heads = [git_head(ds) for ds in (study, site / "superdataset", *releases.iterdir())]
    again = run_windl("demo", site)
    assert "0 errors" in again.stdout
    assert "   3 datasets, nothing changed" in again.stdout
    assert [git_head(ds) for ds in (study, site / "superdataset", *releases.iterdir())] == heads
