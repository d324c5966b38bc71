"""Backup: every dataset of a study, subject datasets included, into the site's RIA store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import git_out, run_windl, study_path

DATALAD = str(Path(sys.executable).parent / "datalad")
#: git-annex finds DataLad's RIA special remote (git-annex-remote-ora) on PATH, as in a
#: user's environment with DataLad installed
DATALAD_ENV = {
    **os.environ,
    "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _backup(site: Path) -> dict:
    (result,) = json.loads(run_windl("backup", "study1", "--site", site, "--json").stdout)
    return result


def test_backup_pushes_what_changed_and_restores_byte_identical(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    for subject in ("01", "02"):
        run_windl("ingest", "study1", source, "--subject", subject, "--site", site)
    first = _backup(site)
    everything = [
        "sourcedata/sub-02", "sourcedata/sub-01", "sourcedata", "restricted", ".",
    ]  # fmt: skip
    assert sorted(first["pushed"]) == sorted(everything) and first["datasets"] == 5
    assert first["store"] == f"ria+file://{site / 'stores' / 'backup'}"
    # unchanged: nothing to push
    assert _backup(site)["pushed"] == []
    # one more session: its subject's dataset and the parents' records, nothing else
    run_windl("ingest", "study1", source, "--subject", "01", "--session", "2", "--site", site)
    assert _backup(site)["pushed"] == ["sourcedata/sub-01", "sourcedata", "."]
    # restore from the store as a DataLad user does, and get raw data through both levels
    restored = tmp_path / "restored"
    url = f"ria+file://{site / 'stores' / 'backup'}#~study1"
    for args in (
        ["clone", url, str(restored)],
        ["get", "-d", str(restored), str(restored / "sourcedata" / "sub-01")],
    ):
        proc = subprocess.run([DATALAD, *args], capture_output=True, text=True, env=DATALAD_ENV)
        assert proc.returncode == 0, f"datalad {args[0]}: {proc.stdout}\n{proc.stderr}"
    original = study_path(site) / "sourcedata" / "sub-01"
    files = git_out(original, "ls-files", "--", "*.dcm").split()
    assert len(files) == 16  # two sessions of 8
    assert all(
        _sha256(restored / "sourcedata" / "sub-01" / f) == _sha256(original / f) for f in files
    )
    assert git_out(restored / "sourcedata" / "sub-01", "rev-parse", "HEAD") == git_out(
        original, "rev-parse", "HEAD"
    )


def test_backup_refuses_a_sharing_store(site: Path) -> None:
    settings = site / "windl.toml"
    external = site / "stores" / "external"
    settings.write_text(
        settings.read_text() + f'\n[backup]\nurl = "ria+file://{external}"\n', encoding="utf-8"
    )
    proc = run_windl("backup", "study1", "--site", site, check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "external sharing store" in line
    assert not external.exists()
