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
from typing import IO

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


def configure(
    site: Path, port: int, idle: float, routes: str, convert: bool = False, extra: str = ""
) -> None:
    base = (site / "windl.toml").read_text().split("\n[receive]")[0]
    (site / "windl.toml").write_text(
        base + f'\n[receive]\nae_title = "WINDL"\nport = {port}\n'
        f'allowed_calling = ["STORESCU", "SENDER"]\nidle_seconds = {idle}\n'
        f"convert = {'true' if convert else 'false'}\n{extra}\n" + routes
    )


@contextlib.contextmanager
def receiver(site: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``windl receive`` in a process (and session) of its own; SIGTERM at the end."""
    state = site / "receive" / "receiver.json"
    state.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [*WINDL, "receive", "--site", str(site)],
        env={**os.environ, **(env or {})},
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


def send(port: int, files: list[Path], calling: str = "SENDER", bind: str = "") -> list[str]:
    options = ["--bind", bind] if bind else []
    proc = subprocess.run(
        [sys.executable, str(SENDER), *options, str(port), calling, "WINDL", *map(str, files)],
        capture_output=True,
        text=True,
    )
    return [line.split("\t")[0] for line in proc.stdout.splitlines()]


def dataset_bytes_of(path: Path) -> bytes:
    """A DICOM file's dataset: its bytes after the file meta group."""
    with open(path, "rb") as fp:
        read_preamble(fp, False)
        _read_file_meta_info(fp)
        return fp.read()


def dataset_sha(path: Path) -> str:
    """sha256 of a DICOM file's dataset."""
    return hashlib.sha256(dataset_bytes_of(path)).hexdigest()


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
    configure(site, port, idle=5, routes=ROUTE_SIEMENS + ROUTE_GE, convert=True)
    files = nih_files(data)
    assert len(files) == 608
    with receiver(site):
        # a pynetdicom sender: it sends each file's dataset bytes as they are (dcmtk's
        # storescu re-encodes them), so byte identity can be checked end to end
        assert send(port, files) == ["0000"] * len(files)
        result = wait_handed_off(site, studies=2)
    # a loaded machine can pause the sender longer than the idle time (and the test sender
    # re-sends an instance whose response it missed): a study may then be handed off in more
    # than one part, which is correct when the datasets hold each instance exactly once
    assert {e["study"] for e in result["ingested"]} == {"study1", "study2"}
    assert len(ingested_dicom(site, ["study1"])) == 8
    assert len(ingested_dicom(site, ["study2"])) == 600
    assert all(e["conversion"] == "converted" for e in result["ingested"])
    received = ingested_dicom(site, ["study1", "study2"])
    assert sorted(map(dataset_sha, received)) == sorted(map(dataset_sha, files))
    for name in ("study1", "study2"):
        func = study_path(site, name) / "sub-DEV" / "ses-20180918" / "func"
        assert list(func.glob("*_bold.nii*")), f"{name} not converted"


def sending_until_spooled(
    site: Path, port: int, files: list[Path], log_path: Path, spooled_at_least: int
) -> tuple[subprocess.Popen[bytes], IO[str]]:
    """Start the test sender in the background; return once the spool holds enough files."""
    log = open(log_path, "w")  # noqa: SIM115
    sender = subprocess.Popen(
        [sys.executable, str(SENDER), str(port), "SENDER", "WINDL", *map(str, files)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(spooled(site)) < spooled_at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return sender, log


def _acknowledged(sender_log: str) -> list[str]:
    """Files the sender got a Success response for (``0000<TAB>path`` lines)."""
    return [line.split("\t", 1)[1] for line in sender_log.splitlines() if line.startswith("0000\t")]


def test_kill_9_during_a_send_loses_no_acknowledged_instance_and_resend_stores_each_once(
    site: Path, data: Path, tmp_path: Path
) -> None:
    run_windl("study", "create", "study2", "--site", site)
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS + ROUTE_GE)
    files = nih_files(data)[:292] + nih_files(data)[-8:]  # both studies, half the GE one
    with receiver(site) as proc:
        sender, log = sending_until_spooled(site, port, files, tmp_path / "sender.log", 100)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        sender.wait(60)
        log.close()
    acked = _acknowledged((tmp_path / "sender.log").read_text())
    assert 100 <= len(acked) < len(files)
    on_disk = {dataset_sha(p) for p in spooled(site).values()}
    missing = [f for f in acked if dataset_sha(Path(f)) not in on_disk]
    assert not missing, f"acknowledged but lost: {missing[:3]}"
    configure(site, port, idle=2, routes=ROUTE_SIEMENS + ROUTE_GE)
    with receiver(site):
        assert send(port, files) == ["0000"] * len(files)  # the scanner sends everything again
        wait_handed_off(site, studies=2)
    # every file once (acknowledged before the kill or re-sent after it), none twice
    received = ingested_dicom(site, ["study1", "study2"])
    assert sorted(map(dataset_sha, received)) == sorted(map(dataset_sha, files))
    assert not list((site / "receive" / "spool" / ".incoming").iterdir())
    for name in ("study1", "study2"):
        ds = study_path(site, name)
        subjects = sorted((ds / "sourcedata").glob("sub-*"))
        assert subjects
        for sub in (ds, ds / "sourcedata", *subjects):
            assert not subprocess.run(
                ["git", "-C", str(sub), "status", "--porcelain"], capture_output=True, text=True
            ).stdout
        for sub in subjects:  # the raw data: one dataset per subject
            fsck = subprocess.run(["git", "-C", str(sub), "annex", "fsck", "--fast"],
                                  capture_output=True, text=True)  # fmt: skip
            assert fsck.returncode == 0, fsck.stdout + fsck.stderr


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


def test_unknown_calling_ae_is_rejected_echo_answered_and_one_receiver_per_site(
    site: Path, data: Path
) -> None:
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS)
    with receiver(site):
        assert send(port, nih_files(data)[:1], calling="INTRUDER") == ["rejected"]
        echo = subprocess.run(["echoscu", "-aet", "STORESCU", "-aec", "WINDL", "127.0.0.1",
                               str(port)], capture_output=True)  # fmt: skip
        assert echo.returncode == 0
        second = run_windl("receive", "--port", str(free_port()), "--site", site, check=False)
        assert second.returncode != 0
        assert "another windl receive is running" in second.stderr
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


def test_a_host_outside_allowed_hosts_is_refused_and_an_allowed_host_stores(
    site: Path, data: Path
) -> None:
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS, extra='allowed_hosts = ["127.0.0.2"]')
    files = nih_files(data)[:1]
    with receiver(site):
        assert send(port, files) == ["rejected"]  # from 127.0.0.1
        assert not spooled(site)
        assert send(port, files, bind="127.0.0.2") == ["0000"]
    assert len(spooled(site)) == 1
    refused = [e for e in status(site)["errors"] if e["event"] == "refused"]
    assert [(e["host"], e["reason"]) for e in refused] == [("127.0.0.1", "host not allowed")]


