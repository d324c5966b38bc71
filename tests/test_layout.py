"""The layout for scale: one dataset per subject in sourcedata, and migration to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import dataset_heads, git_out, git_status, run_killed_at, run_windl, study_path

#: DataLad's own CLI, from the interpreter's environment (as windl's tools are)
DATALAD = str(Path(sys.executable).parent / "datalad")


def _sourcedata(site: Path) -> Path:
    return study_path(site) / "sourcedata"


def _changed_paths(ds: Path, commits: str) -> set[str]:
    """Paths the commits in range ``commits`` changed (first-parent, names only)."""
    out = git_out(ds, "log", "--first-parent", "--format=", "--name-only", commits)
    return {line for line in out.splitlines() if line}


def _annex_keys(ds: Path) -> dict[str, str]:
    """Path → git-annex key of every annexed file of ``ds`` (from git, not the disk)."""
    out = git_out(ds, "annex", "find", "--include=*", "--format=${file}\\t${key}\\n")
    return dict(line.split("\t") for line in out.splitlines())


def _legacy_ingest(site: Path, source: Path, subject: str, session: str, tmp: Path) -> None:
    """What ``windl ingest`` wrote before subject datasets: the files in sourcedata itself."""
    from windl import datasets
    from windl.config import load_site
    from windl.ingest import plan_layout, session_prefix
    from windl.ingest.sources import open_source
    from windl.study import get_study

    windl_site = load_site(site)
    study = get_study(windl_site, "study1")
    with open_source(source, tmp / f"extract-{subject}-{session}") as files:
        layout = plan_layout(files, session_prefix(subject, session), source)
        datasets.commit_files(
            study.sourcedata,
            {target: f.path for target, f in layout.targets.items()},
            f"windl ingest: sub-{subject} ses-{session} (layout before subject datasets)",
        )
    datasets.record_subdataset_state(study.root, study.sourcedata, "old ingest")
    datasets.record_subdataset_state(windl_site.superdataset, study.root, "old ingest")


@pytest.fixture
def legacy_site(site: Path, data: Path, tmp_path: Path) -> Path:
    """A study whose sourcedata holds two subjects as folders, both converted."""
    for subject in ("01", "02"):
        _legacy_ingest(site, data / "dcm_qa_nih" / "In" / "20180918Si", subject, "1", tmp_path)
    assert git_out(_sourcedata(site), "ls-tree", "HEAD", "sub-01").split()[1] == "tree"
    run_windl("convert", "study1", "--site", site)
    return site


# --------------------------------------------------------------------------- new layout
def test_first_ingest_of_a_subject_makes_its_dataset_in_sourcedata(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    run_windl("ingest", "study1", source, "--subject", "01", "--session", "1", "--site", site)
    subject = _sourcedata(site) / "sub-01"
    assert (subject / ".datalad" / "config").exists()
    entry = git_out(_sourcedata(site), "ls-tree", "HEAD", "sub-01").split()
    assert (
        entry[:2] == ["160000", "commit"]
        and entry[2] == git_out(subject, "rev-parse", "HEAD").strip()
    )
    modules = git_out(_sourcedata(site), "config", "-f", ".gitmodules", "--list")
    assert "submodule.sub-01.url=./sub-01" in modules.splitlines()
    assert len(_annex_keys(subject)) == 13  # 8 DICOM + 5 other files, in the subject's annex
    assert all(p.startswith("ses-1/") for p in _annex_keys(subject))
    for ds in (subject, _sourcedata(site), study_path(site), site / "superdataset"):
        assert git_status(ds) == ""
    listed = subprocess.run(
        [DATALAD, "-f", "json", "subdatasets", "-d", str(_sourcedata(site))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [json.loads(line)["gitmodule_name"] for line in listed.splitlines()] == ["sub-01"]
    # a clone of the study gets the raw data through both levels, right after the ingest
    clone = tmp_path / "clone"
    for args in (
        ["clone", str(study_path(site)), str(clone)],
        ["get", "-d", str(clone), str(clone / "sourcedata" / "sub-01" / "ses-1" / "dicom")],
    ):
        subprocess.run([DATALAD, *args], capture_output=True, text=True, check=True)
    got = sorted((clone / "sourcedata" / "sub-01" / "ses-1" / "dicom").rglob("*.dcm"))
    assert len(got) == 8 and all(p.read_bytes()[128:132] == b"DICM" for p in got)


def test_ingest_of_one_more_session_changes_one_record_per_level(site: Path, data: Path) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    for subject in ("01", "02", "03"):
        run_windl(
            "ingest", "study1", source, "--subject", subject, "--session", "1", "--site", site
        )
    before = dataset_heads(site)
    run_windl("ingest", "study1", source, "--subject", "02", "--session", "2", "--site", site)
    after = dataset_heads(site)
    # only the subject's own dataset holds new files; every parent records one gitlink
    assert {k for k in after if after[k] != before[k]} == {
        "sourcedata/sub-02", "sourcedata", "study", "superdataset",
    }  # fmt: skip
    span = lambda key: f"{before[key]}..{after[key]}"  # noqa: E731
    assert _changed_paths(_sourcedata(site), span("sourcedata")) == {"sub-02"}
    assert _changed_paths(study_path(site), span("study")) == {"sourcedata"}
    assert _changed_paths(site / "superdataset", span("superdataset")) == {"studies/study1"}
    added = _changed_paths(_sourcedata(site) / "sub-02", span("sourcedata/sub-02"))
    assert added and all(p.startswith("ses-2/") for p in added)


@pytest.mark.parametrize("point", ["scanned", "annexed", "committed"])
def test_first_ingest_of_a_subject_killed_leaves_no_trace(
    site: Path, data: Path, tmp_path: Path, point: str
) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    run_windl("ingest", "study1", source, "--subject", "01", "--site", site)
    before = dataset_heads(site)
    args = ["ingest", "study1", source, "--subject", "02", "--site", site]
    run_killed_at(args, point, tmp_path)
    assert dataset_heads(site) == before
    assert git_status(_sourcedata(site)) == "" and not (_sourcedata(site) / "sub-02").exists()
    run_windl(*args)
    assert len(_annex_keys(_sourcedata(site) / "sub-02")) == 13
    assert git_status(_sourcedata(site)) == "" and git_status(study_path(site)) == ""


def test_parallel_conversion_reads_the_subject_datasets(site: Path, data: Path) -> None:
    nih = data / "dcm_qa_nih" / "In"
    run_windl("ingest", "study1", nih / "20180918Si", "--subject", "01", "--site", site)
    run_windl("ingest", "study1", nih / "20180918Si", "--subject", "02", "--site", site)
    run_windl("convert", "study1", "--jobs", "2", "--site", site)
    for subject in ("01", "02"):
        assert len(list((study_path(site) / f"sub-{subject}" / "func").glob("*_bold.nii.gz"))) == 4
    assert git_status(study_path(site)) == ""
    # job worktrees of the subject datasets are gone with the jobs
    for subject in ("01", "02"):
        worktrees = git_out(_sourcedata(site) / f"sub-{subject}", "worktree", "list")
        assert len(worktrees.splitlines()) == 1
    proc = run_windl("convert", "study1", "--jobs", "2", "--site", site, "--json")
    assert {r["status"] for r in json.loads(proc.stdout)} == {"up to date"}


# --------------------------------------------------------------------------- migration
def test_study_made_before_subject_datasets_is_migrated_without_copying_or_reconverting(
    legacy_site: Path, data: Path
) -> None:
    site = legacy_site
    sourcedata = _sourcedata(site)
    keys_before = _annex_keys(sourcedata)
    study_head = git_out(study_path(site), "rev-parse", "HEAD").strip()
    proc = run_windl("study", "migrate", "study1", "--site", site, "--json")
    result = json.loads(proc.stdout)
    assert result["migrated"] == ["sub-01", "sub-02"]
    assert len(result["records_updated"]) == 2  # each session's MRI conversion record
    for subject in ("sub-01", "sub-02"):
        ds = sourcedata / subject
        assert git_out(sourcedata, "ls-tree", "HEAD", subject).split()[1] == "commit"
        moved = {f"{subject}/{path}": key for path, key in _annex_keys(ds).items()}
        assert moved == {p: k for p, k in keys_before.items() if p.startswith(subject + "/")}
        for path in moved:
            assert os.stat(sourcedata / path).st_nlink >= 2  # hard-linked, not copied
        fsck = git_out(ds, "annex", "fsck", "--fast", "--json")
        assert all(json.loads(line)["success"] for line in fsck.splitlines())
        assert git_status(ds) == ""
    for ds in (sourcedata, study_path(site), site / "superdataset"):
        assert git_status(ds) == ""
    # the conversion is still up to date: nothing is converted again
    heads = dataset_heads(site)
    proc = run_windl("convert", "study1", "--site", site, "--json")
    assert {r["status"] for r in json.loads(proc.stdout)} == {"up to date"}
    assert dataset_heads(site) == heads
    # the study got the new records only: no BIDS file changed
    changed = _changed_paths(study_path(site), f"{study_head}..HEAD")
    assert changed == {"sourcedata", *result["records_updated"]}
    # running it again changes nothing
    proc = run_windl("study", "migrate", "study1", "--site", site)
    assert "nothing to do" in proc.stdout
    assert dataset_heads(site) == heads
    # the next session of a migrated subject goes into its dataset
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    run_windl("ingest", "study1", source, "--subject", "01", "--session", "2", "--site", site)
    assert (sourcedata / "sub-01" / "ses-2" / "dicom").is_dir()
    assert git_out(sourcedata / "sub-01", "ls-files", "ses-2").strip()


def test_study_before_migration_keeps_ingesting_and_converting(
    legacy_site: Path, data: Path
) -> None:
    site = legacy_site
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    # an existing folder subject goes on in its folder; a new subject gets a dataset
    run_windl("ingest", "study1", source, "--subject", "01", "--session", "2", "--site", site)
    run_windl("ingest", "study1", source, "--subject", "03", "--session", "1", "--site", site)
    assert git_out(_sourcedata(site), "ls-tree", "HEAD", "sub-01").split()[1] == "tree"
    assert git_out(_sourcedata(site), "ls-tree", "HEAD", "sub-03").split()[1] == "commit"
    proc = run_windl("convert", "study1", "--site", site, "--json")
    status = {(r["subject"], r["session"]): r["status"] for r in json.loads(proc.stdout)}
    assert status == {
        ("01", "1"): "up to date", ("01", "2"): "converted",
        ("02", "1"): "up to date", ("03", "1"): "converted",
    }  # fmt: skip


@pytest.mark.parametrize("point", ["migrate-built", "migrate-swapped"])
def test_migration_killed_midway_is_completed_by_running_it_again(
    legacy_site: Path, tmp_path: Path, point: str
) -> None:
    site = legacy_site
    keys_before = _annex_keys(_sourcedata(site))
    run_killed_at(["study", "migrate", "study1", "--site", site], point, tmp_path)
    run_windl("study", "migrate", "study1", "--site", site)
    keys_after = {
        f"{subject}/{path}": key
        for subject in ("sub-01", "sub-02")
        for path, key in _annex_keys(_sourcedata(site) / subject).items()
    }
    assert keys_after == keys_before
    for ds in (_sourcedata(site), study_path(site), site / "superdataset"):
        assert git_status(ds) == ""
    proc = run_windl("convert", "study1", "--site", site, "--json")
    assert {r["status"] for r in json.loads(proc.stdout)} == {"up to date"}


def test_reproduce_after_migration_reruns_records_made_before_it(
    legacy_site: Path, data: Path, tmp_path: Path
) -> None:
    site = legacy_site
    run_windl("study", "migrate", "study1", "--site", site)
    # one conversion after the migration too, from a subject dataset
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    run_windl("ingest", "study1", source, "--subject", "03", "--session", "1", "--site", site)
    run_windl("convert", "study1", "--site", site)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = run_windl(
        "reproduce", "study1", "--site", site, "--json", env={"TMPDIR": str(scratch)},
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["runs"]) == 3  # sub-01 and sub-02 before the migration, sub-03 after
    assert all(run["error"] is None for run in report["runs"])
    assert report["all_identical"] is True
