"""De-identify BIDS EEG/MEG recordings: a scrubbed copy, samples untouched.

The same :class:`~windl.deid.dicom.DeidPolicy` as for DICOM decides what stays, and the
participant's date offset (days, the one used for their DICOM) shifts the recording date:

============  =================================================================================
format        how
============  =================================================================================
FIF           read with mne, :meth:`mne.io.Raw.anonymize` with ``daysback = -offset`` (the
              measurement date, file/measurement/processing IDs, annotations and the birthday
              move together; machine IDs are zeroed), then subject info, experimenter,
              description, project fields removed (``info["subject_info"]`` keeps only sex,
              hand, weight and height, and only with Retain Patient Characteristics; device
              serial and site are kept only with Retain Device/Institution Identity);
              written with ``raw.save`` in the file's own sample format. mne stamps every
              file it writes with the writing computer's network (MAC) address: those IDs
              are zeroed after writing.
EDF, BDF      mne cannot write them without a further package, and rewriting would re-encode
              the samples: the 256-byte header is rewritten in place of a byte copy. Patient
              field ``X X X X`` (with Retain Patient Characteristics the sex, hand, weight and
              height subfields stay); recording field ``Startdate DD-MMM-YYYY X X X`` (the
              equipment subfield stays with Retain Device Identity); ``startdate`` /
              ``starttime`` shifted (EDF's two-digit year holds 1985-2084: outside, the
              header says ``01.01.85`` or ``yy`` as EDF+ prescribes, and the recording field
              holds the full date, which is what mne reads). Without Modified Dates:
              ``Startdate X``, ``01.01.85``, ``00.00.00`` (EDF+'s "unknown").
BrainVision   the ``.eeg`` is copied byte for byte; the ``.vmrk``'s "New Segment" dates are
              shifted (or dropped); in the ``.vhdr`` comment the impedance time is kept with
              Modified Dates (else ``00:00:00``), any date in the text is replaced by ``X``
              and a serial number by ``X`` (unless Retain Device Identity); the file links
              are renamed after ``dst``, like mne-bids' ``copyfile_brainvision``.
============  =================================================================================

Left as they are, for the record: channel names (a CTF system writes its number into
them, e.g. ``BG1-2908``), digitised head points, marker/annotation descriptions typed by
an operator.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

from windl.deid.dicom import DeidPolicy
from windl.errors import BadInput
from windl.files import atomic_write

#: file suffixes :func:`scrub_raw` handles (the main file of a recording)
SUPPORTED_SUFFIXES: Final = (".vhdr", ".edf", ".bdf", ".fif")

_MONTHS: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
_SPLIT = re.compile(r"_split-\d+")


def scrub_raw(src: Path, dst: Path, policy: DeidPolicy, date_offset_days: int) -> list[Path]:
    """Write a de-identified copy of one EEG/MEG recording; its samples are not changed.

    Parameters
    ----------
    src : Path
        The recording's main file: ``.vhdr`` (with its ``.vmrk`` and ``.eeg``), ``.edf``,
        ``.bdf`` or ``.fif`` (the first part of a split recording; mne follows the rest).
    dst : Path
        Where to write the main file, same suffix. Companion files (BrainVision's
        ``.vmrk``/``.eeg``, further FIF parts) are named after it. Each file is replaced
        atomically.
    policy : DeidPolicy
        The study's options.
    date_offset_days : int
        The participant's date shift in days (new date = old date + offset), the same as
        for the participant's DICOM and ``scans.tsv``; used only with
        ``retain_modified_dates``.

    Returns
    -------
    list of Path
        Every file written, main file first.

    Raises
    ------
    BadInput
        If the format is not supported or the file cannot be read.
    ValueError
        If ``dst`` is ``src`` (a study is never changed in place).
    """
    src, dst = Path(src), Path(dst)
    suffix = src.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadInput(
            f"cannot de-identify {suffix or 'this'} recordings "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})",
            src,
        )
    if dst.suffix.lower() != suffix:
        raise ValueError(f"{dst}: must have the suffix of {src.name}")
    if not src.is_file():
        raise BadInput("recording not found (or its content is not present)", src)
    if dst.exists() and os.path.samefile(src, dst):
        raise ValueError(f"{dst}: de-identification writes a copy; it would overwrite {src}")
    if suffix == ".vhdr":
        return _scrub_brainvision(src, dst, policy, int(date_offset_days))
    if suffix in (".edf", ".bdf"):
        return [_scrub_edf(src, dst, policy, int(date_offset_days))]
    return _scrub_fif(src, dst, policy, int(date_offset_days))


def recording_files(src: Path) -> list[Path]:
    """The files that make up the recording whose main file is ``src`` (``src`` first).

    BrainVision: the ``.vhdr`` and the ``.vmrk``/``.eeg`` it names; split FIF: every part
    next to it; other formats: ``src`` alone. A release builder calls :func:`scrub_raw` on
    the main file and skips the others.

    Parameters
    ----------
    src : Path
        A recording's main file.

    Returns
    -------
    list of Path
    """
    src = Path(src)
    if src.suffix.lower() == ".vhdr":
        _, links, _ = _read_vhdr(src)
        return [src, *(src.parent / name for name in links.values())]
    if src.suffix.lower() == ".fif" and _SPLIT.search(src.name):
        pattern = _SPLIT.sub("_split-*", src.name)
        return [src, *sorted(p for p in src.parent.glob(pattern) if p != src)]
    return [src]


# --- FIF ------------------------------------------------------------------------------------

_FIFFT_ID_STRUCT = 31
_TAG = struct.Struct(">iiii")


def _scrub_fif(src: Path, dst: Path, policy: DeidPolicy, days: int) -> list[Path]:
    import mne

    try:
        raw = mne.io.read_raw_fif(src, preload=False, verbose="error")
    except Exception as exc:  # mne raises many types on bad files
        raise BadInput(f"unreadable FIF ({type(exc).__name__}: {exc})", src) from None
    anonymize_raw(raw, policy, days)

    base = _SPLIT.sub("", dst.name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=dst.parent))
    try:
        written = raw.save(
            scratch / base,
            fmt=raw.orig_format
            if raw.orig_format in ("single", "double", "int", "short")
            else "single",
            split_naming="bids",
            overwrite=True,
            verbose="error",
        )
        for path in written:
            _zero_fif_machine_ids(Path(path))
        final = []
        for path in written:
            target = dst.parent / Path(path).name
            os.replace(path, target)
            final.append(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def anonymize_raw(raw: Any, policy: DeidPolicy, date_offset_days: int) -> Any:
    """De-identify an :class:`mne.io.Raw`'s ``info`` in place, per ``policy``.

    mne's :meth:`~mne.io.Raw.anonymize` with ``daysback = -date_offset_days`` (with Retain
    Modified Dates; else the measurement date is removed first), then: subject info reduced
    to the characteristics the policy keeps (never names, birthday or HIS ID), experimenter,
    description, project name/ID removed, device serial and site restored only when the
    policy retains device/institution identity.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording; its ``info`` and annotations are changed.
    policy : DeidPolicy
        The study's options.
    date_offset_days : int
        New date = old date + offset.

    Returns
    -------
    mne.io.Raw
        ``raw``.
    """
    info = raw.info
    subject = dict(info.get("subject_info") or {})
    device = dict(info.get("device_info") or {})
    if policy.retain_modified_dates and info["meas_date"] is not None:
        raw.anonymize(daysback=-int(date_offset_days), keep_his=False, verbose="error")
    else:
        raw.set_meas_date(None)
        raw.anonymize(daysback=None, keep_his=False, verbose="error")
    kept = {}
    if policy.retain_patient_characteristics:
        kept = {k: subject[k] for k in ("sex", "hand", "weight", "height") if k in subject}
    info["subject_info"] = kept or None
    info["experimenter"] = None
    info["description"] = None
    info["proj_name"] = None
    info["proj_id"] = None
    if info.get("device_info") is not None:
        restored = dict(info["device_info"])
        if policy.retain_device_identity and "serial" in device:
            restored["serial"] = device["serial"]
        elif "serial" in restored:
            del restored["serial"]
        if policy.retain_institution_identity and "site" in device:
            restored["site"] = device["site"]
        elif "site" in restored:
            del restored["site"]
        info["device_info"] = restored or None
    return raw


def _zero_fif_machine_ids(path: Path) -> None:
    """Zero the machine ID in every ID tag of a FIF file mne wrote (tags are sequential)."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        pos = 0
        while pos + _TAG.size <= size:
            fh.seek(pos)
            kind, typ, length, _next = _TAG.unpack(fh.read(_TAG.size))
            if length < 0:
                raise RuntimeError(f"{path}: FIF tag {kind} at {pos} has a negative size")
            if typ == _FIFFT_ID_STRUCT and length == 20:
                fh.seek(pos + _TAG.size + 4)  # version, then machid[2]
                fh.write(b"\x00" * 8)
            pos += _TAG.size + length


