"""``windl convert --executor slurm``: the sessions run as jobs of a real single-node Slurm
and give the same files and run records as a local conversion."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import commit_messages_since, git_head, git_out, git_status, run_windl, study_path


def test_slurm_conversion_of_two_sessions_equals_a_local_one(
    site: Path, data: Path, tmp_path: Path, slurm_cluster: dict[str, str]
) -> None:
    nih = data / "dcm_qa_nih" / "In"
    run_windl("ingest", "study1", nih / "20180918Si", "--subject", "01", "--site", site)
    run_windl("ingest", "study1", nih / "20180918GE", "--subject", "02", "--site", site)
    before = git_head(study_path(site))
    local = tmp_path / "local"
    shutil.copytree(site, local, symlinks=True)
    run_windl("convert", "study1", "--site", local)

    proc = run_windl("convert", "study1", "--executor", "slurm", "--site", site, env=slurm_cluster)
    assert "sub-01: converted" in proc.stdout and "sub-02: converted" in proc.stdout
    on_slurm, here = study_path(site), study_path(local)
    # the same files (tree object) and the same records, in the same order
    assert git_out(on_slurm, "rev-parse", "HEAD^{tree}") == git_out(
        here, "rev-parse", "HEAD^{tree}"
    )
    records = commit_messages_since(on_slurm, before)
    assert len(records) == 2 and records == commit_messages_since(here, before)
    assert all('"cmd": "WINDL_PLAN_OUT=' in r for r in records)
    assert git_status(on_slurm) == ""
    subprocess.run(["git", "annex", "fsck", "--fast", "--quiet"], cwd=on_slurm, check=True)
    # the jobs ran under Slurm (their output files are removed once read; the queue knows them)
    jobs = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"],
        capture_output=True, text=True, env={**os.environ, **slurm_cluster},
    ).stdout  # fmt: skip
    assert jobs.count("JobName=windl-sub-0") == 2
