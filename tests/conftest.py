"""Shared fixtures: real data from ../shared/data, real sites made with the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("WINDL_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
WINDL = [sys.executable, "-m", "windl"]

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA} (set WINDL_SHARED_DATA)")
    return SHARED_DATA


def run_windl(
    *args: str | os.PathLike[str],
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``windl`` CLI in a child process."""
    proc = subprocess.run(
        [*WINDL, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"windl {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def windl() -> Runner:
    return run_windl


@pytest.fixture(scope="session")
def empty_site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with one empty study 'study1', made once and copied per test."""
    root = tmp_path_factory.mktemp("template") / "site"
    run_windl("site", "init", root)
    run_windl("study", "create", "study1", "--site", root)
    return root


@pytest.fixture
def site(empty_site_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a site with an empty study 'study1'."""
    target = tmp_path / "site"
    shutil.copytree(empty_site_template, target, symlinks=True)
    return target


def study_path(site: Path, name: str = "study1") -> Path:
    return site / "superdataset" / "studies" / name


def git_head(ds: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def git_status(ds: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def dataset_heads(site: Path, name: str = "study1") -> dict[str, str]:
    """HEAD of the superdataset, the study and its subdatasets (to assert 'unchanged')."""
    study = study_path(site, name)
    return {
        "superdataset": git_head(site / "superdataset"),
        "study": git_head(study),
        "sourcedata": git_head(study / "sourcedata"),
        "restricted": git_head(study / "restricted"),
    }


def run_killed_at(args: list[str | os.PathLike[str]], point: str, trace_dir: Path) -> None:
    """Start ``windl ARGS``; SIGKILL it once it reaches checkpoint ``point`` (it waits there).

    See :mod:`windl.checkpoints`: the named point pauses, so the kill lands exactly there.
    """
    import signal
    import time

    trace = trace_dir / f"trace-{point}"
    env = {
        **os.environ,
        "WINDL_CHECKPOINT_FILE": str(trace),
        "WINDL_CHECKPOINT_PAUSE": point,
        "WINDL_CHECKPOINT_DELAY": "60",
    }
    # a session of its own: the kill takes windl's children (git, datalad run's command) too,
    # as a crash of the machine would
    proc = subprocess.Popen(
        [*WINDL, *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if trace.exists() and point in trace.read_text().split():
            break
        assert proc.poll() is None, f"windl {args[0]} ended before reaching {point}"
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"windl {args[0]} never reached {point}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def rerun_onto_parent(study: Path, grep: str, branch: str) -> str:
    """``datalad rerun`` the newest commit whose message matches ``grep``, on a new branch
    from its parent, so the outputs are written from scratch. Returns the rerun commit."""
    from windl.datasets import tool_env

    commit = subprocess.run(
        ["git", "-C", str(study), "log", "--format=%H", "-n", "1", f"--grep={grep}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert commit, f"no commit matches {grep!r}"
    subprocess.run(
        ["datalad", "rerun", "--branch", branch, "--onto", f"{commit}^", commit],
        cwd=study,
        check=True,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert git_head(study) != commit
    return commit


#: participants of :func:`participants_site_template`
THREE_SUBJECTS = ("01", "02", "03")


@pytest.fixture(scope="session")
def participants_site_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """The empty site with raw data ingested for subjects 01, 02 and 03 (made once)."""
    root = tmp_path_factory.mktemp("participants") / "site"
    shutil.copytree(empty_site_template, root, symlinks=True)
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    for subject in THREE_SUBJECTS:
        run_windl("ingest", "study1", source, "--subject", subject, "--site", root)
    return root


@pytest.fixture
def site3(participants_site_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a site whose study1 has participants sub-01, sub-02, sub-03."""
    target = tmp_path / "site"
    shutil.copytree(participants_site_template, target, symlinks=True)
    return target
