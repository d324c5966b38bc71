"""Fuzz the EDF/BDF header check of :func:`windl.ingest.ephys.find_recordings`."""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath

from common import head, scratch, shared_data, write_seeds

from windl.errors import WindlError
from windl.ingest.ephys import find_recordings
from windl.ingest.sources import SourceFile

MAX_LEN = 8192


def one_input(data: bytes) -> None:
    path = scratch("edf") / "x.edf"  # BDF is recognised by its magic whatever the name
    path.write_bytes(data)
    with contextlib.suppress(WindlError):
        find_recordings([SourceFile(path, PurePosixPath(path.name))])


def edf(bdf: bool = False, signals: int = 1, samples: int = 10, records: int = 1) -> bytes:
    """A minimal, complete EDF (or BDF) file of zeros."""

    def field(value: object, width: int) -> bytes:
        return str(value).encode().ljust(width)[:width]

    magic = b"\xffBIOSEMI" if bdf else b"0       "
    main = b"".join(
        [
            magic,
            field("X", 80),
            field("X", 80),
            field("01.01.20", 8),
            field("00.00.00", 8),
            field(256 * (signals + 1), 8),
            field("", 44),
            field(records, 8),
            field(1, 8),
            field(signals, 4),
        ]
    )
    per = [
        ("EEG", 16),
        ("", 80),
        ("uV", 8),
        (-100, 8),
        (100, 8),
        (-32768, 8),
        (32767, 8),
        ("", 80),
        (samples, 8),
        ("", 32),
    ]
    sig = b"".join(field(value, width) * signals for value, width in per)
    return main + sig + bytes(max(records, 1) * signals * samples * (3 if bdf else 2))


def seed(corpus: Path) -> None:
    seeds = {"edf": edf(), "bdf": edf(bdf=True, signals=2), "edf-open": edf(records=-1)}
    data = shared_data()
    if data is not None:
        seeds["real-head"] = head(data / "mne_testfiles" / "edf" / "test.edf", MAX_LEN)
    write_seeds(corpus, seeds)
