"""The portal's audit log: who did what, to which version, when and from where.

Rows are only ever inserted; the database refuses UPDATE and DELETE on the table (triggers
made by the portal's first migration), so not even windl can rewrite the past.
"""

from __future__ import annotations

import csv
import io
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from windl.files import atomic_write_text
from windl.portal.tables import audit_log

#: every kind of entry the portal writes
EVENTS = (
    "login",
    "logout",
    "login-failed",
    "register",
    "confirm",
    "invite",
    "dua-accept",
    "token-create",
    "token-revoke",
    "search",
    "dataset-view",
    "clone",
    "clone-refused",
    "download",
    "download-refused",
)
CSV_COLUMNS = ("at", "event", "actor", "target", "version", "remote_addr", "detail")


@dataclass(frozen=True)
class Entry:
    """One row of the audit log."""

    at: datetime
    event: str
    actor: str
    target: str
    version: str
    remote_addr: str
    detail: str


def now() -> datetime:
    """The current time in UTC (every time the portal stores is UTC)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` with UTC attached (SQLite gives back naive datetimes)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record(
    db: Engine | Connection,
    event: str,
    actor: str = "",
    target: str = "",
    version: str = "",
    remote_addr: str = "",
    detail: str = "",
) -> None:
    """Append one entry to the audit log."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    values = {
        "at": now(),
        "event": event,
        "actor": actor,
        "target": target,
        "version": version,
        "remote_addr": remote_addr,
        "detail": detail,
    }
    if isinstance(db, Connection):
        db.execute(audit_log.insert().values(**values))
    else:
        _writer(db).write(values)


class _GroupWriter:
    """One thread per database that commits waiting entries together (group commit).

    Every caller still waits until its entry is committed, so the log is as durable as
    with a transaction per entry; but many requests at once make one write transaction
    instead of queueing for SQLite's write lock one by one (whose busy handler sleeps up
    to 100 ms between tries, the portal's slowest answers under load).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.waiting: queue.SimpleQueue[tuple[dict[str, object], Future[None]]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name="windl-audit-writer", daemon=True).start()

    def write(self, values: dict[str, object]) -> None:
        done: Future[None] = Future()
        self.waiting.put((values, done))
        done.result()

    def _run(self) -> None:
        while True:
            batch = [self.waiting.get()]
            while len(batch) < 500:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                with self.engine.begin() as connection:
                    connection.execute(audit_log.insert(), [values for values, _ in batch])
            except Exception as exc:  # the callers see it: nothing is lost silently
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)


_writers: dict[int, _GroupWriter] = {}
_writers_lock = threading.Lock()


def _writer(engine: Engine) -> _GroupWriter:
    with _writers_lock:
        writer = _writers.get(id(engine))
        if writer is None or writer.engine is not engine:
            writer = _writers[id(engine)] = _GroupWriter(engine)
        return writer


def entries(db: Engine, since: date | datetime | None = None) -> Iterator[Entry]:
    """The log's entries in order, from ``since`` (a day or a moment, UTC) on."""
    query = sa.select(audit_log).order_by(audit_log.c.id)
    if since is not None:
        start = since if isinstance(since, datetime) else datetime(*since.timetuple()[:3])
        query = query.where(audit_log.c.at >= as_utc(start))
    with db.connect() as connection:
        for row in connection.execute(query):
            yield Entry(
                at=as_utc(row.at),
                event=row.event,
                actor=row.actor,
                target=row.target,
                version=row.version,
                remote_addr=row.remote_addr,
                detail=row.detail,
            )


def export_csv(db: Engine, out: Path | None = None, since: date | None = None) -> tuple[str, int]:
    """The log as CSV (written atomically to ``out`` when given); returns the text and rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries(db, since):
        writer.writerow(
            [
                entry.at.isoformat(timespec="seconds"),
                entry.event,
                entry.actor,
                entry.target,
                entry.version,
                entry.remote_addr,
                entry.detail,
            ]
        )
        count += 1
    text = buffer.getvalue()
    if out is not None:
        atomic_write_text(out, text)
    return text, count
