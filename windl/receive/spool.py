"""Durable storage of received instances: nothing is acknowledged before it is on disk.

An instance is written to ``<sop>.dcm.tmp``, fsynced, renamed to ``<sop>.dcm`` and its
folder fsynced; only then does the SCP answer Success. After a kill at any moment a
``.tmp`` file is an unacknowledged instance (the sender re-sends it) and is removed on the
next start; a ``.dcm`` file is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from windl.errors import ReceiveError

TMP_SUFFIX = ".tmp"
STUDY_FILE = "study.json"
REASON_FILE = "reason.json"
SERIES_DIR = "series"  # the ingest source: only DICOM below it


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdirs_durable(path: Path, stop: Path) -> None:
    """Create ``path`` and fsync each new folder's parent (up to ``stop``)."""
    missing = []
    current = path
    while not current.exists() and current != stop:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        _fsync_dir(folder.parent)


def write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (tmp, fsync, rename, fsync dir)."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class StoreOutcome:
    """What :meth:`Spool.store` did: ``stored``, ``duplicate`` or ``conflict``."""

    status: str
    path: Path


def _safe_uid(uid: str) -> str:
    uid = uid.strip().rstrip("\x00")
    if not uid or len(uid) > 64 or not all(c.isdigit() or c == "." for c in uid):
        raise ValueError(f"not a DICOM UID: {uid!r}")
    return uid


