"""Parallel conversion (``windl convert --jobs N``): the same files and run records as a serial
run, a failing session does not stop the others, and a parallel-made record reruns."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from windl.convert.finalize import merge_participants

from conftest import (
    commit_messages_since,
    git_head,
    git_out,
    git_status,
    rerun_onto_parent,
    run_killed_at,
    run_windl,
    study_path,
)


@pytest.fixture(scope="module")
def ingested(
    participants_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """sub-01..03 with Siemens DICOM; sub-03 also a BrainVision EEG (two runs in one job)."""
    root = tmp_path_factory.mktemp("parallel") / "site"
    shutil.copytree(participants_site_template, root, symlinks=True)
    run_windl("ingest", "study1", data / "mne_testfiles/brainvision", "--subject", "03",
              "--site", root)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def serial_and_parallel(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Copies of the same ingested site converted with --jobs 1 and with --jobs 2."""
    base = tmp_path_factory.mktemp("both")
    sites = {}
    for jobs in ("1", "2"):
        sites[jobs] = base / f"jobs{jobs}"
        shutil.copytree(ingested, sites[jobs], symlinks=True)
        run_windl("convert", "study1", "--jobs", jobs, "--site", sites[jobs])
    return sites["1"], sites["2"], git_head(study_path(ingested))


def test_parallel_conversion_writes_the_same_tree_and_records_as_serial(
    serial_and_parallel: tuple,
) -> None:
    serial, parallel, before = serial_and_parallel
    one, two = study_path(serial), study_path(parallel)
    # same tree object: every file byte-identical (annexed ones under the same key)
    assert git_out(two, "rev-parse", "HEAD^{tree}") == git_out(one, "rev-parse", "HEAD^{tree}")
    records = commit_messages_since(two, before)
    assert records == commit_messages_since(one, before)
    assert [r.splitlines()[0] for r in records] == [
        "[DATALAD RUNCMD] windl convert: sub-01 (heudiconv + dcm2niix)",
        "[DATALAD RUNCMD] windl convert: sub-02 (heudiconv + dcm2niix)",
        "[DATALAD RUNCMD] windl convert: sub-03 (heudiconv + dcm2niix)",
        "[DATALAD RUNCMD] windl convert: sub-03 (mne-bids)",
    ]
    assert git_out(two, "rev-list", "--merges", f"{before}..HEAD") == ""  # linear history
    assert (two / "participants.tsv").read_text().count("sub-0") == 3


def test_parallel_conversion_leaves_a_clean_study_with_all_content(
    serial_and_parallel: tuple,
) -> None:
    _, parallel, _ = serial_and_parallel
    study = study_path(parallel)
    assert git_status(study) == ""
    assert len(git_out(study, "worktree", "list").splitlines()) == 1
    assert len(git_out(study / "sourcedata", "worktree", "list").splitlines()) == 1
    assert "windl-job" not in git_out(study, "branch", "--list")
    assert not list((study / ".git" / "windl").glob("jobs/*"))
    # every converted file's content is in the study's annex, and git-annex knows it
    subprocess.run(["git", "annex", "fsck", "--fast", "--quiet"], cwd=study, check=True)
    nifti = sorted(study.glob("sub-*/func/*.nii.gz"))
    assert len(nifti) == 12 and all(p.resolve().is_file() for p in nifti)
    superdataset = parallel / "superdataset"
    assert git_out(superdataset, "ls-tree", "HEAD", "studies/study1").split()[2] == git_head(study)


def test_datalad_rerun_of_a_replayed_parallel_record_reproduces_its_files(
    serial_and_parallel: tuple,
) -> None:
    _, parallel, before = serial_and_parallel
    study = study_path(parallel)
    # sub-02's job started from the same commit as sub-01's: its record was replayed
    # onto sub-01's, participants.tsv merged
    original = rerun_onto_parent(study, "convert: sub-02", "rerun-sub-02")
    assert git_out(study, "rev-parse", f"{original}^") != before
    assert git_out(study, "diff", "--stat", original, "HEAD") == ""
    assert git_status(study) == ""