# --- EDF / BDF --------------------------------------------------------------------------------


def _scrub_edf(src: Path, dst: Path, policy: DeidPolicy, days: int) -> Path:
    with src.open("rb") as fh:
        head = fh.read(256)
    if len(head) < 256 or not _edf_int(head[184:192]) or _edf_int(head[252:256]) is None:
        raise BadInput("not an EDF/BDF file (no 256-byte header)", src)
    patient = head[8:88].decode("latin-1").split()
    recording = head[88:168].decode("latin-1").split()
    start = _edf_start(recording, head[168:176].decode("latin-1"), head[176:184].decode("latin-1"))

    new_patient = ["X", "X", "X", "X"]
    if policy.retain_patient_characteristics and len(patient) >= 4:
        if patient[1] in ("M", "F"):
            new_patient[1] = patient[1]
        new_patient += [
            p for p in patient[4:] if p.split("=", 1)[0] in ("hand", "weight", "height")
        ]
    equipment = "X"
    if policy.retain_device_identity and len(recording) >= 5 and recording[0] == "Startdate":
        equipment = recording[4]
    if policy.retain_modified_dates and start is not None:
        new = start + dt.timedelta(days=days)
        startdate = f"{new.day:02d}-{_MONTHS[new.month - 1]}-{new.year:04d}"
        if 1985 <= new.year <= 2084:
            header_date = f"{new.day:02d}.{new.month:02d}.{new.year % 100:02d}"
        elif new.year > 2084:
            header_date = f"{new.day:02d}.{new.month:02d}.yy"
        else:
            header_date = "01.01.85"
        header_time = f"{new.hour:02d}.{new.minute:02d}.{new.second:02d}"
    else:
        startdate, header_date, header_time = "X", "01.01.85", "00.00.00"
    fields = (
        _edf_field(" ".join(new_patient), 80)
        + _edf_field(" ".join(["Startdate", startdate, "X", "X", equipment]), 80)
        + header_date.encode("ascii")
        + header_time.encode("ascii")
    )

    def write(out: IO[bytes]) -> None:
        with src.open("rb") as fh:
            out.write(head[:8] + fields)
            fh.seek(8 + len(fields))
            shutil.copyfileobj(fh, out, 1 << 20)

    atomic_write(dst, write)
    return dst


