"""Fuzz the FIF checks of :func:`windl.ingest.ephys.find_recordings` (tag walk, then mne)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path, PurePosixPath

from common import head, scratch, shared_data, write_seeds

from windl.errors import WindlError
from windl.ingest.ephys import find_recordings
from windl.ingest.sources import SourceFile

MAX_LEN = 16384


def one_input(data: bytes) -> None:
    path = scratch("fif") / "x_raw.fif"
    path.write_bytes(data)
    with contextlib.suppress(WindlError):
        find_recordings([SourceFile(path, PurePosixPath(path.name))])


def _synthetic() -> bytes:
    """A complete FIF raw file of one EEG channel and 20 samples, written by mne."""
    import mne
    import numpy as np

    info = mne.create_info(["EEG1"], 100.0, "eeg")
    raw = mne.io.RawArray(np.zeros((1, 20)), info, verbose="error")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed_raw.fif"
        raw.save(path, verbose="error")
        return path.read_bytes()


def seed(corpus: Path) -> None:
    seeds = {"synthetic": _synthetic()}
    data = shared_data()
    if data is not None:
        seeds["real-head"] = head(data / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif", 4096)
    write_seeds(corpus, seeds)
