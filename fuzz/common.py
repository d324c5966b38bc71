"""What the fuzz harnesses share: a scratch folder per process, the shared data, seeds.

A harness module defines ``one_input(data: bytes)`` (calls the real windl function on the
bytes; a :class:`windl.errors.WindlError` is an accepted answer, any other exception is a
crash), ``seed(corpus: Path)`` (writes its seed inputs) and ``MAX_LEN``. It imports no
atheris, so ``tests/test_fuzz.py`` replays found crashers through ``one_input`` directly;
``fuzz/run.py`` runs it under atheris.

Seeds come from small cuts of real files in the shared data (``$WINDL_SHARED_DATA``, else
``../shared/data``) written to a corpus folder under /tmp at run time; nothing of the data
is committed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    """The shared data folder, or ``None`` (the synthetic seeds are used alone then)."""
    path = Path(os.environ.get("WINDL_SHARED_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


_SCRATCH: dict[str, Path] = {}


def scratch(name: str) -> Path:
    """An empty folder of this process for one input's files (emptied on every call)."""
    if name not in _SCRATCH:
        _SCRATCH[name] = Path(tempfile.mkdtemp(prefix=f"windl-fuzz-{name}-"))
    path = _SCRATCH[name]
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return path


def head(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def write_seeds(corpus: Path, seeds: dict[str, bytes]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (corpus / f"seed-{name}").write_bytes(data)
