"""De-identify BIDS EEG/MEG recordings: a scrubbed copy, samples untouched.

The same :class:`~windl.deid.dicom.DeidPolicy` as for DICOM decides what stays, and the
participant's date offset (days, the one used for their DICOM) shifts the recording date:

============  =================================================================================
format        how
============  =================================================================================
FIF           read with mne, :meth:`mne.io.Raw.anonymize` with ``daysback = -offset`` (the
              measurement date, file/measurement/processing IDs, annotations and the birthday
              move together; machine IDs are zeroed), then what it leaves is removed:
              ``subject_info`` keeps only sex, hand, weight and height, and only with Retain
              Patient Characteristics (never names, birthday, HIS ID); ``experimenter``,
              ``description``, ``proj_name``, ``proj_id``, ``acq_pars``/``acq_stim``,
              ``xplotter_layout``, the helium file GUID and every processing-history / HPI
              ``creator`` and ``experimenter`` go; ``device_info`` keeps type and model (serial
              and site only with Retain Device/Institution Identity); annotation texts are
              vetted (below). Written with ``raw.save`` in the file's own sample format:
              whatever mne does not read is not written. mne stamps every file it writes
              with the writing computer's network (MAC) address: those IDs are zeroed.
EDF, BDF      mne cannot write them without a further package, and rewriting would re-encode
              the samples: the header is rewritten and the data records copied. Patient
              field ``X X X X`` (with Retain Patient Characteristics the sex, hand, weight and
              height subfields stay); recording field ``Startdate DD-MMM-YYYY X X X`` (the
              equipment subfield stays with Retain Device Identity); ``startdate`` /
              ``starttime`` shifted (EDF's two-digit year holds 1985-2084: outside, the
              header says ``01.01.85`` or ``yy`` as EDF+ prescribes, and the recording field
              holds the full date, which is what mne reads). Without Modified Dates:
              ``Startdate X``, ``01.01.85``, ``00.00.00`` (EDF+'s "unknown"). The reserved
              field keeps only the variant (``EDF+C``...); each signal's transducer and
              reserved text are blanked, its prefiltering too unless it is a filter setting.
              EDF+/BDF+ annotation signals (``EDF Annotations``): every TAL text is vetted
              and the record keeps its size (:func:`rewrite_tals`).
BrainVision   the ``.eeg`` is copied byte for byte. ``.vhdr`` and ``.vmrk`` keep only what
              mne's reader reads (:data:`VHDR_KEPT`, :data:`VMRK_KEPT`): ``;`` comment
              lines, the ``[Comment]`` section (amplifier setup, impedances, whatever an
              operator typed) and any other section or key are dropped; channel entries
              keep name, reference, resolution and unit. Marker descriptions are vetted
              (type, position, size and channel kept, so events stay aligned); the "New
              Segment" date is shifted (or dropped); the file links are renamed after
              ``dst``, like mne-bids' ``copyfile_brainvision``. mne then reads no filter
              settings or impedances from the header: the BIDS ``channels.tsv`` keeps the
              filter settings.
============  =================================================================================

Annotation and marker texts (FIF, EDF+/BDF+, ``.vmrk``) are kept only when
:func:`windl.deid.annotations.vetted_annotation` keeps them (a code the recording software
writes, or a text the study approved in ``[vocabulary] trial_type``); any other text,
which an operator may have typed ("patient coughed"), becomes :func:`neutral_text`.

Left as they are, for the record: channel names (a CTF system writes its number into
them, e.g. ``BG1-2908``), digitised head points, SSP projector descriptions (FIF), marker
types (``Stimulus``, ``Comment``: the recorder's own categories).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from windl.deid.annotations import vetted_annotation
from windl.deid.dicom import DeidPolicy
from windl.errors import BadInput
from windl.files import atomic_write

#: file suffixes :func:`scrub_raw` handles (the main file of a recording)
SUPPORTED_SUFFIXES: Final = (".vhdr", ".edf", ".bdf", ".fif")

#: EEG/MEG files of formats windl cannot de-identify (``windl convert`` writes none of them:
#: it converts them to BrainVision or FIF), by how their name ends; a BIDS dataset imported
#: with them cannot be released (docs/formats-ephys.md)
UNSUPPORTED_RECORDINGS: Final = {
    ".con": "KIT/Yokogawa",
    ".sqd": "KIT/Yokogawa",
    ".mrk": "KIT marker",
    ".elp": "KIT digitisation",
    ".hsp": "KIT head shape",
    ".set": "EEGLAB",
    ".fdt": "EEGLAB",
    ".cnt": "Neuroscan/ANT",
    ".lay": "Persyst",  # not its .dat: a Neuromag fine-calibration file is a BIDS .dat
    ".mefd": "MEF3",  # a folder
    ".nwb": "NWB",
    ".snirf": "SNIRF",
    ".cdt": "Curry",
    ".mff": "EGI",  # a folder
}
_DATATYPES: Final = ("eeg", "meg", "ieeg", "nirs")


def unsupported_recording(rel: str) -> str | None:
    """The format of ``rel`` if it is an EEG/MEG file windl cannot de-identify, else None.

    Only files in a BIDS datatype folder (``eeg``, ``meg``, ``ieeg``, ``nirs``) count, and
    files inside a recording folder (MEF3 ``.mefd``, EGI ``.mff``, BTi/4D ``*_meg/``)
    whatever they are called.

    Parameters
    ----------
    rel : str
        A path in the study (``sub-01/meg/sub-01_task-x_meg.con``).

    Returns
    -------
    str or None
        The format's name.
    """
    parts = rel.split("/")
    datatype = next((p for p in parts[1:-1] if p in _DATATYPES), None)
    if datatype is None:
        return None
    if any(p.endswith("_meg") for p in parts[:-1]):
        return "BTi/4D"
    for name in (p.lower() for p in parts[parts.index(datatype) + 1 :]):
        for end, fmt in UNSUPPORTED_RECORDINGS.items():
            if name.endswith(end):
                return fmt
    return None


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
#: what an annotation or marker text no one vetted becomes (``BAD`` for a "bad" segment)
NEUTRAL_TEXT: Final = "n/a"


def neutral_text(text: str) -> str:
    """The neutral text that replaces an unvetted annotation ``text``.

    ``BAD`` when ``text`` marks a bad segment (mne excludes segments whose description
    starts with "bad", whatever the case; the release keeps them excluded), else
    :data:`NEUTRAL_TEXT`. Both are codes :func:`~windl.deid.annotations.is_machine_marker`
    knows, so the audit accepts them.
    """
    return "BAD" if text.strip().lower().startswith("bad") else NEUTRAL_TEXT


def released_text(text: str, approved: Collection[str] = ()) -> str:
    """An annotation text as released: itself if vetted (a software code or approved)."""
    vetted = vetted_annotation(text, approved)
    return vetted if vetted is not None else neutral_text(text)


def scrub_raw(
    src: Path,
    dst: Path,
    policy: DeidPolicy,
    date_offset_days: int,
    approved: Collection[str] = (),
) -> list[Path]:
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
    approved : collection of str
        Annotation and marker texts the study approved (its ``[vocabulary] trial_type``,
        :func:`windl.vocabulary.vocabulary_of`); any other text a person may have typed is
        replaced by :func:`neutral_text`.

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
    approved = frozenset(approved)
    if suffix == ".vhdr":
        return _scrub_brainvision(src, dst, policy, int(date_offset_days), approved)
    if suffix in (".edf", ".bdf"):
        return [_scrub_edf(src, dst, policy, int(date_offset_days), approved)]
    return _scrub_fif(src, dst, policy, int(date_offset_days), approved)


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


def _scrub_fif(
    src: Path, dst: Path, policy: DeidPolicy, days: int, approved: Collection[str]
) -> list[Path]:
    import mne

    try:
        raw = mne.io.read_raw_fif(src, preload=False, verbose="error")
    except Exception as exc:  # mne raises many types on bad files
        raise BadInput(f"unreadable FIF ({type(exc).__name__}: {exc})", src) from None
    anonymize_raw(raw, policy, days, approved)

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


def anonymize_raw(
    raw: Any, policy: DeidPolicy, date_offset_days: int, approved: Collection[str] = ()
) -> Any:
    """De-identify an :class:`mne.io.Raw`'s ``info`` and annotations in place, per ``policy``.

    mne's :meth:`~mne.io.Raw.anonymize` with ``daysback = -date_offset_days`` (with Retain
    Modified Dates; else the measurement date is removed first), then what it leaves:
    subject info reduced to the characteristics the policy keeps (never names, birthday
    or HIS ID), experimenter, description, project name/ID, the acquisition parameter
    texts, the helium file GUID and every processing-history and HPI ``creator`` /
    ``experimenter`` removed, device serial and site restored only when the policy
    retains device/institution identity, and every annotation description not vetted
    (:func:`released_text`) replaced by a neutral one (onsets, durations and channels
    kept; annotation extras dropped).

    Parameters
    ----------
    raw : mne.io.Raw
        The recording; its ``info`` and annotations are changed.
    policy : DeidPolicy
        The study's options.
    date_offset_days : int
        New date = old date + offset.
    approved : collection of str
        Annotation texts the study approved.

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
    with info._unlock():
        info["subject_info"] = kept or None
        for key in FIF_CLEARED:
            info[key] = None
        _clear_creators(info)
    if info.get("device_info") is not None:
        restored = {k: v for k, v in info["device_info"].items() if k in ("type", "model")}
        if policy.retain_device_identity and "serial" in device:
            restored["serial"] = device["serial"]
        if policy.retain_institution_identity and "site" in device:
            restored["site"] = device["site"]
        info["device_info"] = restored or None
    _vet_annotations(raw, approved)
    return raw


