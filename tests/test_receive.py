"""windl receive: a real SCP in its own process, real senders (dcmtk storescu, pynetdicom)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.filereader import _read_file_meta_info, read_preamble

from conftest import WINDL, run_windl, study_path

SENDER = Path(__file__).with_name("dicom_send.py")
ROUTE_SIEMENS = """
[[receive.routes]]
study = "study1"
match = { Manufacturer = "(?i)siemens" }
subject = "{PatientID}"
session = "{StudyDate}"
"""
ROUTE_GE = """
[[receive.routes]]
study = "study2"
match = { Manufacturer = "(?i)^GE" }
subject = "{PatientID}"
session = "{StudyDate}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(site: Path, port: int, idle: float, routes: str, convert: bool = False) -> None:
    base = (site / "windl.toml").read_text().split("\n[receive]")[0]
    (site / "windl.toml").write_text(
        base + f'\n[receive]\nae_title = "WINDL"\nport = {port}\n'
        f'allowed_calling = ["STORESCU", "SENDER"]\nidle_seconds = {idle}\n'
        f"convert = {'true' if convert else 'false'}\n" + routes
    )


@contextlib.contextmanager
def receiver(site: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``windl receive`` in a process (and session) of its own; SIGTERM at the end."""
    state = site / "receive" / "receiver.json"
    state.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [*WINDL, "receive", "--site", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=open(site.parent / "receiver.log", "ab"),  # noqa: SIM115
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (state.exists() and json.loads(state.read_text() or "{}").get("pid") == proc.pid):
        assert proc.poll() is None, (site.parent / "receiver.log").read_text()
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.1)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)


def send(port: int, files: list[Path], calling: str = "SENDER") -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(SENDER), str(port), calling, "WINDL", *map(str, files)],
        capture_output=True,
        text=True,
    )
    return [line.split("\t")[0] for line in proc.stdout.splitlines()]


def dataset_sha(path: Path) -> str:
    """sha256 of a DICOM file's dataset: its bytes after the file meta group."""
    with open(path, "rb") as fp:
        read_preamble(fp, False)
        _read_file_meta_info(fp)
        return hashlib.sha256(fp.read()).hexdigest()


def status(site: Path) -> dict:
    return json.loads(run_windl("receive", "--status", "--json", "--site", site).stdout)


def wait_handed_off(site: Path, studies: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = status(site)
        done = {e["study_uid"] for e in data["ingested"]} | {
            q["study_uid"] for q in data["quarantine"]
        }
        if len(done) >= studies and not data["spool"] and not data["handoff"]:
            return data
        time.sleep(1)
    pytest.fail(f"hand-off did not finish: {status(site)}")


def nih_files(data: Path) -> list[Path]:
    return sorted((data / "dcm_qa_nih" / "In").rglob("*.dcm"))


def spooled(site: Path) -> dict[str, Path]:
    return {p.stem: p for p in (site / "receive" / "spool").rglob("*.dcm")}


def ingested_dicom(site: Path, studies: list[str]) -> list[Path]:
    return [
        p
        for name in studies
        for p in (study_path(site, name) / "sourcedata").rglob("*.dcm")
        if "/dicom/" in str(p)
    ]


def add_task_settings(site: Path, name: str) -> None:
    from windl.datasets import save

    study = study_path(site, name)
    (study / "code" / "study.toml").write_text('[convert.tasks]\n"(?i)epi" = "rest"\n')
    save(study, ["code/study.toml"], "test: task settings")


def test_sent_dcm_qa_nih_is_ingested_into_routed_studies_byte_identical_and_converted(
    site: Path, data: Path
) -> None:
    run_windl("study", "create", "study2", "--site", site)
    for name in ("study1", "study2"):
        add_task_settings(site, name)
    port = free_port()
    configure(site, port, idle=2, routes=ROUTE_SIEMENS + ROUTE_GE, convert=True)
    files = nih_files(data)
    assert len(files) == 608
    with receiver(site):
        # a pynetdicom sender: it sends each file's dataset bytes as they are (dcmtk's
        # storescu re-encodes them), so byte identity can be checked end to end
        assert send(port, files) == ["0000"] * len(files)
        result = wait_handed_off(site, studies=2)
    assert {(e["study"], e["files"]) for e in result["ingested"]} == {
        ("study1", 8),
        ("study2", 600),
    }
    assert all(e["conversion"] == "converted" for e in result["ingested"])
    received = ingested_dicom(site, ["study1", "study2"])
    assert sorted(map(dataset_sha, received)) == sorted(map(dataset_sha, files))
    for name in ("study1", "study2"):
        func = study_path(site, name) / "sub-DEV" / "ses-20180918" / "func"
        assert list(func.glob("*_bold.nii*")), f"{name} not converted"


def _acknowledged(sender_log: str) -> list[str]:
    """Files the sender got a Success response for (``0000<TAB>path`` lines)."""
    return [line.split("\t", 1)[1] for line in sender_log.splitlines() if line.startswith("0000\t")]


def test_kill_9_during_a_send_loses_no_acknowledged_instance_and_resend_stores_each_once(
    site: Path, data: Path, tmp_path: Path
) -> None:
    run_windl("study", "create", "study2", "--site", site)
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS + ROUTE_GE)
    files = nih_files(data)
    with receiver(site) as proc:
        log = open(tmp_path / "sender.log", "w")  # noqa: SIM115
        sender = subprocess.Popen(
            [sys.executable, str(SENDER), str(port), "SENDER", "WINDL", *map(str, files)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(spooled(site)) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        sender.wait(60)
        log.close()
    acked = _acknowledged((tmp_path / "sender.log").read_text())
    assert 150 <= len(acked) < len(files)
    on_disk = {dataset_sha(p) for p in spooled(site).values()}
    missing = [f for f in acked if dataset_sha(Path(f)) not in on_disk]
    assert not missing, f"acknowledged but lost: {missing[:3]}"
    configure(site, port, idle=2, routes=ROUTE_SIEMENS + ROUTE_GE)
    with receiver(site):
        assert send(port, files) == ["0000"] * len(files)  # the scanner sends everything again
        wait_handed_off(site, studies=2)
    received = ingested_dicom(site, ["study1", "study2"])
    assert sorted(map(dataset_sha, received)) == sorted(map(dataset_sha, files))
    for name in ("study1", "study2"):
        ds = study_path(site, name)
        for sub in (ds, ds / "sourcedata"):
            assert not subprocess.run(
                ["git", "-C", str(sub), "status", "--porcelain"], capture_output=True, text=True
            ).stdout


def test_all_lossless_transfer_syntaxes_are_stored_as_sent_and_duplicates_once(
    site: Path, data: Path
) -> None:
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS)
    files = sorted((data / "dcm_qa_ts" / "In").glob("*.dcm"))
    with receiver(site):
        assert send(port, files) == ["0000"] * len(files)
        assert send(port, files) == ["0000"] * len(files)  # the scanner sends again
    stored = spooled(site)
    uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    assert set(stored) == uids
    assert sorted(map(dataset_sha, stored.values())) == sorted(map(dataset_sha, files))
    for uid, path in stored.items():
        sent = next(f for f in files if pydicom.dcmread(f, stop_before_pixels=True)
                    .SOPInstanceUID == uid)  # fmt: skip
        ts = pydicom.dcmread(sent, stop_before_pixels=True).file_meta.TransferSyntaxUID
        assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == ts


def test_unknown_calling_ae_is_rejected(site: Path, data: Path) -> None:
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS)
    with receiver(site):
        assert send(port, nih_files(data)[:1], calling="INTRUDER") == ["rejected"]
        echo = subprocess.run(["echoscu", "-aet", "STORESCU", "-aec", "WINDL", "127.0.0.1",
                               str(port)], capture_output=True)  # fmt: skip
        assert echo.returncode == 0
    assert not spooled(site)
    assert any(e["event"] == "rejected" for e in status(site)["errors"])


def test_unroutable_study_goes_to_quarantine_and_is_listed(site: Path, data: Path) -> None:
    port = free_port()
    configure(site, port, idle=1, routes=ROUTE_SIEMENS)
    ge = sorted((data / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004").glob("*.dcm"))[:5]
    with receiver(site):
        assert send(port, ge) == ["0000"] * 5
        result = wait_handed_off(site, studies=1)
    [entry] = result["quarantine"]
    assert entry["files"] == 5
    assert "no routing rule matches" in entry["reason"]
    text = run_windl("receive", "--status", "--site", site).stdout
    assert "quarantine: 1 studies" in text
    assert not ingested_dicom(site, ["study1"])


def test_malformed_dataset_gets_a_failure_status_and_is_not_stored(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))[0]
    raw = source.read_bytes()
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(raw[: len(raw) - 5000])
    no_study = tmp_path / "no-study.dcm"
    ds = pydicom.dcmread(source)
    del ds.StudyInstanceUID
    ds.save_as(no_study)
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS)
    with receiver(site):
        statuses = send(port, [truncated, no_study])
    assert all(s.startswith(("c", "a9")) for s in statuses), statuses
    assert len(statuses) == 2
    assert not spooled(site)
    refused = [e for e in status(site)["errors"] if e["event"] == "refused instance"]
    assert len(refused) == 2
