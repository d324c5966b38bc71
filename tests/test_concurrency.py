"""Concurrent commands on one study: each waits for the study's lock, nothing is lost.

Issue 22: two ``windl ingest`` of new subjects started together both exited 0 while one
subject's dataset was left unrecorded. Every writing command now holds its study's lock
(:mod:`windl.locks`); these tests start several at once, through the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import WINDL, assert_site_clean, git_out, study_path

#: one small Siemens series (3 files) per run
SERIES = ("mr_0003", "mr_0004", "mr_0005", "mr_0006")
HOLD = """
import sys
from pathlib import Path
from windl.locks import study_lock
with study_lock(Path(sys.argv[1]), "study1"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _wait_for_text(path: Path, text: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 120
    while text not in path.read_text(errors="replace"):
        assert all(p.poll() is None for p in procs), f"a run ended early: {path.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.1)


def ingest_together(site: Path, data: Path, runs: list[tuple[str, str | None]], tmp: Path) -> None:
    """Start one ``windl ingest`` per (subject, session) while the study's lock is held
    elsewhere; once every run says it waits, release it; all must exit 0."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(site)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    procs, logs = [], []
    for i, (subject, session) in enumerate(runs):
        source = data / "dcm_qa_nih" / "In" / "20180918Si" / SERIES[i % len(SERIES)]
        args = ["ingest", "study1", str(source), "--subject", subject, "--site", str(site)]
        log = tmp / f"ingest-{i}.err"
        with log.open("wb") as err:
            procs.append(
                subprocess.Popen(
                    [*WINDL, *args, *(["--session", session] if session else [])],
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
        logs.append(log)
    try:
        for log in logs:
            _wait_for_text(log, "windl: waiting for study1 (held by pid", procs)
    finally:
        holder.communicate("")
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=600) == 0, log.read_text()
        assert "windl: error" not in log.read_text()


@pytest.mark.parametrize(
    "runs",
    [
        [(f"p{i}", None) for i in range(1, 5)],
        [("p1", f"s{i}") for i in range(1, 5)],
    ],
    ids=["different-subjects", "same-subject"],
)
def test_concurrent_ingests_all_recorded(
    site: Path, data: Path, tmp_path: Path, runs: list[tuple[str, str | None]]
) -> None:
    ingest_together(site, data, runs, tmp_path)
    study = study_path(site)
    recorded = git_out(study / "sourcedata", "ls-tree", "--name-only", "HEAD").split()
    for subject, session in runs:
        assert f"sub-{subject}" in recorded
        sub_ds = study / "sourcedata" / f"sub-{subject}"
        tree = git_out(sub_ds, "ls-tree", "-r", "--name-only", "HEAD")
        where = f"ses-{session}/dicom/" if session else "dicom/"
        assert any(line.startswith(where) for line in tree.splitlines()), (subject, session)
    assert_site_clean(site)


def test_lock_is_reentrant_in_one_process(site: Path) -> None:
    """A step that calls another step takes the lock again without waiting for itself."""
    from windl.locks import lock_path, study_lock, superdataset_lock

    with study_lock(site, "study1"), study_lock(site, "study1"), superdataset_lock(site):
        assert lock_path(site, "study1").is_file()
