"""Per-file work inside one recorded step, spread over a process pool.

``windl qc`` and ``windl release build`` each record one ``datalad run`` (the study's QC
step, the release assembly). The unit of record stays that step; what runs in parallel is
the per-file work inside it (QC metrics of each image or recording; scrubbing, defacing
and re-keying of each release file), in a pool of ``jobs`` worker processes.

Two side channels connect the command that starts ``datalad run`` with the step it
records, both through the environment, so neither is part of the recorded command:

- :data:`JOBS_ENV` (``WINDL_JOBS``): the number of workers. It changes how fast, never what
  is written (tested: ``--jobs 2`` and ``--jobs 1`` give the same tree), so it is not
  provenance. Kept out of the command, the record, ``datalad rerun`` and the methods text
  are the same whatever N was, and a rerun uses the rerunning machine's setting (default 1).
- :data:`STATUS_ENV` (``WINDL_STEP_STATUS``): a file below the dataset's ``.git/windl/``
  to which the step appends one JSON line per finished file (and whether it failed).
  ``datalad run`` sends the step's own output to a log, so this is how the caller shows a
  progress bar while the step runs and learns which files failed.
"""

from __future__ import annotations

import json
import os
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Generic, TypeVar

from windl.errors import WindlError

JOBS_ENV = "WINDL_JOBS"
STATUS_ENV = "WINDL_STEP_STATUS"
#: how often the caller looks at the status file, seconds
POLL = 0.2

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[str, int, int], None]


# ----------------------------------------------------------------------------- the pool
@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What one item's work gave: its ``value``, or ``error`` (one line) when it failed."""

    index: int
    value: R | None = None
    error: str | None = None


def error_line(exc: BaseException) -> str:
    """One line naming what went wrong (a :class:`WindlError`'s message as the CLI shows it)."""
    # a WindlError's path is left out: callers name the file the error belongs to
    text = exc.message if isinstance(exc, WindlError) else f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _guarded(func: Callable[[T], R], index: int, item: T) -> Outcome[R]:
    # exceptions become text here, in the worker: not every exception survives pickling
    # back to the parent (WindlError's path argument does not), and one failing file
    # must not end the others
    try:
        return Outcome(index, value=func(item))
    except WindlError as exc:
        return Outcome(index, error=error_line(exc))
    except Exception as exc:
        # not one of windl's own errors, so maybe a bug: its traceback goes to the step's
        # log (where datalad run sends stderr), the one line to the caller
        traceback.print_exc()
        return Outcome(index, error=error_line(exc))


def run_pool(
    func: Callable[[T], R],
    items: Sequence[T],
    jobs: int = 1,
    sizes: Sequence[float] | None = None,
) -> Iterator[Outcome[R]]:
    """Apply ``func`` to every item in ``jobs`` worker processes; yield outcomes as they finish.

    With ``jobs == 1`` the items are done here, in order, without a pool. A failing item
    does not stop the others: its outcome carries the error. With ``sizes`` the biggest
    items start first, so a big one started last does not run alone at the end.

    Workers are forked (``func`` and what it uses are already imported; nothing is
    re-imported per worker), so ``func``'s results must not depend on which process
    computes them -- callers keep every per-item computation deterministic and
    single-threaded (e.g. ITK's registration) for that reason.
    """
    if jobs < 1:
        raise WindlError(f"--jobs must be at least 1, not {jobs}")
    if jobs == 1 or len(items) <= 1:
        for index, item in enumerate(items):
            yield _guarded(func, index, item)
        return
    order = sorted(range(len(items)), key=lambda i: -sizes[i]) if sizes else range(len(items))
    with ProcessPoolExecutor(min(jobs, len(items)), mp_context=get_context("fork")) as pool:
        pending: dict[Future[Outcome[R]], int] = {
            pool.submit(_guarded, func, i, items[i]): i for i in order
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    yield future.result()
                except Exception as exc:  # a worker died (killed, out of memory): say so
                    yield Outcome(index, error=f"worker process failed: {error_line(exc)}")


def jobs_from_env(default: int = 1) -> int:
    """The number of workers :data:`JOBS_ENV` asks for (``default`` when unset)."""
    text = os.environ.get(JOBS_ENV, "").strip()
    if not text:
        return default
    try:
        jobs = int(text)
    except ValueError:
        raise WindlError(f"${JOBS_ENV} must be a whole number, not {text!r}") from None
    if jobs < 1:
        raise WindlError(f"${JOBS_ENV} must be at least 1, not {jobs}")
    return jobs


# ------------------------------------------------------------------ status: the step's side
class StepStatus:
    """What a recorded step tells its caller: how many files, and each one as it finishes.

    Writes JSON lines to the file :data:`STATUS_ENV` names; does nothing when it is unset
    (e.g. under ``datalad rerun``).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @classmethod
    def from_env(cls) -> StepStatus:
        value = os.environ.get(STATUS_ENV)
        return cls(Path(value) if value else None)

    def _write(self, event: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")

    def start(self, total: int) -> None:
        """``total`` files will be reported."""
        self._write({"total": total})

    def done(self, name: str, error: str | None = None, reused: bool = False) -> None:
        """File ``name`` is finished: made, ``reused`` from an earlier run, or failed
        (``error``)."""
        event: dict[str, Any] = {"file": name}
        if error:
            event["error"] = error
        if reused:
            event["reused"] = True
        self._write(event)


# ----------------------------------------------------------------- status: the caller's side
@dataclass
class StepReport:
    """What the caller learnt from a step's status file."""

    total: int = 0
    done: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # file -> error

    @property
    def made(self) -> int:
        """Files done this time (not reused) without failing."""
        return self.done - self.reused - len(self.failed)


def _read_status(path: Path, offset: int, report: StepReport) -> int:
    """Fold the complete lines after ``offset`` into ``report``; return the new offset."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return offset
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
    for line in data[:end].splitlines():
        event = json.loads(line)
        if "total" in event:
            report.total, report.done, report.reused, report.failed = int(event["total"]), 0, 0, {}
        else:
            report.done += 1
            report.reused += bool(event.get("reused"))
            if event.get("error"):
                report.failed[str(event["file"])] = str(event["error"])
    return offset + end


@contextmanager
def watched_step(
    status: Path, jobs: int, progress: Progress | None, stage: str
) -> Iterator[StepReport]:
    """Run the block (which starts the recorded step) with :data:`JOBS_ENV` and
    :data:`STATUS_ENV` set, showing the step's progress through ``progress``.

    ``datalad run`` starts the step with this process's environment, so setting it here
    reaches the step without entering its command line. The yielded report is complete
    when the block ends.
    """
    status.parent.mkdir(parents=True, exist_ok=True)
    status.unlink(missing_ok=True)
    report = StepReport()
    stop = threading.Event()
    offset = 0

    def look() -> None:
        nonlocal offset
        shown = (report.done, report.total)
        offset = _read_status(status, offset, report)
        if progress and report.total and (report.done, report.total) != shown:
            progress(stage, report.done, report.total)

    def poll() -> None:
        while not stop.wait(POLL):
            look()

    saved = {k: os.environ.get(k) for k in (JOBS_ENV, STATUS_ENV)}
    os.environ[JOBS_ENV] = str(jobs)
    os.environ[STATUS_ENV] = str(status)
    watcher = threading.Thread(target=poll, name="windl-step-status", daemon=True)
    watcher.start()
    try:
        yield report
    finally:
        stop.set()
        watcher.join()
        look()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        status.unlink(missing_ok=True)
