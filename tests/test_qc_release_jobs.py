"""``windl qc --jobs N`` and ``windl release build --jobs N``: the per-file work of the one
recorded step runs in N worker processes; the files and the record are those of N = 1, a
failing file does not stop the others, the next run redoes only it, progress is shown."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import threading
from pathlib import Path

from conftest import (
    WINDL,
    commit_messages_since,
    consent_external,
    git_head,
    git_out,
    git_status,
    release_dir,
    study_path,
)

EEG = "sub-02/eeg/sub-02_task-rest_eeg.vhdr"


def _copy(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


def run_on_terminal(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
    """Run ``windl ARGS`` with stderr on a pseudo-terminal (as in an interactive shell, where
    windl shows its progress); return the exit code, stdout and what the terminal got."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*WINDL, *map(str, args)], stdout=subprocess.PIPE, stderr=slave, text=True
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = proc.communicate()
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


def _corrupt(study: Path, rel: str) -> str:
    """Replace a committed input of the study by bytes no reader accepts, and commit that;
    return the commit."""
    path = study / rel
    path.unlink()
    path.write_text("this is not a BrainVision header\n")
    git_out(study, "add", rel)
    git_out(study, "commit", "-q", "-m", f"test: {rel} damaged")
    return git_head(study)


def _restore(study: Path, damage: str) -> None:
    git_out(study, "revert", "--no-edit", damage)


# ----------------------------------------------------------------------------- qc
def test_qc_with_two_jobs_writes_the_same_files_and_record_as_one_job(
    qc_release_site_template: Path, tmp_path: Path
) -> None:
    # the template's QC was computed with --jobs 1; this copy computes it again with two
    # workers, from the same inputs, after removing it
    site = _copy(qc_release_site_template, tmp_path / "site")
    study = study_path(site)
    original = study_path(qc_release_site_template)
    git_out(study, "rm", "-r", "-q", "derivatives/qc")
    git_out(study, "commit", "-q", "-m", "test: QC removed")
    (study / ".git" / "windl" / "qc-cache.json").unlink()
    before = git_head(study)

    out = json.loads(subprocess.run(
        [*WINDL, "qc", "study1", "--jobs", "2", "--json", "--site", str(site)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip

    assert out["failed"] == {} and out["reused"] == 0
    assert out["computed"] == out["recordings"] >= 5  # T1w, 4 BOLD runs, EEG
    assert git_out(study, "rev-parse", "HEAD:derivatives/qc") == git_out(
        original, "rev-parse", "HEAD:derivatives/qc"
    )
    # the same record: the number of workers is not part of the recorded command
    (record,) = commit_messages_since(study, before)
    qc_commit = git_out(original, "log", "-1", "--format=%H", "--grep=windl qc: study1").strip()
    assert record == git_out(original, "log", "-1", "--format=%B", qc_commit).strip()
    assert '"cmd": "python -m windl.qc.step"' in record
    assert git_status(study) == ""


def test_a_file_whose_qc_fails_does_not_stop_the_others_and_a_rerun_retries_only_it(
    qc_release_site_template: Path, tmp_path: Path
) -> None:
    site = _copy(qc_release_site_template, tmp_path / "site")
    study = study_path(site)
    qc = study / "derivatives" / "qc"
    expected = git_out(study, "rev-parse", "HEAD:derivatives/qc")
    damage = _corrupt(study, EEG)
    # without the cache every file is computed again, so the others really run beside it
    (study / ".git" / "windl" / "qc-cache.json").unlink()

    code, stdout, terminal = run_on_terminal("qc", "study1", "--jobs", "2", "--site", site)

    assert code == 1
    assert f"FAILED {EEG}: " in stdout and "cannot read EEG/MEG recording" in stdout
    error = terminal.strip().splitlines()[-1]
    assert error.startswith("windl: error: QC failed for 1 of ") and EEG in error
    # a progress counter on the terminal, up to every file
    total = int(error.split(" of ")[1].split()[0])
    counts = [
        ln.split()[1] for ln in terminal.replace("\r", "\n").splitlines() if ln.startswith("qc ")
    ]
    assert len(counts) >= 2 and counts[-1] == f"{total}/{total}"
    # the others were computed and committed; the failed file's old results are gone
    assert git_status(study) == ""
    assert not list(qc.glob("sub-02/eeg/*_qc.*")) and not (qc / "group_eeg.tsv").exists()
    assert (qc / "group_T1w.tsv").exists() and (qc / "group_bold.tsv").exists()

    _restore(study, damage)
    again = json.loads(subprocess.run(
        [*WINDL, "qc", "study1", "--jobs", "2", "--json", "--site", str(site)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    assert (again["computed"], again["reused"], again["failed"]) == (1, total - 1, {})
    assert git_out(study, "rev-parse", "HEAD:derivatives/qc") == expected


# ----------------------------------------------------------------------------- release
def test_release_build_with_two_jobs_makes_the_same_release_as_one_job(
    qc_release_site_template: Path, tmp_path: Path
) -> None:
    # the template's members release 1.0.0 was built with --jobs 1; without its cache,
    # building the same version again with two workers makes every file anew
    site = _copy(qc_release_site_template, tmp_path / "site")
    members = release_dir(site, "members")
    (members / ".git" / "windl" / "release-cache.json").unlink()
    head = git_head(members)

    code, stdout, terminal = run_on_terminal(
        "release", "build", "study1", "--scope", "members", "--version", "1.0.0",
        "--jobs", "2", "--json", "--site", site,
    )  # fmt: skip

    assert code == 0, terminal
    result = json.loads(stdout)
    assert result["reused"] == 0 and result["made"] > 10  # DICOM, NIfTI, EEG, QC, T1w defaced
    assert not result["changed"] and git_head(members) == head  # byte for byte the same
    assert git_status(members) == ""
    total = result["made"] + len(result["refused"])
    assert f"release files {total}/{total}" in terminal


def test_a_release_file_that_fails_fails_the_build_naming_it_and_the_rebuild_makes_only_it(
    qc_release_site_template: Path, tmp_path: Path
) -> None:
    site = _copy(qc_release_site_template, tmp_path / "site")
    study, external = study_path(site), release_dir(site, "external")
    head = git_head(external)
    consent_external(site, "01")  # new files in 1.1.0: sub-01's BOLD runs, sidecars, QC
    damage = _corrupt(study, EEG)
    (external / ".git" / "windl" / "release-cache.json").unlink()  # every file made again
    args = ["release", "build", "study1", "--scope", "external", "--version", "1.1.0"]

    failed = subprocess.run(
        [*WINDL, *args, "--jobs", "2", "--site", str(site)], capture_output=True, text=True
    )

    assert failed.returncode == 1
    (error,) = [ln for ln in failed.stderr.splitlines() if ln.startswith("windl: error:")]
    assert error.startswith("windl: error: 1 of ") and f"release files failed: {EEG}: " in error
    assert git_head(external) == head and git_status(external) == ""  # nothing half-made

    _restore(study, damage)
    result = json.loads(subprocess.run(
        [*WINDL, *args, "--jobs", "2", "--json", "--site", str(site)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    # only the failed file was made; the others came from the release or from what the
    # failed build had made (sub-01's files are new in this version)
    assert result["made"] == 1 and result["reused"] > 10
    (added,) = result["participants_added"]
    assert list((external / added).rglob("*_bold.nii.gz"))
    assert git_status(external) == ""
    assert not (external / ".git" / "windl" / "release-kept").exists()
