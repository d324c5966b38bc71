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
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom

from windl.errors import MalformedDataset, ReceiveError
from windl.receive.dataset import dataset_bytes, scan_dataset

TMP_SUFFIX = ".tmp"
PART_SUFFIX = ".part"
STUDY_FILE = "study.json"
REASON_FILE = "reason.json"
SERIES_DIR = "series"  # the ingest source: only DICOM below it
INCOMING = ".incoming"  # spool/.incoming: instances being written (never acknowledged)
CONFLICTS = "conflicts"  # quarantine/conflicts: other bytes under a SOP Instance UID seen


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(path: Path) -> None:
    """fsync every folder below and including ``path`` (their entries become durable)."""
    for folder, _, _ in os.walk(path, topdown=False):
        _fsync_dir(Path(folder))


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


def _write_synced(path: Path, parts: Sequence[bytes | bytearray]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        views = [memoryview(p) for p in parts]
        while views:
            written = os.writev(fd, views)
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes | Sequence[bytes | bytearray]) -> None:
    """Write ``data`` to ``path`` atomically and durably (tmp, fsync, rename, fsync dir)."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    _write_synced(tmp, [data] if isinstance(data, bytes) else data)
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
        self.incoming = self.spool / INCOMING
        self.events = root / "events.jsonl"
        # held while an instance is written into a study folder, and while the worker
        # claims a study folder: an instance never lands in a folder being moved away
        self.lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._known_studies: set[str] = set()

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> tuple[int, int]:
        """Create the folders; recover instances cut off by a crash.

        A ``.part`` file in ``spool/.incoming`` whose size and CRC-32 match its name was
        fsynced — perhaps acknowledged — before the crash, and is moved into the spool; any
        other (written when the crash came, never acknowledged) is removed, as are the
        ``.tmp`` files of cut-off bookkeeping writes. Returns ``(recovered, removed)``.
        """
        for folder in (self.root, self.spool, self.incoming, self.handoff, self.quarantine):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReceiveError(f"cannot create the spool: {exc.strerror}", folder) from None
        recovered = removed = 0
        for part in sorted(self.incoming.glob(f"*{PART_SUFFIX}")):
            if self._recover(part):
                recovered += 1
            else:
                removed += 1
            part.unlink(missing_ok=True)  # moved in, a duplicate, or cut off
        for tmp in self.root.rglob(f"*{TMP_SUFFIX}"):
            tmp.unlink()
            removed += 1
        _fsync_dir(self.incoming)
        return recovered, removed

    def _recover(self, part: Path) -> bool:
        try:
            _sop, size, crc, _thread, _ = part.name.rsplit(".", 4)
            raw = part.read_bytes()
            if len(raw) != int(size) or zlib.crc32(raw) != int(crc, 16):
                return False
            meta = pydicom.filereader.read_file_meta_info(part)
            dataset = dataset_bytes(raw)
            uids = scan_dataset(dataset, str(meta.TransferSyntaxUID))
            info = {
                "calling_ae": str(meta.get("SourceApplicationEntityTitle", "")).strip(),
                "recovered": True,
            }
            self._place(part, uids["study"], uids["series"], uids["sop_instance"], dataset, info)
        except (ValueError, OSError, MalformedDataset, pydicom.errors.InvalidDicomError):
            return False
        return True

    # ------------------------------------------------------------------ receiving
    def store(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        parts: tuple[bytes, bytes | bytearray],
        study_info: dict[str, Any],
    ) -> StoreOutcome:
        """Durably store one instance: ``parts`` are its file meta and its dataset bytes.

        Durable on return: the instance is written to ``spool/.incoming/<sop>.<size>.<crc>
        .<thread>.part`` and fsynced — one journal commit, the cost every acknowledgement
        pays —, then renamed into its series folder. That rename is made durable later
        (before hand-off, :meth:`claim`); if a crash comes first, :meth:`prepare` finds the
        complete ``.part`` by its size and CRC and moves it in then. (The ``.part``'s own
        name is made durable by its fsync: a new file's name is in the journal transaction
        the fsync commits on ext4, XFS and btrfs; the folder is not fsynced per instance.)

        The same SOP Instance UID with the same dataset bytes is stored once
        (``duplicate``, nothing written); with other bytes the new version is kept in
        ``quarantine/conflicts/<study-uid>/`` beside the first (``conflict``): neither is
        dropped or overwritten.
        """
        study_uid, series_uid, sop_uid = map(_safe_uid, (study_uid, series_uid, sop_uid))
        dataset = parts[1]
        with self.lock:
            outcome = self._if_known(study_uid, series_uid, sop_uid, dataset, parts)
        if outcome is not None:
            return outcome
        crc = zlib.crc32(parts[1], zlib.crc32(parts[0]))
        size = len(parts[0]) + len(parts[1])
        name = f"{sop_uid}.{size}.{crc:08x}.{threading.get_ident()}{PART_SUFFIX}"
        part = self.incoming / name
        # written and fsynced outside the lock: associations write in parallel
        _write_synced(part, parts)
        try:
            return self._place(part, study_uid, series_uid, sop_uid, dataset, study_info)
        finally:
            part.unlink(missing_ok=True)

    def _if_known(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        dataset: bytes | bytearray,
        new: Path | Sequence[bytes | bytearray],
    ) -> StoreOutcome | None:
        """Duplicate or conflict of an instance already received, else ``None``.

        ``new`` is the instance (a durable ``.part`` or its bytes), kept if a conflict.
        """
        target = self.spool / study_uid / SERIES_DIR / series_uid / f"{sop_uid}.dcm"
        existing = self._find_existing(study_uid, series_uid, sop_uid, target)
        if existing is None:
            return None
        try:
            same = dataset_bytes(existing.read_bytes()) == dataset
        except FileNotFoundError:  # handed off and removed meanwhile: store anew
            return None
        self._last[study_uid] = time.time()
        if same:
            return StoreOutcome("duplicate", existing)
        conflicts = self.quarantine / CONFLICTS / study_uid
        _mkdirs_durable(conflicts, self.root)
        path = conflicts / f"{sop_uid}.{time.time_ns()}.dcm"
        if isinstance(new, Path):
            os.replace(new, path)
            _fsync_dir(conflicts)
        else:
            write_durable(path, new)
        self.log_event("conflict", study=study_uid, sop=sop_uid, kept=str(existing), path=str(path))
        return StoreOutcome("conflict", path)

    def _place(
        self,
        part: Path,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        dataset: bytes | bytearray,
        study_info: dict[str, Any],
    ) -> StoreOutcome:
        """Rename a durable ``.part`` into its series folder (unless known meanwhile)."""
        with self.lock:
            # another association may have brought the same instance meanwhile
            outcome = self._if_known(study_uid, series_uid, sop_uid, dataset, part)
            if outcome is not None:
                return outcome
            study_dir = self.spool / study_uid
            target = study_dir / SERIES_DIR / series_uid / f"{sop_uid}.dcm"
            if study_uid not in self._known_studies:
                _mkdirs_durable(target.parent, self.root)
                if not (study_dir / STUDY_FILE).exists():
                    info = {"study_instance_uid": study_uid, **study_info}
                    write_durable(study_dir / STUDY_FILE, json.dumps(info).encode())
                self._known_studies.add(study_uid)
            elif not target.parent.is_dir():
                _mkdirs_durable(target.parent, self.root)
            os.replace(part, target)
            self._last[study_uid] = time.time()
            return StoreOutcome("stored", target)

    def _find_existing(
        self, study_uid: str, series_uid: str, sop_uid: str, target: Path
    ) -> Path | None:
        if target.exists():
            return target
        claimed = self.handoff / study_uid / SERIES_DIR / series_uid / f"{sop_uid}.dcm"
        return claimed if claimed.exists() else None

    # ------------------------------------------------------------------ worker side
    def studies(self) -> Iterator[Path]:
        """Study folders in the spool."""
        if self.spool.is_dir():
            yield from sorted(p for p in self.spool.iterdir() if p.is_dir() and p.name != INCOMING)

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
            # the renames of received instances into the study become durable here, before
            # their .part files in .incoming (their recovery) are gone for good
            _sync_tree(study_dir)
            _fsync_dir(self.incoming)
            target = self.handoff / study_dir.name
            if not target.exists():
                os.replace(study_dir, target)
            else:
                for path in sorted(study_dir.rglob("*.dcm")):
                    dest = target / path.relative_to(study_dir)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, dest)
                _sync_tree(target)
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

    def requeue(self, study_uid: str, route_to: str | None = None) -> Path:
        """Send a quarantined study back to the spool, to be routed (and handed off) anew.

        With ``route_to``, the study goes to that windl study whatever the rules match
        (:func:`~windl.receive.routing.forced_rules`). Safe while the receiver
        runs: the study folder is moved with one rename, or its files one by one if the
        same study is being received again.
        """
        try:
            source = self.quarantine / _safe_uid(study_uid)
        except ValueError:
            source = None
        if source is None or not source.is_dir():
            raise ReceiveError(f"no quarantined study {study_uid!r}", self.quarantine)
        info_path = source / STUDY_FILE
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
        info.pop("route_to", None)
        if route_to is not None:
            info["route_to"] = route_to
        write_durable(info_path, json.dumps(info).encode())
        (source / REASON_FILE).unlink(missing_ok=True)
        target = self.spool / source.name
        if not target.exists():
            os.replace(source, target)
        else:
            for path in sorted(source.rglob("*.dcm")):
                dest = target / path.relative_to(source)
                _mkdirs_durable(dest.parent, self.root)
                os.replace(path, dest)
            _sync_tree(target)
            shutil.rmtree(source)
        _fsync_dir(self.spool)
        _fsync_dir(self.quarantine)
        self.log_event("requeued", study_uid=source.name, route_to=route_to)
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
