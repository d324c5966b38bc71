"""``windl receive``: run the SCP and the hand-off worker until SIGTERM; and ``--status``."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from windl.config import Site
from windl.errors import ReceiveError
from windl.files import atomic_write_text
from windl.receive import ReceiveSettings, receive_root
from windl.receive.scp import Receiver, install_signal_handlers
from windl.receive.spool import CONFLICTS, REASON_FILE, STUDY_FILE, Spool, study_files
from windl.receive.worker import Worker
from windl.study import get_study

STATE_FILE = "receiver.json"
LOCK_FILE = "receiver.lock"
_RECORD_FIELDS = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("windl.receive")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def serve(
    site: Site,
    port: int | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Receive until SIGTERM/SIGINT (or ``stop``); then finish associations and hand-off."""
    _configure_logging()
    settings = ReceiveSettings.from_site(site, port=port)
    lock = _lock_site(site)  # held until this process ends
    receiver = Receiver(site, settings)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers(stop)
    receiver.start()
    worker = Worker(site, settings, receiver.spool, stop)
    worker.start()
    state = receive_root(site) / STATE_FILE
    running = {
        "pid": os.getpid(),
        "port": receiver.port,
        "ae_title": settings.ae_title,
        "started": time.time(),
    }
    atomic_write_text(state, json.dumps(running))
    if ready is not None:
        ready.set()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        logging.getLogger("windl.receive").info("shutting down")
        receiver.stop()
        stop.set()
        worker.join()
        state.unlink(missing_ok=True)
        lock.close()


def _lock_site(site: Site) -> IO[str]:
    """One receiver per site: two would hand off the same spool twice."""
    root = receive_root(site)
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ReceiveError("another windl receive is running on this site", root) from None
    return handle


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(site: Site, recent: int = 10) -> dict[str, Any]:
    """Queues (spool, hand-off, quarantine), last studies ingested, last errors."""
    root = receive_root(site)
    spool = Spool(root)
    state: dict[str, Any] | None = None
    if (root / STATE_FILE).is_file():
        state = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
        state["running"] = _alive(int(state["pid"]))

    def describe(folder: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"study_uid": folder.name, "files": len(study_files(folder))}
        if (folder / STUDY_FILE).is_file():
            info.update(json.loads((folder / STUDY_FILE).read_text(encoding="utf-8")))
        if (folder / REASON_FILE).is_file():
            info.update(json.loads((folder / REASON_FILE).read_text(encoding="utf-8")))
        return info

    now = time.time()
    spooled = []
    for folder in spool.studies():
        entry = describe(folder)
        entry["idle_seconds"] = round(now - spool.last_received(folder), 1)
        spooled.append(entry)
    quarantine = []
    if spool.quarantine.is_dir():
        quarantine = [
            describe(p)
            for p in sorted(spool.quarantine.iterdir())
            if p.is_dir() and p.name != CONFLICTS
        ]
    conflicts = []
    if (spool.quarantine / CONFLICTS).is_dir():
        for folder in sorted((spool.quarantine / CONFLICTS).iterdir()):
            conflicts += [{"study_uid": folder.name, "file": str(p)} for p in study_files(folder)]
    events = spool.read_events()
    return {
        "receiver": state,
        "spool": spooled,
        "handoff": [describe(p) for p in spool.claimed()],
        "quarantine": quarantine,
        "conflicts": conflicts,
        "ingested": [e for e in events if e["event"] == "ingested"][-recent:],
        "errors": [e for e in events if e["event"] != "ingested"][-recent:],
    }


def status_text(data: dict[str, Any]) -> str:
    """``windl receive --status`` as lines."""
    state = data["receiver"]
    lines = [
        f"receiver: {'running' if state and state['running'] else 'not running'}"
        + (f" (pid {state['pid']}, {state['ae_title']} on port {state['port']})" if state else "")
    ]
    for key in ("spool", "handoff", "quarantine"):
        lines.append(f"{key}: {len(data[key])} studies")
        for entry in data[key]:
            extra = f" — {entry['reason']}" if "reason" in entry else ""
            lines.append(f"  {entry['study_uid']}\t{entry['files']} files{extra}")
    if data["conflicts"]:
        lines.append(f"conflicts: {len(data['conflicts'])} instances (other bytes, same UID)")
        lines += [f"  {c['file']}" for c in data["conflicts"]]
    lines.append("last ingested:")
    for e in data["ingested"]:
        where = f"{e['study']} sub-{e['subject']}" + (
            f" ses-{e['session']}" if e["session"] else ""
        )
        lines.append(f"  {time.strftime('%F %T', time.localtime(e['time']))}\t{where}\t"
                     f"{e['files']} files\t{e['study_uid']}")  # fmt: skip
    lines.append("last errors:")
    for e in data["errors"]:
        detail = e.get("reason") or e.get("error") or ""
        lines.append(
            f"  {time.strftime('%F %T', time.localtime(e['time']))}\t{e['event']}\t{detail}"
        )
    return "\n".join(lines)


def requeue(site: Site, study_uid: str, study: str | None = None) -> Path:
    """Route a quarantined study again (with the rules now in ``windl.toml``, or to ``study``).

    The running receiver's worker (or the next one started) hands it off.
    """
    if study is not None:
        get_study(site, study)  # StudyNotFound before anything moves
    return Spool(receive_root(site)).requeue(study_uid, study)