#: ``info`` fields of free text or IDs that no release needs to read the recording
FIF_CLEARED: Final = (
    "experimenter",
    "description",
    "proj_name",
    "proj_id",
    "acq_pars",
    "acq_stim",
    "xplotter_layout",
)


def _clear_creators(info: Any) -> None:
    """Drop the names of people and programs that processed the recording."""
    helium = info.get("helium_info")
    if helium is not None:
        helium.pop("orig_file_guid", None)
    for record in info.get("proc_history") or ():
        record.pop("experimenter", None)
        record.pop("creator", None)
        ctc = (record.get("max_info") or {}).get("sss_ctc") or {}
        ctc.pop("creator", None)
    for meas in info.get("hpi_meas") or ():
        meas.pop("creator", None)


def _vet_annotations(raw: Any, approved: Collection[str]) -> None:
    import mne

    old = raw.annotations
    if not len(old):
        return
    raw.set_annotations(
        mne.Annotations(
            onset=old.onset,
            duration=old.duration,
            description=[released_text(str(d), approved) for d in old.description],
            orig_time=old.orig_time,
            ch_names=old.ch_names,
        ),
        emit_warning=False,
    )


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


def _scrub_edf(
    src: Path, dst: Path, policy: DeidPolicy, days: int, approved: Collection[str]
) -> Path:
    with src.open("rb") as fh:
        head = fh.read(256)
    signals = _edf_int(head[252:256]) if len(head) == 256 else None
    if len(head) < 256 or not _edf_int(head[184:192]) or signals is None or signals < 0:
        raise BadInput("not an EDF/BDF file (no 256-byte header)", src)
    with src.open("rb") as fh:
        fh.seek(256)
        signal_header = fh.read(256 * signals)
    if len(signal_header) < 256 * signals:
        raise BadInput("EDF/BDF header cut short", src)
    layout = _edf_layout(head, signal_header, signals)
    fields = _edf_identity(head, policy, days) + _edf_reserved(head[192:236])
    new_signals = _edf_signal_text(signal_header, signals)

    def write(out: IO[bytes]) -> None:
        with src.open("rb") as fh:
            out.write(head[:8] + fields + head[236:256] + new_signals)
            fh.seek(len(head) + len(signal_header))
            if not layout.annotations:
                shutil.copyfileobj(fh, out, 1 << 20)
                return
            while record := fh.read(layout.record_size):
                out.write(_edf_record(record, layout, approved))

    atomic_write(dst, write)
    return dst