def _edf_int(raw: bytes) -> int | None:
    try:
        return int(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None


def _edf_field(text: str, width: int) -> bytes:
    clean = "".join(c if 32 <= ord(c) < 127 else "_" for c in text)
    return clean[:width].ljust(width).encode("ascii")


def _edf_start(recording: list[str], date: str, time: str) -> dt.datetime | None:
    """The recording start: EDF+ ``Startdate`` subfield (4-digit year), else the header."""
    day = None
    if len(recording) >= 2 and recording[0] == "Startdate":
        if recording[1] == "X":
            return None  # EDF+: start date unknown (the header's 01.01.85 is a placeholder)
        match = re.fullmatch(r"(\d{2})-([A-Za-z]{3})-(\d{4})", recording[1])
        if match and match.group(2).upper() in _MONTHS:
            try:
                day = dt.date(
                    int(match.group(3)),
                    _MONTHS.index(match.group(2).upper()) + 1,
                    int(match.group(1)),
                )
            except ValueError:
                day = None
    if day is None:
        match = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{2})", date.strip())
        if match is None:
            return None
        year = int(match.group(3))
        try:
            day = dt.date(
                year + (1900 if year >= 85 else 2000), int(match.group(2)), int(match.group(1))
            )
        except ValueError:
            return None
    match = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{2})", time.strip())
    hms = tuple(int(g) for g in match.groups()) if match else (0, 0, 0)
    try:
        return dt.datetime(day.year, day.month, day.day, *hms)
    except ValueError:
        return dt.datetime(day.year, day.month, day.day)


# --- BrainVision ------------------------------------------------------------------------------

_LINK = re.compile(r"^(DataFile|MarkerFile)=(.*)$", re.IGNORECASE)
_SEGMENT = re.compile(r"^(Mk\d+=New Segment,.*,-?\d+,-?\d+,-?\d+),(\d{20})(\s*)$")
_IMPEDANCE = re.compile(r"^(Impedance \[[^\]]*\] at )(\d{1,2}:\d{2}:\d{2})( :\s*)$")
#: "Serial number 123", "S/N: 123", "SN=123", "serial: 123" (a bare "serial" needs ":" or "=")
_SERIAL = (
    re.compile(r"(?i)\b(serial\s*(?:number|no\.?|#)|s/n|sn)(\s*[:=#]?\s*)(\w[\w./-]*)"),
    re.compile(r"(?i)\b(serial)(\s*[:=]\s*)(\w[\w./-]*)"),
)
_TEXT_DATE = re.compile(
    r"(?<!\d)(?:19|20)\d{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?<!\d)(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)?\d{2}(?!\d)"
)


