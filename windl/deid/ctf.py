"""CTF MEG recordings (``*_meg.ds`` folders) in a release: what mne reads, nothing else.

A CTF dataset folder holds the recording (``.res4`` header, ``.meg4`` samples) beside
files the acquisition and review software write for themselves, several of which name
the participant or the operator: ``.infods`` (``_PATIENT_ID``, ``_PATIENT_BIRTHDATE``,
names, UIDs), ``.acq`` (run date, sequence file), ``.hist`` (dates, operator, commands),
``.newds``, ``ClassFile.cls``, ``default.de``, ``processing.cfg``, ``params.dsc`` (dataset
paths with user names, dates). Default-deny, as for sidecar keys:

- released as they are: the samples (``.meg4``, ``.1_meg4`` ...), the head coil positions
  (``.hc``), the EEG electrode positions (``.eeg``), ``BadChannels``, ``bad.segments``
  and ``MarkerFile.mrk`` -- everything else mne's reader reads;
- released scrubbed: the ``.res4`` header, whose text fields are blanked in place (run
  name and title, collection descriptor, subject id, operator, origin, description, run
  description); its date is shifted with Retain Modified Dates (the time of day kept), else
  blanked (mne then reads 1970-01-01, as for an anonymised recording);
- left out: every other file of the folder.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from pathlib import Path, PurePosixPath

from windl.deid.dicom import DeidPolicy
from windl.errors import BadInput
from windl.files import atomic_write

#: files of a ``.ds`` folder released as they are, by name
KEPT_NAMES = frozenset({"BadChannels", "bad.segments", "MarkerFile.mrk"})
_KEPT_SUFFIX = re.compile(r"\.(?:meg4|\d+_meg4|hc|eeg)$")
_DS_FOLDER = re.compile(r"_meg\.ds$")
#: (offset, width) of the text fields of a ``.res4`` header blanked in a release
#: (mne/io/ctf/res4.py reads them at these places)
RES4_TEXT = {
    "origin": (264, 256),
    "desc": (520, 256),
    "nf_run_name": (1360, 32),
    "nf_run_title": (1392, 256),
    "nf_collect_descriptor": (1680, 32),
    "nf_subject_id": (1712, 32),
    "nf_operator": (1744, 32),
}
RES4_TIME = (778, 255)
RES4_DATE = (1033, 255)
_RUN_DESC_LENGTH = 1836
_RUN_DESC = 1844
_MAGIC = re.compile(rb"MEG\d\dRS\0")
_DATE_FORMATS = ("%d/%m/%Y", "%d-%b-%Y", "%Y/%m/%d")


def ds_folder(path: str) -> str | None:
    """The CTF ``*_meg.ds`` folder that ``path`` lies in (``None``: not in one)."""
    parents = PurePosixPath(path).parents
    return next((p.as_posix() for p in parents if _DS_FOLDER.search(p.name)), None)


def ctf_kind(path: str) -> str | None:
    """How a file inside a ``.ds`` folder is released: ``ctf`` (the scrubbed ``.res4``),
    ``copy``, or ``None`` (left out)."""
    name = PurePosixPath(path).name
    if name.endswith(".res4"):
        return "ctf"
    if name in KEPT_NAMES or _KEPT_SUFFIX.search(name):
        return "copy"
    return None


def scrub_res4(src: Path, dst: Path, policy: DeidPolicy, date_offset_days: int) -> None:
    """Write ``src`` (a CTF ``.res4``) to ``dst`` with its identifying text blanked.

    Raises
    ------
    BadInput
        ``src`` is not a CTF MEG4 header (then nothing of it can be released).
    """
    raw = bytearray(Path(src).read_bytes())
    if not _MAGIC.match(bytes(raw[:8])) or len(raw) < _RUN_DESC:
        raise BadInput("not a CTF .res4 header (MEGnnRS); cannot de-identify it", src)
    for offset, width in RES4_TEXT.values():
        raw[offset : offset + width] = bytes(width)
    length = struct.unpack(">i", raw[_RUN_DESC_LENGTH : _RUN_DESC_LENGTH + 4])[0]
    if length > 0:
        raw[_RUN_DESC : _RUN_DESC + length] = bytes(min(length, len(raw) - _RUN_DESC))
    _scrub_date(raw, policy, date_offset_days)
    atomic_write(Path(dst), lambda fh: fh.write(bytes(raw)))


def _text(raw: bytearray, field: tuple[int, int]) -> str:
    offset, width = field
    return raw[offset : offset + width].split(b"\0", 1)[0].decode("latin-1").strip()


def _put(raw: bytearray, field: tuple[int, int], text: str) -> None:
    offset, width = field
    raw[offset : offset + width] = text.encode("ascii")[: width - 1].ljust(width, b"\0")


def _scrub_date(raw: bytearray, policy: DeidPolicy, days: int) -> None:
    """The recording date shifted (time kept) with Retain Modified Dates, else blanked."""
    date, time = _text(raw, RES4_DATE), _text(raw, RES4_TIME)
    if "/" in time and ":" in date:  # some systems swap them (mne reads both ways)
        date, time = time, date
    shifted = _shifted(date, days) if policy.retain_modified_dates else None
    _put(raw, RES4_DATE, shifted or "")
    _put(raw, RES4_TIME, time if shifted else "")


def _shifted(date: str, days: int) -> str | None:
    for fmt in _DATE_FORMATS:
        try:
            day = dt.datetime.strptime(date, fmt).date()
        except ValueError:
            continue
        return (day + dt.timedelta(days=days)).strftime("%d/%m/%Y")
    return None


def ctf_problems(rel: str, path: Path, policy: DeidPolicy) -> list[str]:
    """What in a released file of a ``.ds`` folder :func:`scrub_res4` would not have let
    through (for the audit); never the value itself."""
    kind = ctf_kind(rel)
    if kind is None:
        return ["a CTF acquisition file windl does not release"]
    if kind != "ctf":
        return []
    raw = bytearray(path.read_bytes())
    if not _MAGIC.match(bytes(raw[:8])) or len(raw) < _RUN_DESC:
        return ["not a CTF .res4 header"]
    problems = [f"CTF header field {n} is not blank" for n, f in RES4_TEXT.items() if _text(raw, f)]
    length = struct.unpack(">i", raw[_RUN_DESC_LENGTH : _RUN_DESC_LENGTH + 4])[0]
    if length > 0 and any(raw[_RUN_DESC : _RUN_DESC + length]):
        problems.append("CTF header run description is not blank")
    if not policy.retain_modified_dates and (_text(raw, RES4_DATE) or _text(raw, RES4_TIME)):
        problems.append("CTF header keeps the recording date")
    return problems