def test_other_bytes_under_a_known_sop_instance_uid_are_kept_beside_the_first(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))[0]
    changed = tmp_path / "changed.dcm"
    ds = pydicom.dcmread(source)
    ds.SeriesDescription = "edited at the console"  # same UIDs, other bytes
    ds.save_as(changed)
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS)
    with receiver(site):
        assert send(port, [source, changed, source]) == ["0000"] * 3
    [kept] = spooled(site).values()
    assert dataset_sha(kept) == dataset_sha(source)  # the first version, not overwritten
    data_status = status(site)
    [conflict] = data_status["conflicts"]
    assert dataset_sha(Path(conflict["file"])) == dataset_sha(changed)  # the second, not dropped
    assert [e["event"] for e in data_status["errors"]].count("conflict") == 1  # re-send: dup
    assert "conflicts: 1 instances" in run_windl("receive", "--status", "--site", site).stdout


def test_subject_and_session_are_looked_up_in_the_study_restricted_scanner_ids(
    site: Path, data: Path
) -> None:
    from windl.datasets import save

    restricted = study_path(site, "study1") / "restricted"
    (restricted / "scanner-ids.tsv").write_text("scanner_id\tsubject\tsession\nDEV\t07\tpre\n")
    save(restricted, ["scanner-ids.tsv"], "test: scanner ids")
    route = '[[receive.routes]]\nstudy = "study1"\nsubject_lookup = "PatientID"\n'
    port = free_port()
    configure(site, port, idle=1, routes=route)
    siemens = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))
    with receiver(site):
        assert send(port, siemens) == ["0000"] * len(siemens)
        result = wait_handed_off(site, studies=1)
    [event] = result["ingested"]
    assert (event["study"], event["subject"], event["session"]) == ("study1", "07", "pre")
    received = ingested_dicom(site, ["study1"])
    assert len(received) == len(siemens)
    assert all("/sub-07/ses-pre/" in str(p) for p in received)
    assert "DEV" not in {part for p in received for part in p.parts}


def _commits(sourcedata: Path) -> int:
    """Ingest commits of raw data: in the subjects' datasets of ``sourcedata``."""
    count = 0
    for sub in sourcedata.glob("sub-*"):
        out = subprocess.run(["git", "-C", str(sub), "log", "--format=%s"],
                             capture_output=True, text=True, check=True)  # fmt: skip
        count += sum(line.startswith("windl ingest: ") for line in out.stdout.splitlines())
    return count