@dataclass(frozen=True)
class _EdfLayout:
    record_size: int  # bytes of one data record
    annotations: tuple[tuple[int, int], ...]  # (start, size) of each annotation signal
    labels: frozenset[str]  # the other signals' labels (for "text@@channel")


def _edf_layout(head: bytes, signal_header: bytes, signals: int) -> _EdfLayout:
    width = 3 if head[:1] == b"\xff" else 2  # BDF: 24-bit samples
    labels = [
        signal_header[16 * i : 16 * (i + 1)].decode("latin-1").strip() for i in range(signals)
    ]
    at = 216 * signals  # "number of samples in each data record", 8 bytes a signal
    counts = [_edf_int(signal_header[at + 8 * i : at + 8 * (i + 1)]) or 0 for i in range(signals)]
    spans, start = [], 0
    for label, count in zip(labels, counts, strict=True):
        if label in ("EDF Annotations", "BDF Annotations"):
            spans.append((start, count * width))
        start += count * width
    return _EdfLayout(
        start, tuple(spans), frozenset(lb for lb in labels if lb not in EDF_ANNOTATION_LABELS)
    )


#: labels of the EDF+/BDF+ annotation signals
EDF_ANNOTATION_LABELS: Final = ("EDF Annotations", "BDF Annotations")
#: the first word of the header's reserved field that says which format variant it is
_EDF_VARIANTS: Final = ("EDF+C", "EDF+D", "BDF+C", "BDF+D", "24BIT")
_PREFILTER = re.compile(
    r"^(?:(?:HP|LP|N|NOTCH|BP)\s*:\s*[-\d.,]+\s*(?:[mk]?Hz|s)?\s*|DC\s*)*$", re.I
)


