"""Kill tests beyond a serial convert (issue 22).

SIGKILL at windl's own checkpoints spread over a run of a command: the next run of the same
command completes without a hand edit, every dataset of the site is clean, ``git annex
fsck`` passes in each, and a third run makes no commit. One small site is built per
command (module-scoped template) and copied per kill point.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_concurrency import assert_site_clean

from conftest import copy_site, dataset_heads, run_killed_at, run_windl, study_path


def kill_then_complete(site: Path, args: list[str | Path], point: str, tmp: Path) -> None:
    """Kill ``windl ARGS`` at ``point``; the next run completes and leaves the site clean;
    a third run commits nothing."""
    run_killed_at(args, point, tmp)
    run_windl(*args)
    assert_site_clean(site)
    before = dataset_heads(site)
    run_windl(*args)
    assert dataset_heads(site) == before


# ------------------------------------------------------------------ convert --jobs 2
#: points of a convert with two jobs (both sessions run as jobs, then replayed)
CONVERT_JOBS_POINTS = (
    "convert-start",
    "jobs-start",
    "job-start",
    "run-started",
    "run-saved",
    "job-end",
    "job-done",
    "convert-converted",
)


@pytest.fixture(scope="module")
def two_subjects_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """The empty site with one small Siemens series ingested for each of k1 and k2."""
    root = tmp_path_factory.mktemp("kill-jobs") / "site"
    shutil.copytree(empty_site_template, root, symlinks=True)
    series = data / "dcm_qa_nih" / "In" / "20180918Si"
    for subject, folder in (("k1", "mr_0003"), ("k2", "mr_0004")):
        run_windl("ingest", "study1", series / folder, "--subject", subject, "--site", root)
    return root


@pytest.mark.parametrize("point", CONVERT_JOBS_POINTS)
def test_convert_jobs_killed(two_subjects_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(two_subjects_template, tmp_path / "site")
    study = study_path(site)
    kill_then_complete(site, ["convert", "study1", "--jobs", "2", "--site", site], point, tmp_path)
    for subject in ("k1", "k2"):
        assert list((study / f"sub-{subject}").rglob("*.nii.gz")), subject
        assert f"sub-{subject}" in (study / "participants.tsv").read_text()
    assert not list((study / ".git" / "windl" / "journal").glob("*"))
    assert not (study / ".git" / "windl" / "jobs").exists() or not any(
        (study / ".git" / "windl" / "jobs").iterdir()
    )
