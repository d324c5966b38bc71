"""Atomic writes of plain files (reports, records, settings): complete or not there at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(dst: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``dst`` through a temporary file in its folder, replaced only when complete.

    The folder is created. A symlink at ``dst`` is replaced, never written through (it may
    point into git-annex's store).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
        if dst.is_symlink():
            dst.unlink()  # never write through a link (e.g. into git-annex's store)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(dst: Path, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text; returns ``dst``."""
    data = text.encode("utf-8")
    atomic_write(dst, lambda fh: fh.write(data))
    return dst


#: how much of a file decides whether it is text
TEXT_SNIFF = 8192


def looks_like_text(raw: bytes) -> bool:
    """Whether ``raw`` reads as UTF-8 text (its first :data:`TEXT_SNIFF` bytes: no NUL, and
    valid UTF-8 but for a character cut at the end of the sniffed part)."""
    head = raw[:TEXT_SNIFF]
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4
    return True