def _edf_reserved(reserved: bytes) -> bytes:
    """The header's reserved field: the format variant only (EDF+C, BDF+D, 24BIT...)."""
    words = reserved.decode("latin-1").split()
    return _edf_field(words[0] if words and words[0] in _EDF_VARIANTS else "", 44)


def _edf_signal_text(signal_header: bytes, signals: int) -> bytes:
    """Signal headers with the free text blanked: transducer type, reserved, and any
    prefiltering that is not a filter setting (``HP:0.1Hz LP:75Hz N:50Hz``)."""
    out = bytearray(signal_header)
    transducer, prefilter, reserved = 16 * signals, 136 * signals, 224 * signals
    for i in range(signals):
        out[transducer + 80 * i : transducer + 80 * (i + 1)] = b" " * 80
        out[reserved + 32 * i : reserved + 32 * (i + 1)] = b" " * 32
        text = out[prefilter + 80 * i : prefilter + 80 * (i + 1)].decode("latin-1")
        if not _PREFILTER.match(text.strip()):
            out[prefilter + 80 * i : prefilter + 80 * (i + 1)] = b" " * 80
    return bytes(out)


def _edf_record(record: bytes, layout: _EdfLayout, approved: Collection[str]) -> bytes:
    if len(record) < layout.record_size:
        return record  # a cut last record: mne ignores it; so does this
    out = bytearray(record)
    for start, size in layout.annotations:
        out[start : start + size] = rewrite_tals(
            record[start : start + size], approved, layout.labels
        )
    return bytes(out)


_TAL_HEAD = re.compile(rb"^[+-]\d+(?:\.\d*)?(?:\x15\d+(?:\.\d*)?)?$")


def rewrite_tals(
    block: bytes, approved: Collection[str] = (), channels: Collection[str] = ()
) -> bytes:
    """One data record's annotation bytes with every unvetted text replaced.

    The EDF+ time-stamped annotation lists (TALs: ``+onset[\\x15duration]\\x14text\\x14…
    \\x00``) keep their onsets, durations and order; each text is kept when vetted
    (:func:`released_text`; ``text@@channel`` as mne writes it is vetted without its channel),
    else becomes the neutral text. A TAL that does not parse is dropped. The block keeps
    its size, padded with zeros; should the neutral texts not fit, the replaced texts are
    dropped instead (their TALs too, when nothing is left of them but the time).
    """
    tals = []
    for chunk in block.split(b"\x00"):
        parts = chunk.split(b"\x14")
        if len(parts) < 3 or parts[-1] != b"" or not _TAL_HEAD.match(parts[0]):
            continue
        tals.append((parts[0], [_tal_text(t, approved, channels) for t in parts[1:-1]]))
    for drop in (False, True):
        out = b"".join(
            _tal_bytes(head, texts, drop, first=i == 0) for i, (head, texts) in enumerate(tals)
        )
        if len(out) <= len(block):
            return out + b"\x00" * (len(block) - len(out))
    return b"\x00" * len(block)  # cannot happen: dropping only shortens


