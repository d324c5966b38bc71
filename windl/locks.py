"""Inter-process locks of a site: one per study, one for the superdataset.

Every command that writes a dataset holds its study's lock for its whole run
(:func:`study_lock`); whatever records a new state in the site's superdataset holds the
superdataset's lock around that one write (:func:`superdataset_lock`). The order is fixed,
study first, superdataset last, and nothing takes a study lock while holding the
superdataset's, so two commands never wait for each other in a circle.

A command that finds a lock taken waits for it and says so on stderr, once::

    windl: waiting for study1 (held by pid 4242: windl ingest study1 …)

Locks are re-entrant: within one process (any thread that holds it may take it again; other
threads of the process wait), and for the children of the holder (a ``datalad run`` of a
windl step, a job worker), which run while their parent holds the lock for them.

The locks are ``fasteners`` inter-process locks (``fcntl`` locks, as DataLad's own), in
``<site>/.windl/locks/``; the kernel drops them when the holder dies, even by SIGKILL.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import fasteners

from windl.config import SITE_FILE

LOCK_DIR = Path(".windl") / "locks"
#: lock name of the superdataset (not a valid study name: those start alphanumeric)
SUPERDATASET = "_superdataset"


@dataclass
class _Held:
    """A lock of this process: the thread lock guarding it and how often it is taken."""

    thread_lock: threading.RLock = field(default_factory=threading.RLock)
    process_lock: fasteners.InterProcessLock | None = None
    depth: int = 0


_registry: dict[Path, _Held] = {}
_registry_guard = threading.Lock()


def lock_path(site_root: Path, name: str) -> Path:
    """The lock file of ``name`` (a study, or :data:`SUPERDATASET`) in the site."""
    return Path(site_root).resolve() / LOCK_DIR / f"{name}.lock"


def _holder_file(path: Path) -> Path:
    return path.with_suffix(".holder")


def _command_line() -> str:
    args = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    if args[0] in ("__main__.py", "-m"):
        args[0] = "windl"
    text = " ".join(args)
    return text if len(text) <= 120 else text[:119] + "…"


def _read_holder(path: Path) -> tuple[int | None, str]:
    """The pid and command line that the holder of ``path`` wrote (None if unknown)."""
    try:
        pid_text, _, command = _holder_file(path).read_text(encoding="utf-8").partition("\n")
        return int(pid_text), command.strip()
    except (OSError, ValueError):
        return None, ""


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_ancestor(pid: int) -> bool:
    """True if process ``pid`` is a parent (at any depth) of this process."""
    current: int | None = os.getppid()
    while current and current > 1:
        if current == pid:
            return True
        current = _parent_of(current)
    return False


def _acquire(held: _Held, path: Path, what: str) -> bool:
    """Take the process lock of ``path``; False if a parent process holds it for us."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = fasteners.InterProcessLock(str(path))
    if not lock.acquire(blocking=False):
        pid, command = _read_holder(path)
        if pid is not None and _is_ancestor(pid):
            return False
        who = f"pid {pid}: {command}" if pid is not None else "another windl process"
        print(f"windl: waiting for {what} (held by {who})", file=sys.stderr, flush=True)
        lock.acquire(blocking=True, delay=0.05, max_delay=0.5)
    held.process_lock = lock
    _holder_file(path).write_text(f"{os.getpid()}\n{_command_line()}\n", encoding="utf-8")
    return True


@contextmanager
def site_lock(site_root: Path, name: str, what: str | None = None) -> Iterator[None]:
    """Hold the lock ``name`` of the site at ``site_root`` for the block, waiting for it.

    Parameters
    ----------
    site_root
        The site folder (with ``windl.toml``).
    name
        A study name, or :data:`SUPERDATASET`.
    what
        How the waiting message names it (default ``name``).
    """
    path = lock_path(site_root, name)
    with _registry_guard:
        held = _registry.setdefault(path, _Held())
    with held.thread_lock:
        if held.depth == 0 and not _acquire(held, path, what or name):
            held.process_lock = None
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.process_lock is not None:
                _holder_file(path).unlink(missing_ok=True)
                held.process_lock.release()
                held.process_lock = None


def study_lock(site_root: Path, study: str) -> AbstractContextManager[None]:
    """Hold the lock of ``study`` (its dataset and subdatasets) for the block."""
    return site_lock(site_root, study)


def superdataset_lock(site_root: Path) -> AbstractContextManager[None]:
    """Hold the lock of the site's superdataset for the block (take it last)."""
    return site_lock(site_root, SUPERDATASET, "the superdataset")


@contextmanager
def superdataset_lock_for(ds: Path) -> Iterator[None]:
    """The superdataset's lock if ``ds`` is a site's superdataset, else nothing."""
    ds = Path(ds)
    if ds.name == "superdataset" and (ds.parent / SITE_FILE).is_file():
        with superdataset_lock(ds.parent):
            yield
    else:
        yield