class Spool:
    """The receive folders of one site, shared by the SCP threads and the worker.

    Parameters
    ----------
    root
        ``<site>/receive``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spool = root / "spool"
        self.handoff = root / "handoff"
        self.quarantine = root / "quarantine"
        self.events = root / "events.jsonl"
        # held while an instance is written into a study folder, and while the worker
        # claims a study folder: an instance never lands in a folder being moved away
        self.lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._known_studies: set[str] = set()

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> list[Path]:
        """Create the folders; remove ``.tmp`` files of unacknowledged instances."""
        for folder in (self.root, self.spool, self.handoff, self.quarantine):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReceiveError(f"cannot create the spool: {exc.strerror}", folder) from None
        removed = []
        for tmp in self.spool.rglob(f"*{TMP_SUFFIX}"):
            tmp.unlink()
            removed.append(tmp)
        return removed

    # ------------------------------------------------------------------ receiving
    def store(
        self, study_uid: str, series_uid: str, sop_uid: str, data: bytes, study_info: dict[str, Any]
    ) -> StoreOutcome:
        """Durably store one instance (the complete DICOM file as ``data``).

        The same SOP Instance UID with the same bytes is stored once (``duplicate``); with
        other bytes the new version goes to ``quarantine/conflicts/`` (``conflict``).
        """
        study_uid, series_uid, sop_uid = map(_safe_uid, (study_uid, series_uid, sop_uid))
        with self.lock:
            study_dir = self.spool / study_uid
            target = study_dir / SERIES_DIR / series_uid / f"{sop_uid}.dcm"
            existing = self._find_existing(study_uid, series_uid, sop_uid, target)
            if existing is not None:
                outcome = self._compare(existing, data, study_uid, sop_uid)
                if outcome is not None:
                    self._last[study_uid] = time.time()
                    return outcome
            if study_uid not in self._known_studies:
                _mkdirs_durable(target.parent, self.root)
                if not (study_dir / STUDY_FILE).exists():
                    write_durable(
                        study_dir / STUDY_FILE,
                        json.dumps({"study_instance_uid": study_uid, **study_info}).encode(),
                    )
                self._known_studies.add(study_uid)
            elif not target.parent.is_dir():
                _mkdirs_durable(target.parent, self.root)
            write_durable(target, data)
            self._last[study_uid] = time.time()
            return StoreOutcome("stored", target)

    def _find_existing(
        self, study_uid: str, series_uid: str, sop_uid: str, target: Path
    ) -> Path | None:
        if target.exists():
            return target
        claimed = self.handoff / study_uid / SERIES_DIR / series_uid / f"{sop_uid}.dcm"
        return claimed if claimed.exists() else None

    def _compare(
        self, existing: Path, data: bytes, study_uid: str, sop_uid: str
    ) -> StoreOutcome | None:
        try:
            same = existing.read_bytes() == data
        except FileNotFoundError:  # handed off and removed meanwhile: store anew
            return None
        if same:
            return StoreOutcome("duplicate", existing)
        conflicts = self.quarantine / "conflicts" / study_uid
        _mkdirs_durable(conflicts, self.root)
        path = conflicts / f"{sop_uid}.{time.time_ns()}.dcm"
        write_durable(path, data)
        self.log_event("conflict", study=study_uid, sop=sop_uid, path=str(path))
        return StoreOutcome("conflict", path)

    # ------------------------------------------------------------------ worker side
    def studies(self) -> Iterator[Path]:
        """Study folders in the spool."""
        if self.spool.is_dir():
            yield from sorted(p for p in self.spool.iterdir() if p.is_dir())

    def last_received(self, study_dir: Path) -> float:
        """Time of the newest instance of a spooled study (memory, else file times)."""
        known = self._last.get(study_dir.name)
        if known is not None:
            return known
        newest = 0.0
        for path in study_dir.rglob("*"):
            try:
                newest = max(newest, path.stat().st_mtime)
            except FileNotFoundError:
                continue
        self._last[study_dir.name] = newest
        return newest

    def idle_studies(self, idle_seconds: float, now: float | None = None) -> list[Path]:
        now = time.time() if now is None else now
        return [s for s in self.studies() if now - self.last_received(s) >= idle_seconds]

    def claim(self, study_dir: Path) -> Path:
        """Move an idle study from the spool to ``handoff/`` (later instances start anew).

        If ``handoff/`` holds the same study already (a previous claim), the files are
        merged into it.
        """
        with self.lock:
            target = self.handoff / study_dir.name
            if not target.exists():
                os.replace(study_dir, target)
            else:
                for path in sorted(study_dir.rglob("*.dcm")):
                    dest = target / path.relative_to(study_dir)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, dest)
                shutil.rmtree(study_dir)
            _fsync_dir(self.handoff)
            _fsync_dir(self.spool)
            self._known_studies.discard(study_dir.name)
            self._last.pop(study_dir.name, None)
        return target

    def claimed(self) -> list[Path]:
        """Studies claimed but not yet finished (e.g. the worker was killed)."""
        if not self.handoff.is_dir():
            return []
        return sorted(p for p in self.handoff.iterdir() if p.is_dir())

    def finish(self, claimed: Path) -> None:
        """Remove a handed-off study (it is in the datasets now)."""
        shutil.rmtree(claimed)
        _fsync_dir(self.handoff)

    def to_quarantine(self, claimed: Path, reason: str, **details: Any) -> Path:
        """Keep a study that cannot be ingested, with the reason."""
        target = self.quarantine / claimed.name
        if target.exists():
            for path in sorted(claimed.rglob("*.dcm")):
                dest = target / path.relative_to(claimed)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest)
            shutil.rmtree(claimed)
        else:
            os.replace(claimed, target)
        write_durable(
            target / REASON_FILE,
            json.dumps({"reason": reason, "time": time.time(), **details}).encode(),
        )
        _fsync_dir(self.quarantine)
        self.log_event("quarantined", study=claimed.name, reason=reason, **details)
        return target

    # ------------------------------------------------------------------ events
    def log_event(self, event: str, **fields: Any) -> None:
        """Append one JSON line to ``events.jsonl`` (hand-offs, errors)."""
        line = json.dumps({"time": time.time(), "event": event, **fields}, default=str)
        with open(self.events, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_events(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        events = []
        for line in self.events.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash
                continue
        return events


def study_files(study_dir: Path) -> list[Path]:
    """The instances of a spooled/claimed/quarantined study."""
    return sorted(study_dir.rglob("*.dcm"))