def _tal_text(
    raw: bytes, approved: Collection[str], channels: Collection[str]
) -> tuple[bytes, bool]:
    """(text as released, whether it was replaced)."""
    if not raw:
        return raw, False
    text = raw.decode("utf-8", errors="replace")
    name, _, channel = text.rpartition("@@")
    if name and channel in channels:
        text, suffix = name, f"@@{channel}"
    else:
        suffix = ""
    new = released_text(text, approved)
    return (new + suffix).encode("utf-8"), new != text


def _tal_bytes(head: bytes, texts: list[tuple[bytes, bool]], drop: bool, first: bool) -> bytes:
    kept = [t for t, replaced in texts if not (drop and replaced)]
    if not kept:
        if not first:
            return b""
        kept = [b""]
    return head + b"\x14" + b"\x14".join(kept) + b"\x14\x00"


def _edf_identity(head: bytes, policy: DeidPolicy, days: int) -> bytes:
    """Bytes 8-192 of the header: patient, recording, start date and time, header size."""
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
    return (
        _edf_field(" ".join(new_patient), 80)
        + _edf_field(" ".join(["Startdate", startdate, "X", "X", equipment]), 80)
        + header_date.encode("ascii")
        + header_time.encode("ascii")
        + head[184:192]
    )


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
_MARKER = re.compile(r"^Mk(\d+)=(.*)$")
_KEY = re.compile(r"^([^=]+?)\s*=(.*)$")
_NUMBERS = re.compile(r"^\s*-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)*\s*$")
#: what mne's reader takes from a ``.vhdr``: section -> keys (``Ch``: the ``Ch<n>`` entries)
VHDR_KEPT: Final[dict[str, frozenset[str]]] = {
    "common infos": frozenset(
        {
            "codepage",
            "datafile",
            "markerfile",
            "dataformat",
            "dataorientation",
            "datatype",
            "numberofchannels",
            "samplinginterval",
            "datapoints",
            "averaged",
            "averagedsegments",
            "segmentationtype",
            "segmentdatapoints",
        }
    ),
    "binary infos": frozenset({"binaryformat", "usebigendianorder"}),
    "ascii infos": frozenset({"decimalsymbol", "skiplines", "skipcolumns"}),
    "channel infos": frozenset({"ch"}),
    "coordinates": frozenset({"ch"}),
}
#: what mne's reader takes from a ``.vmrk``
VMRK_KEPT: Final[dict[str, frozenset[str]]] = {
    "common infos": frozenset({"codepage", "datafile"}),
    "marker infos": frozenset({"mk"}),
}


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


def _scrub_brainvision(
    src: Path, dst: Path, policy: DeidPolicy, days: int, approved: Collection[str]
) -> list[Path]:
    text, links, encoding = _read_vhdr(src)
    data_src = src.parent / links["DataFile"]
    marker_src = src.parent / links["MarkerFile"]
    data_dst = dst.with_suffix(".eeg")
    marker_dst = dst.with_suffix(".vmrk")
    names = {"DataFile": data_dst.name, "MarkerFile": marker_dst.name}

    marker_raw = marker_src.read_bytes()
    marker_encoding = _codepage(marker_raw) if b"Codepage=" in marker_raw else encoding
    marker = marker_raw.decode(marker_encoding, errors="surrogateescape")
    new_marker = _keep_lines(
        marker,
        VMRK_KEPT,
        lambda line, key: _scrub_vmrk_line(line, key, names, policy, days, approved),
    )
    new_header = _keep_lines(text, VHDR_KEPT, lambda line, key: _scrub_vhdr_line(line, key, names))

    atomic_write(data_dst, lambda out: _copy(data_src, out))
    atomic_write(
        marker_dst, lambda out: out.write(new_marker.encode(marker_encoding, "surrogateescape"))
    )
    atomic_write(dst, lambda out: out.write(new_header.encode(encoding, "surrogateescape")))
    return [dst, marker_dst, data_dst]