def _codepage(raw: bytes) -> str:
    match = re.search(rb"Codepage=(\S+)", raw)
    name = match.group(1).decode("ascii", "replace").upper() if match else "UTF-8"
    return "utf-8" if name in ("UTF-8", "UTF8") else "latin-1"


def _read_vhdr(src: Path) -> tuple[str, dict[str, str], str]:
    """(text, {"DataFile"/"MarkerFile": name}, encoding) of a ``.vhdr``."""
    try:
        raw = src.read_bytes()
    except OSError as exc:
        raise BadInput(f"unreadable BrainVision header ({exc.strerror})", src) from None
    encoding = _codepage(raw)
    text = raw.decode(encoding, errors="surrogateescape")
    links: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINK.match(line.strip())
        if match:
            key = "DataFile" if match.group(1).lower() == "datafile" else "MarkerFile"
            links.setdefault(key, match.group(2).strip())
    for key in ("DataFile", "MarkerFile"):
        name = links.get(key)
        if not name:
            raise BadInput(f"BrainVision header names no {key}", src)
        if "/" in name or "\\" in name:
            raise BadInput(f"BrainVision {key} is a path, not a file name: {name}", src)
        if not (src.parent / name).is_file():
            raise BadInput(f"BrainVision {key} {name} not found next to the header", src)
    return text, links, encoding


def _scrub_brainvision(src: Path, dst: Path, policy: DeidPolicy, days: int) -> list[Path]:
    text, links, encoding = _read_vhdr(src)
    data_src = src.parent / links["DataFile"]
    marker_src = src.parent / links["MarkerFile"]
    data_dst = dst.with_suffix(".eeg")
    marker_dst = dst.with_suffix(".vmrk")
    names = {"DataFile": data_dst.name, "MarkerFile": marker_dst.name}

    marker_raw = marker_src.read_bytes()
    marker_encoding = _codepage(marker_raw) if b"Codepage=" in marker_raw else encoding
    marker = marker_raw.decode(marker_encoding, errors="surrogateescape")
    new_marker = _map_lines(marker, lambda line, _: _scrub_vmrk_line(line, names, policy, days))
    new_header = _map_lines(
        text, lambda line, section: _scrub_vhdr_line(line, section, names, policy)
    )

    atomic_write(data_dst, lambda out: _copy(data_src, out))
    atomic_write(
        marker_dst, lambda out: out.write(new_marker.encode(marker_encoding, "surrogateescape"))
    )
    atomic_write(dst, lambda out: out.write(new_header.encode(encoding, "surrogateescape")))
    return [dst, marker_dst, data_dst]


def _map_lines(text: str, func: Callable[[str, str], str]) -> str:
    """Apply ``func(line, section)`` to every line (without its ending); endings are kept."""
    out = []
    section = ""
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
        out.append(func(body, section) + line[len(body) :])
    return "".join(out)


def _relink(line: str, names: dict[str, str]) -> str | None:
    match = _LINK.match(line.strip())
    if not match:
        return None
    key = "DataFile" if match.group(1).lower() == "datafile" else "MarkerFile"
    return f"{match.group(1)}={names[key]}"


def _scrub_vmrk_line(line: str, names: dict[str, str], policy: DeidPolicy, days: int) -> str:
    relinked = _relink(line, names)
    if relinked is not None:
        return relinked
    match = _SEGMENT.match(line)
    if not match:
        return line
    head, stamp, tail = match.groups()
    if stamp == "0" * 20:
        return line  # "no date" already
    if policy.retain_modified_dates:
        try:
            when = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S") + dt.timedelta(days=days)
        except (ValueError, OverflowError):
            return head + tail
        return f"{head},{when:%Y%m%d%H%M%S}{stamp[14:]}{tail}"
    return head + tail


def _scrub_vhdr_line(line: str, section: str, names: dict[str, str], policy: DeidPolicy) -> str:
    if section == "common infos":
        relinked = _relink(line, names)
        return line if relinked is None else relinked
    if section != "comment":
        return line
    match = _IMPEDANCE.match(line)
    if match:
        when = match.group(2) if policy.retain_modified_dates else "00:00:00"
        return f"{match.group(1)}{when}{match.group(3)}"
    line = _TEXT_DATE.sub("X", line)
    if not policy.retain_device_identity:
        for pattern in _SERIAL:
            line = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}X", line)
    return line


# --- files ----------------------------------------------------------------------------------


def _copy(src: Path, out: IO[bytes]) -> None:
    with src.open("rb") as fh:
        shutil.copyfileobj(fh, out, 1 << 20)