def test_commit_per_series_commits_each_series_and_per_session_the_whole_study(
    site: Path, data: Path
) -> None:
    run_windl("study", "create", "study2", "--site", site)
    siemens = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))
    ge_dir = data / "dcm_qa_nih" / "In" / "20180918GE"
    ge = [p for d in ("mr_0004", "mr_0005") for p in sorted((ge_dir / d).glob("*.dcm"))[:3]]
    series = {str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in siemens}
    assert len(series) > 1
    sourcedata = {n: study_path(site, n) / "sourcedata" for n in ("study1", "study2")}
    before = {n: _commits(ds) for n, ds in sourcedata.items()}
    port = free_port()
    configure(site, port, idle=1, routes=ROUTE_SIEMENS, extra='commit_per = "series"')
    with receiver(site):
        assert send(port, siemens) == ["0000"] * len(siemens)
        [per_series] = wait_handed_off(site, studies=1)["ingested"]
    configure(site, port, idle=1, routes=ROUTE_GE, extra='commit_per = "session"')
    with receiver(site):
        assert send(port, ge) == ["0000"] * len(ge)
        per_session = [e for e in wait_handed_off(site, studies=2)["ingested"]
                       if e["study"] == "study2"]  # fmt: skip
    assert len(per_series["commits"]) == len(series)
    assert _commits(sourcedata["study1"]) - before["study1"] == len(series)
    # one commit per hand-off (on a busy machine the scanner's pause may split the study
    # into two hand-offs: each is still one commit, never one per series)
    assert per_session and all(len(e["commits"]) == 1 for e in per_session)
    assert _commits(sourcedata["study2"]) - before["study2"] == len(per_session)
    assert len(ingested_dicom(site, ["study2"])) == len(ge)


def test_sigterm_during_a_send_lets_the_association_finish_then_exits_0(
    site: Path, data: Path, tmp_path: Path
) -> None:
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS + ROUTE_GE)
    files = nih_files(data)[:200]  # GE: enough to be mid-association at SIGTERM
    with receiver(site) as proc:
        sender, log = sending_until_spooled(site, port, files, tmp_path / "sender.log", 50)
        proc.send_signal(signal.SIGTERM)
        at_sigterm = len(spooled(site))
        assert sender.wait(120) == 0
        assert proc.wait(120) == 0
        log.close()
    acked = _acknowledged((tmp_path / "sender.log").read_text())
    assert len(acked) == len(files)  # every instance of the running association answered
    assert len(spooled(site)) == len(files)
    assert at_sigterm < len(files)  # the association was still sending when stopped
    log_lines = (site.parent / "receiver.log").read_text().splitlines()
    stopped = [json.loads(line) for line in log_lines if '"stopped"' in line]
    assert stopped[-1]["aborted_associations"] == 0
    assert stopped[-1]["stored"] == len(files)


def test_quarantined_studies_are_requeued_after_fixing_the_rules_or_to_a_named_study(
    site: Path, data: Path
) -> None:
    port = free_port()
    configure(site, port, idle=1, routes="")  # no rule: everything is unroutable
    ge = sorted((data / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004").glob("*.dcm"))[:5]
    siemens = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))
    uid = {
        name: str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        for name, files in (("ge", ge), ("siemens", siemens))
    }
    with receiver(site):
        assert send(port, ge + siemens) == ["0000"] * (len(ge) + len(siemens))
        quarantined = wait_handed_off(site, studies=2)["quarantine"]
        assert {q["study_uid"] for q in quarantined} == set(uid.values())
        wrong = run_windl("receive", "--requeue", uid["ge"], "--study", "nope", "--site", site,
                          check=False)  # fmt: skip
        assert wrong.returncode != 0 and len(wrong.stderr.strip().splitlines()) == 1
        assert "nope" in wrong.stderr
        assert len(status(site)["quarantine"]) == 2  # nothing moved
        for bad in ("1.2.3", "../../etc", "conflicts"):
            unknown = run_windl("receive", "--requeue", bad, "--site", site, check=False)
            assert unknown.returncode != 0, bad
            assert (
                unknown.stderr.startswith("windl: error: ") and "no quarantined" in unknown.stderr
            )
        # the GE study by name; the Siemens one after a rule for it is added (no restart)
        run_windl("receive", "--requeue", uid["ge"], "--study", "study1", "--site", site)
        configure(site, port, idle=1, routes=ROUTE_SIEMENS)
        run_windl("receive", "--requeue", uid["siemens"], "--site", site)
        deadline = time.monotonic() + 300
        while len(status(site)["ingested"]) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        result = status(site)
    assert not result["quarantine"]
    ingested = {(e["study_uid"], e["study"], e["files"]) for e in result["ingested"]}
    assert ingested == {(uid["ge"], "study1", len(ge)), (uid["siemens"], "study1", len(siemens))}
    received = sorted(map(dataset_sha, ingested_dicom(site, ["study1"])))
    assert received == sorted(map(dataset_sha, ge + siemens))