def _keep_lines(
    text: str,
    kept: Mapping[str, frozenset[str]],
    func: Callable[[str, str], str | None],
) -> str:
    """The lines mne reads, each through ``func(line, key)`` (``None`` drops it).

    The first line (the format's identification) and blank lines are kept; ``;`` comments,
    every section not in ``kept`` (``[Comment]`` among them) and every key not listed
    for its section are dropped; line endings are kept.
    """
    out = []
    section: str | None = None
    for number, line in enumerate(text.splitlines(keepends=True)):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if number == 0 or not stripped:
            if number == 0 or section is None or section in kept:
                out.append(line)
            continue
        if stripped.startswith(";"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
            if section in kept:
                out.append(line)
            continue
        if section not in kept:
            continue
        match = _KEY.match(stripped)
        if match is None:
            continue
        key = match.group(1).strip().lower()
        family = re.sub(r"\d+$", "", key)
        if key not in kept[section] and family not in kept[section]:
            continue
        new = func(stripped, family)
        if new is not None:
            out.append(new + line[len(body) :])
    return "".join(out)


def _relink(line: str, names: dict[str, str]) -> str | None:
    match = _LINK.match(line.strip())
    if not match:
        return None
    key = "DataFile" if match.group(1).lower() == "datafile" else "MarkerFile"
    return f"{match.group(1)}={names[key]}"


def _scrub_vhdr_line(line: str, family: str, names: dict[str, str]) -> str | None:
    relinked = _relink(line, names)
    if relinked is not None:
        return relinked
    if family != "ch":
        return line
    name, _, value = line.partition("=")
    fields = value.split(",")
    if len(fields) == 3 and _NUMBERS.match(value):  # [Coordinates]: radius, theta, phi
        return line
    # [Channel Infos]: name, reference, resolution, unit ("future extensions" dropped)
    return f"{name}={','.join(fields[:4])}"


def _scrub_vmrk_line(
    line: str,
    family: str,
    names: dict[str, str],
    policy: DeidPolicy,
    days: int,
    approved: Collection[str],
) -> str | None:
    relinked = _relink(line, names)
    if relinked is not None:
        return relinked
    if family != "mk":
        return line
    number, fields = _marker_fields(line)
    if number is None or len(fields) < 5:
        return None  # not a marker mne can read
    kind, description = fields[0], fields[1]
    fields[1] = vetted_marker(kind, description, approved)
    new = f"Mk{number}={','.join(fields[:5])}"
    if kind == "New Segment" and len(fields) > 5:
        return _segment_date(new, fields[5], policy, days)
    return new


def _marker_fields(line: str) -> tuple[str | None, list[str]]:
    match = _MARKER.match(line)
    if match is None:
        return None, []
    return match.group(1), match.group(2).split(",")


def vetted_marker(kind: str, description: str, approved: Collection[str] = ()) -> str:
    """A BrainVision marker description as released: kept when vetted, else neutral.

    Kept when empty, or when :func:`~windl.deid.annotations.vetted_annotation` keeps the
    description alone or as mne reads it (``Type/description``); else
    :data:`NEUTRAL_TEXT`.
    """
    text = description.replace("\\1", ",")
    if not text.strip() or is_vetted_marker(kind, description, approved):
        return description
    return neutral_text(text)


def is_vetted_marker(kind: str, description: str, approved: Collection[str] = ()) -> bool:
    """Whether a BrainVision marker's description may be released as it is."""
    text = description.replace("\\1", ",")
    return (
        not text.strip()
        or vetted_annotation(text, approved) is not None
        or vetted_annotation(f"{kind}/{text}", approved) is not None
    )


def _segment_date(line: str, stamp: str, policy: DeidPolicy, days: int) -> str:
    if not re.fullmatch(r"\d{20}", stamp.strip()):
        return line
    stamp = stamp.strip()
    if stamp == "0" * 20:
        return f"{line},{stamp}"  # "no date" already
    if not policy.retain_modified_dates:
        return line
    try:
        when = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S") + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return line
    return f"{line},{when:%Y%m%d%H%M%S}{stamp[14:]}"


# --- files ----------------------------------------------------------------------------------


def _copy(src: Path, out: IO[bytes]) -> None:
    with src.open("rb") as fh:
        shutil.copyfileobj(fh, out, 1 << 20)
