"""Fuzz the BrainVision checks of :func:`windl.ingest.ephys.find_recordings`.

One input is up to three files, ``test.vhdr``, ``test.vmrk`` and ``test.eeg``, joined by
:data:`SEP` (fewer parts: fewer files, which is the "incomplete recording" case).
"""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath

from common import head, scratch, shared_data, write_seeds

from windl.errors import WindlError
from windl.ingest.ephys import find_recordings
from windl.ingest.sources import SourceFile

MAX_LEN = 16384
SEP = b"\n#windl-fuzz#\n"
NAMES = ("test.vhdr", "test.vmrk", "test.eeg")


def one_input(data: bytes) -> None:
    work = scratch("brainvision")
    files = []
    for name, part in zip(NAMES, data.split(SEP), strict=False):
        (work / name).write_bytes(part)
        files.append(SourceFile(work / name, PurePosixPath(name)))
    with contextlib.suppress(WindlError):
        find_recordings(files)


_VHDR = b"""Brain Vision Data Exchange Header File Version 1.0
[Common Infos]
Codepage=UTF-8
DataFile=test.eeg
MarkerFile=test.vmrk
DataFormat=BINARY
DataOrientation=MULTIPLEXED
NumberOfChannels=2
SamplingInterval=1000
[Binary Infos]
BinaryFormat=INT_16
[Channel Infos]
Ch1=Fp1,,0.1,uV
Ch2=Fp2,,0.1,uV
"""
_VMRK = b"""Brain Vision Data Exchange Marker File, Version 1.0
[Common Infos]
Codepage=UTF-8
DataFile=test.eeg
[Marker Infos]
Mk1=New Segment,,1,1,0,20200101000000000000
Mk2=Stimulus,S  1,5,1,0
"""


def seed(corpus: Path) -> None:
    seeds = {
        "synthetic": SEP.join([_VHDR, _VMRK, bytes(40)]),
        "no-markers": SEP.join([_VHDR.replace(b"MarkerFile=test.vmrk\n", b""), b"", bytes(8)]),
    }
    data = shared_data()
    if data is not None:
        real = data / "mne_testfiles" / "brainvision"
        # 32 channels of INT_16: 64 bytes a sample; the markers go past a cut, which is
        # the truncation the check is for
        seeds["real"] = SEP.join(
            [
                (real / "test.vhdr").read_bytes(),
                (real / "test.vmrk").read_bytes(),
                head(real / "test.eeg", 64 * 64),
            ]
        )
    write_seeds(corpus, seeds)
