"""Named points in long writes, for crash testing and progress tracing.

When ``$WINDL_CHECKPOINT_FILE`` is set, each point appends a line to that file: its name,
the time (``time.time()``), the process id and an optional detail, separated by tabs;
the point named by ``$WINDL_CHECKPOINT_PAUSE`` then waits ``$WINDL_CHECKPOINT_DELAY``
seconds, so a test can SIGKILL windl exactly there. Without the variables this does
nothing.
"""

from __future__ import annotations

import os
import time


def checkpoint(name: str, detail: str = "") -> None:
    """Note that this process reached point ``name`` (with ``detail``, e.g. a job's name).

    Parameters
    ----------
    name
        The point; ``$WINDL_CHECKPOINT_PAUSE`` names the one to wait at.
    detail
        Written after the name, time and process id (no tabs or newlines).
    """
    trace = os.environ.get("WINDL_CHECKPOINT_FILE")
    if not trace:
        return
    # one write of a short line in append mode: lines of concurrent job workers never mix
    line = f"{name}\t{time.time():.3f}\t{os.getpid()}\t{detail}\n"
    with open(trace, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    if os.environ.get("WINDL_CHECKPOINT_PAUSE") == name:
        time.sleep(float(os.environ.get("WINDL_CHECKPOINT_DELAY", "0")))