def test_a_failing_session_does_not_stop_the_others_and_a_rerun_retries_only_it(
    site: Path, data: Path
) -> None:
    from windl.datasets import save

    nih = data / "dcm_qa_nih" / "In"
    for subject, source in (("01", "20180918Si"), ("02", "20180918GE"), ("03", "20180918Si")):
        run_windl("ingest", "study1", nih / source, "--subject", subject, "--site", site)
    study = study_path(site)
    # the study's own heuristic (it only delegates to windl's) fails on every series of
    # the GE session (sub-02) while code/refuse-ge exists; being the study's own, windl
    # does not fall back to dcm2niix alone for it, so that session converts nothing
    (study / "code" / "heuristic.py").write_text(
        "import importlib\n"
        "from pathlib import Path\n\n"
        "_windl = importlib.import_module('windl.convert.heuristic')\n"
        "globals().update({k: v for k, v in vars(_windl).items() if not k.startswith('__')})\n"
        "\n\n"
        "def infotodict(seqinfo):\n"
        "    if Path('code/refuse-ge').exists() and any(\n"
        "        'Axial EPI' in s.series_description for s in seqinfo\n"
        "    ):\n"
        "        raise RuntimeError('refusing the GE session')\n"
        "    return _windl.infotodict(seqinfo)\n"
    )
    (study / "code" / "refuse-ge").write_text("while this file exists\n")
    save(study, ["code/heuristic.py", "code/refuse-ge"], "test: a heuristic that fails on GE")
    first = run_windl("convert", "study1", "--jobs", "2", "--site", site, check=False)
    assert first.returncode != 0
    assert "sub-02: failed" in first.stdout
    assert "sub-01: converted" in first.stdout and "sub-03: converted" in first.stdout
    error = first.stderr.strip().splitlines()[-1]
    assert error.startswith("windl: error: sub-02:") and "sub-01" not in error
    assert not (study / "sub-02").exists()
    assert git_status(study) == ""
    assert "windl-job" not in git_out(study, "branch", "--list")

    git_out(study, "rm", "-q", "code/refuse-ge")
    git_out(study, "commit", "-q", "-m", "test: GE allowed again")
    second = run_windl("convert", "study1", "--jobs", "2", "--site", site)
    assert "sub-01: up to date" in second.stdout and "sub-03: up to date" in second.stdout
    assert "sub-02: converted" in second.stdout
    assert len(list((study / "sub-02" / "func").glob("*_bold.nii.gz"))) == 4
    assert (study / "participants.tsv").read_text().count("sub-0") == 3


def test_parallel_participant_rows_merge_as_a_serial_run_would() -> None:
    base = b"participant_id\tage\tsex\nsub-01\t30\tF\n"
    ours = base + b"sub-03\tn/a\tM\n"
    # theirs: a new participant, and a second session of sub-03 that knows the age
    theirs = base + b"sub-02\t41\tM\nsub-03\t52\tM\n"
    merged = merge_participants(base, ours, theirs).decode()
    assert merged == "participant_id\tage\tsex\nsub-01\t30\tF\nsub-02\t41\tM\nsub-03\t52\tM\n"
    # a row that is already known is not overwritten (the first conversion's values stay)
    assert merge_participants(base, theirs, base + b"sub-02\t99\tF\n") == theirs


def test_killed_parallel_conversion_leaves_the_study_intact_and_a_rerun_completes_it(
    ingested: Path, serial_and_parallel: tuple, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(ingested, site, symlinks=True)
    study = study_path(site)
    before = git_head(study)
    # killed when the first job has finished, before its record is replayed; the other
    # job may be half way through heudiconv in its worktree
    run_killed_at(["convert", "study1", "--jobs", "2", "--site", site], "job-done", tmp_path)
    assert git_head(study) == before
    assert git_status(study) == ""
    run_windl("convert", "study1", "--jobs", "2", "--site", site)
    serial, _, _ = serial_and_parallel
    assert git_out(study, "rev-parse", "HEAD^{tree}") == git_out(
        study_path(serial), "rev-parse", "HEAD^{tree}"
    )
    assert "windl-job" not in git_out(study, "branch", "--list")
    assert len(git_out(study, "worktree", "list").splitlines()) == 1