def test_after_a_crash_a_complete_part_file_is_recovered_and_a_cut_one_removed(
    site: Path, data: Path
) -> None:
    """What a kill between fsync and rename leaves in spool/.incoming, and its repair."""
    import zlib

    from windl.receive.dataset import file_meta

    first, second = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))[:2]
    incoming = site / "receive" / "spool" / ".incoming"
    incoming.mkdir(parents=True)
    parts = {}
    for path in (first, second):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        meta = file_meta(
            ds.SOPClassUID,
            ds.SOPInstanceUID,
            ds.file_meta.TransferSyntaxUID,
            "SENDER",
            "1.2.3",
            "T",
        )
        raw = meta + dataset_bytes_of(path)
        name = f"{ds.SOPInstanceUID}.{len(raw)}.{zlib.crc32(raw):08x}.1.part"
        parts[path] = (incoming / name, raw)
    good, good_raw = parts[first]
    good.write_bytes(good_raw)
    cut, cut_raw = parts[second]
    cut.write_bytes(cut_raw[: len(cut_raw) // 2])  # the crash came while writing it
    port = free_port()
    configure(site, port, idle=3600, routes=ROUTE_SIEMENS)
    with receiver(site):
        pass
    # a complete .part of an instance the spool already holds (renamed, then the crash)
    good.write_bytes(good_raw)
    with receiver(site):
        pass
    stored = spooled(site)
    assert list(stored) == [str(pydicom.dcmread(first, stop_before_pixels=True).SOPInstanceUID)]
    assert dataset_sha(next(iter(stored.values()))) == dataset_sha(first)
    assert not list(incoming.iterdir())
    assert not status(site)["conflicts"]


def test_the_header_walk_reads_the_uids_pydicom_reads_and_refuses_cut_datasets(
    data: Path,
) -> None:
    from windl.errors import MalformedDataset
    from windl.receive.dataset import scan_dataset

    files = sorted((data / "dcm_qa_ts" / "In").glob("*.dcm")) + nih_files(data)[::100]
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
        raw = dataset_bytes_of(path)
        assert scan_dataset(raw, ts) == {
            "sop_class": ds.SOPClassUID,
            "sop_instance": ds.SOPInstanceUID,
            "study": ds.StudyInstanceUID,
            "series": ds.SeriesInstanceUID,
        }, path.name
        for cut in (7, len(raw) // 2 + 3, len(raw) - 1):  # inside a header, anywhere, last byte
            with pytest.raises(MalformedDataset):
                scan_dataset(raw[:cut], ts)


def test_a_hand_off_killed_after_its_commit_is_finished_on_restart_without_a_second_commit(
    site: Path, data: Path, tmp_path: Path
) -> None:
    siemens = sorted((data / "dcm_qa_nih" / "In" / "20180918Si").rglob("*.dcm"))
    sourcedata = study_path(site, "study1") / "sourcedata"
    before = _commits(sourcedata)
    port = free_port()
    configure(site, port, idle=1, routes=ROUTE_SIEMENS)
    trace = tmp_path / "trace"
    pause = {
        "WINDL_CHECKPOINT_FILE": str(trace),
        "WINDL_CHECKPOINT_PAUSE": "receive-ingested",  # ingested, hand-off not yet finished
        "WINDL_CHECKPOINT_DELAY": "120",
    }
    with receiver(site, env=pause) as proc:
        assert send(port, siemens) == ["0000"] * len(siemens)
        deadline = time.monotonic() + 300
        while not (trace.exists() and "receive-ingested" in trace.read_text().split()):
            assert time.monotonic() < deadline, "the hand-off never reached its commit"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _commits(sourcedata) == before + 1
    [claimed] = (site / "receive" / "handoff").iterdir()  # the hand-off was cut off
    with receiver(site):
        [event] = wait_handed_off(site, studies=1)["ingested"]
    assert event["commits"] == []  # ingest saw its own earlier commit: nothing to add
    assert _commits(sourcedata) == before + 1
    assert not claimed.exists()
    received = ingested_dicom(site, ["study1"])
    assert sorted(map(dataset_sha, received)) == sorted(map(dataset_sha, siemens))
    assert not subprocess.run(["git", "-C", str(sourcedata), "status", "--porcelain"],
                              capture_output=True, text=True).stdout  # fmt: skip


def test_a_routing_rule_with_a_bad_pattern_stops_the_receiver_in_one_line(site: Path) -> None:
    bad = '[[receive.routes]]\nstudy = "study1"\nmatch = { StudyDescription = "(unclosed" }\n'
    configure(site, free_port(), idle=1, routes=bad)
    proc = run_windl("receive", "--site", site, check=False)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("windl: error: ") and "windl.toml" in line
    assert "receive.routes[0].match.StudyDescription" in line
