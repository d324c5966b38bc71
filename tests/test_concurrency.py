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

from conftest import (
    WINDL,
    assert_site_clean,
    copy_site,
    git_out,
    git_status,
    run_windl,
    study_path,
)

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


def run_together(site: Path, commands: list[list[str]], tmp: Path) -> list[str]:
    """Start every ``windl COMMAND --site SITE`` while the study's lock is held elsewhere;
    once every run says it waits, release it. All must exit 0 without an error line or a
    raw git error. Returns each run's standard output."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(site)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    procs, logs = [], []
    for i, command in enumerate(commands):
        log = tmp / f"run-{i}.err"
        with log.open("wb") as err, (tmp / f"run-{i}.out").open("wb") as out:
            procs.append(
                subprocess.Popen([*WINDL, *command, "--site", str(site)], stdout=out, stderr=err)
            )
        logs.append(log)
    try:
        for log in logs:
            _wait_for_text(log, "windl: waiting for study1 (held by pid", procs)
    finally:
        holder.communicate("")
    for proc, log, command in zip(procs, logs, commands, strict=True):
        assert proc.wait(timeout=900) == 0, (command, log.read_text())
        text = log.read_text()
        for bad in ("windl: error", "fatal:", "Traceback", "could not lock"):
            assert bad not in text, (command, text)
    return [(tmp / f"run-{i}.out").read_text() for i in range(len(commands))]


def ingest_together(site: Path, data: Path, runs: list[tuple[str, str | None]], tmp: Path) -> None:
    """Start one ``windl ingest`` per (subject, session) at once (see :func:`run_together`)."""
    commands = []
    for i, (subject, session) in enumerate(runs):
        source = data / "dcm_qa_nih" / "In" / "20180918Si" / SERIES[i % len(SERIES)]
        command = ["ingest", "study1", str(source), "--subject", subject]
        commands.append([*command, *(["--session", session] if session else [])])
    run_together(site, commands, tmp)


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


# -------------------------------------------- convert, qc, release build (and ingest) at once
CONSENT_CSV = "participant_id,scopes,form_version,date\nsub-k1,members,v1,2026-11-01\n"
RELEASE_BUILD = ["release", "build", "study1", "--scope", "members", "--version", "1.0.0"]


@pytest.fixture(scope="module")
def k1_converted_template(
    two_subjects_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The two-subject site with k1 converted, consented to members and its members release
    1.0.0 built (k2 only ingested)."""
    base = tmp_path_factory.mktemp("concurrent")
    root = copy_site(two_subjects_template, base / "site")
    run_windl("convert", "study1", "--subject", "k1", "--site", root)
    (base / "consent.csv").write_text(CONSENT_CSV)
    run_windl("consent", "import", "study1", base / "consent.csv", "--site", root)
    run_windl(*RELEASE_BUILD, "--site", root)
    return root


def test_convert_qc_release_ingest_at_once(
    k1_converted_template: Path, data: Path, tmp_path: Path
) -> None:
    """Nine commands on one study at once: the same subject converted twice and its QC twice,
    a new subject ingested, k1's release rebuilt, the study validated and the release
    audited twice (each on the commit it read); every one completes, nothing is lost."""
    site = copy_site(k1_converted_template, tmp_path / "site")
    study = study_path(site)
    release = site / "superdataset" / "releases" / "study1" / "members"
    before = git_out(study, "rev-parse", "HEAD").strip()
    k3 = data / "dcm_qa_nih" / "In" / "20180918Si" / "mr_0005"
    commands = [
        ["convert", "study1", "--subject", "k2"],
        ["convert", "study1", "--subject", "k2"],
        ["qc", "study1", "--subject", "k1"],
        ["qc", "study1", "--subject", "k1"],
        ["ingest", "study1", str(k3), "--subject", "k3"],
        RELEASE_BUILD,
        ["validate", "study1"],
        ["audit", str(release)],
        ["audit", str(release)],
    ]
    outputs = run_together(site, commands, tmp_path)
    assert all("PASSED" in out for out in outputs[-2:]), outputs[-2:]
    # one of each pair did the work; the other found it done
    assert sum("unchanged" in out for out in outputs[2:4]) >= 1, outputs[2:4]
    recorded = git_out(study / "sourcedata", "ls-tree", "--name-only", "HEAD").split()
    assert {"sub-k1", "sub-k2", "sub-k3"} <= set(recorded), recorded
    tree = git_out(study, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    for subject in ("k1", "k2"):
        assert any(p.startswith(f"sub-{subject}/") and p.endswith(".nii.gz") for p in tree)
    assert any(p.startswith("derivatives/qc/sub-k1/") for p in tree)
    assert before != git_out(study, "rev-parse", "HEAD").strip()
    assert list(release.rglob("*.nii.gz"))
    # each audit's result is on a commit of the release, the validation on one of the study
    for ds, ref in ((release, "windl/audit"), (study, "windl/validation")):
        noted = git_out(ds, "notes", f"--ref={ref}", "list").split()[1::2]
        assert noted, ref
        history = set(git_out(ds, "rev-list", "HEAD").split())
        assert set(noted) <= history, ref
    # the superdataset records the study's and the release's current commits
    sub_states = git_out(site / "superdataset", "submodule", "status", "--recursive")
    assert not any(line.startswith(("+", "U")) for line in sub_states.splitlines()), sub_states
    assert_site_clean(site)
    assert git_status(release) == ""
    subprocess.run(["git", "annex", "fsck", "--quiet"], cwd=release, check=True)
