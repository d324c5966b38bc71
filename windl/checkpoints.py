"""Named points in long writes, for crash testing and progress tracing.

When ``$WINDL_CHECKPOINT_FILE`` is set, each point appends its name to that file; the
point named by ``$WINDL_CHECKPOINT_PAUSE`` then waits ``$WINDL_CHECKPOINT_DELAY``
seconds, so a test can SIGKILL windl exactly there. Without the variables this does
nothing.
"""

from __future__ import annotations

import os
import time


def checkpoint(name: str) -> None:
    trace = os.environ.get("WINDL_CHECKPOINT_FILE")
    if not trace:
        return
    with open(trace, "a", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    if os.environ.get("WINDL_CHECKPOINT_PAUSE") == name:
        time.sleep(float(os.environ.get("WINDL_CHECKPOINT_DELAY", "0")))
