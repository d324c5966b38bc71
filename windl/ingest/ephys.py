"""Recognise EEG and MEG recordings in an ingest source, by content, and check them.

A recording is one unit even when it is several files: a BrainVision header with its
data and marker files (which it names), a FIF file with its split parts, a CTF ``.ds``
folder, a KIT file with its marker and digitisation files, a BTi/4D data file with its
``config`` and ``hs_file``, an EEGLAB ``.set`` with its ``.fdt``, a Nihon Kohden ``.EEG``
with its ``.21E``/``.PNT``/``.LOG``, a Persyst ``.lay`` with its ``.dat``. Each is checked
before anything is written: BrainVision references must resolve and its binary data hold
whole samples up to its last marker, EDF/BDF sizes must match their header, FIF files must
parse and their chain of tags must end inside the file, KIT/Neuroscan/Persyst data must be
as long as their header says, and every format's mne reader must open it.

:func:`read_recording` opens a recognised recording with the reader of its format (never
chosen from a file suffix) and types untyped channels from their labels; conversion and the
release's identifier search use it (docs/formats-ephys.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from windl.errors import BadInput
from windl.ingest.sources import SourceFile

_FIF_MAGIC = b"\x00\x00\x00\x64"  # first tag: FIFF_FILE_ID (kind 100), big endian
_EDF_MAGIC = b"0       "
_BDF_MAGIC = b"\xffBIOSEMI"
#: BrainVision headers (and V-Amp's .ahdr/.amrk); a UTF-8 BOM may come first
_VHDR_HEADER = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*Brain ?Vision (?:Data Exchange|V-Amp Data) Header File", re.IGNORECASE
)
_VMRK_HEADER = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*Brain ?Vision (?:Data Exchange|V-Amp Data) Marker File", re.IGNORECASE
)
_FIF_SPLIT = re.compile(r"^(?P<base>.+?)(?:-(?P<n>\d+))?\.fif$", re.IGNORECASE)


@dataclass(frozen=True)
class Recording:
    """One EEG/MEG recording and all the files that belong to it."""

    kind: str  # "eeg" or "meg"
    format: str  # BrainVision, EDF, BDF, FIF, CTF, KIT, BTi, EEGLAB, CNT, NihonKohden, Persyst
    name: str
    main: SourceFile  # the file a reader opens
    files: tuple[SourceFile, ...]

    def target(self, source_file: SourceFile) -> str:
        """Path of ``source_file`` within the session: ``<kind>/<name>/<path in recording>``."""
        root = self.main.relpath.parent
        if self.format == "CTF":
            root = root.parent  # keep the .ds folder itself
        return f"{self.kind}/{self.name}/{source_file.relpath.relative_to(root)}"


def _head(path: Path, size: int = 64) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def _brainvision_refs(vhdr: Path) -> dict[str, str]:
    text = vhdr.read_text(encoding="utf-8", errors="replace")
    refs = {}
    for key in ("DataFile", "MarkerFile"):
        match = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", text, re.MULTILINE)
        if match:
            refs[key] = match.group(1)
    return refs


def brainvision_data_file(vhdr: Path) -> str | None:
    """The ``DataFile=`` a BrainVision header names, or None."""
    return _brainvision_refs(vhdr).get("DataFile")


def _check_edf(path: Path, bdf: bool) -> None:
    """Refuse an EDF/BDF whose size does not match its header (e.g. a cut-off file)."""
    what = "BDF" if bdf else "EDF"
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(256)
        try:
            header_bytes = int(head[184:192])
            n_records = int(head[236:244])
            n_signals = int(head[252:256])
            fh.seek(256 + n_signals * 216)
            samples = [int(fh.read(8)) for _ in range(n_signals)]
        except (ValueError, OSError):  # OSError: a negative signal count's seek (issue 22)
            raise BadInput(f"not a valid {what} header", path) from None
    record = sum(samples) * (3 if bdf else 2)
    if header_bytes != 256 * (n_signals + 1) or record <= 0:
        raise BadInput(f"not a valid {what} header", path)
    expected = header_bytes + n_records * record
    if n_records > 0 and size < expected:
        raise BadInput(f"truncated {what}: {size} of {expected} bytes", path)
    if n_records <= 0 and (size - header_bytes) % record:
        raise BadInput(f"truncated {what}: data is not a whole number of records", path)


#: bytes per sample of BrainVision's binary formats
_BV_SAMPLE_BYTES = {"INT_16": 2, "UINT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4}
#: a FIF tag: kind, type, size of its data, position of the next tag (all big-endian int32)
_FIF_TAG = struct.Struct(">iiii")
_FIF_NEXT_SEQ, _FIF_NEXT_NONE = 0, -1


def _ini_value(text: str, key: str) -> str | None:
    match = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def _marker_positions(vmrk: Path) -> list[int]:
    """The sample positions (1-based) of a marker file's ``Mk<n>=type,desc,pos,...`` lines."""
    positions = []
    text = vmrk.read_text(encoding="utf-8", errors="replace")
    for match in re.finditer(r"^\s*Mk\d+\s*=([^\n]*)$", text, re.MULTILINE):
        fields = match.group(1).split(",")
        # ASCII digits only: str.isdigit() also takes "²", and strip() removes "\x1f",
        # neither of which int() accepts
        if len(fields) >= 3 and re.fullmatch(r"[0-9]+", fields[2].strip()):
            positions.append(int(fields[2].strip()))
    return positions


def _check_brainvision_data(vhdr: Path, eeg: Path, vmrk: Path | None) -> None:
    """Refuse binary data that is not whole samples or ends before the markers' last one."""
    text = vhdr.read_text(encoding="utf-8", errors="replace")
    if (_ini_value(text, "DataFormat") or "BINARY").upper() != "BINARY":
        return  # ASCII data: its lines are checked by the converter
    channels = _ini_value(text, "NumberOfChannels")
    width = _BV_SAMPLE_BYTES.get((_ini_value(text, "BinaryFormat") or "").upper())
    if vhdr.suffix.lower() == ".ahdr" and width is None:
        width = 4  # V-Amp writes float32 samples and does not always say so
    if channels is None or not channels.isdigit() or int(channels) <= 0 or width is None:
        raise BadInput("BrainVision header has no valid NumberOfChannels and BinaryFormat", vhdr)
    # V-Amp frames hold one more value than the channels it lists (its status word)
    frame = (int(channels) + (vhdr.suffix.lower() == ".ahdr")) * width
    size = eeg.stat().st_size
    if size == 0 or size % frame:
        raise BadInput(
            f"truncated BrainVision data: {size} bytes is not a whole number of "
            f"{channels}-channel samples ({frame} bytes each)",
            eeg,
        )
    last = max(_marker_positions(vmrk), default=0) if vmrk is not None else 0
    if last > size // frame:
        raise BadInput(
            f"truncated BrainVision data: {size // frame} samples, but a marker is at "
            f"sample {last}",
            eeg,
        )


def _check_fif_tags(path: Path) -> None:
    """Walk a FIF file's chain of tags; refuse one that is cut off or points outside.

    mne reads only the measurement info up front, so a file cut in its data would pass
    :func:`_fif_kind` and fail (or lose data) only at conversion.
    """
    size = path.stat().st_size
    pos = 0
    with path.open("rb") as fh:
        # each step moves forward, so at most size / 16 tags; a loop of 'next' pointers
        # that goes backwards is damage
        for _ in range(size // _FIF_TAG.size + 1):
            fh.seek(pos)
            header = fh.read(_FIF_TAG.size)
            if len(header) < _FIF_TAG.size:
                raise BadInput(f"truncated FIF: tag at byte {pos} is cut off", path)
            _kind, _type, length, after = _FIF_TAG.unpack(header)
            end = pos + _FIF_TAG.size + length
            if length < 0:
                raise BadInput(f"unreadable FIF: damaged tag at byte {pos}", path)
            if end > size:
                raise BadInput(
                    f"truncated FIF: tag at byte {pos} needs {end} bytes, file has {size}", path
                )
            if after == _FIF_NEXT_NONE or (after == _FIF_NEXT_SEQ and end == size):
                return
            following = end if after == _FIF_NEXT_SEQ else after
            if following <= pos or following >= size:
                raise BadInput(f"unreadable FIF: tag at byte {pos} points to byte {after}", path)
            pos = following
    raise BadInput("unreadable FIF: its tags do not end", path)


def _fif_kind(path: Path) -> str:
    """Open a FIF file's tag directory (detects damage) and say whether it holds MEG."""
    import mne

    try:
        info = mne.io.read_info(path, verbose="error")
        # inside the try: a channel of an unknown kind fails here (KeyError), not in
        # read_info (found by fuzzing, issue 22)
        has_meg = len(mne.pick_types(info, meg=True, ref_meg=False, exclude=[])) > 0
    except Exception as exc:  # mne raises many types for damaged files
        detail = " ".join(str(exc).split())[:160]
        raise BadInput(f"unreadable FIF ({type(exc).__name__}: {detail})", path) from None
    return "meg" if has_meg else "eeg"


# --- formats that mne reads and mne-bids converts (issue 23) --------------------------------

#: KIT/Yokogawa (.sqd, .con, and .mrk marker files): the file starts with its directory of
#: sections, whose own first entry is (offset 0, entry size 16), little-endian int32
_KIT_MAGIC = struct.pack("<ii", 0, 16)
_KIT_SUFFIXES = (".sqd", ".con")
#: KIT digitisation files (text): head points and marker-coil positions in head space
_KIT_DIGITISATION = (".elp", ".hsp")
_CNT_MAGIC = b"Version 3.0\x00"  # Neuroscan CNT: the revision string of SETUP
_CNT_EVENT_TABLE_POS = 886  # SETUP.EventTablePos: where the event table after the data starts
#: Nihon Kohden: a 16-byte device and version string (mne's _valid_headers are all of it)
_NIHON_MAGIC = re.compile(rb"^[A-Z0-9][A-Z0-9 -]{8,9}\s*V0\d\.\d\d")
_MAT5_MAGIC = b"MATLAB 5.0 MAT-file"
_MAT73_MAGIC = b"MATLAB 7.3 MAT-file"
_PERSYST_HEADER = re.compile(rb"^\s*\[FileInfo\]", re.IGNORECASE)
#: BTi/4D raw data files are named after their processing ("c,rfDC", "e,rfhp1.0Hz,COH")
_BTI_DATA = re.compile(r"^[a-z],r[^/]*$")


def _read_check(fmt: str, path: Path, reader: Callable[[], Any]) -> Any:
    """Open a recording's header with mne; a failure is a one-line refusal naming ``path``."""
    try:
        return reader()
    except Exception as exc:  # mne raises many types for damaged files
        # some mne messages hold a formatted traceback: its last line is the message
        name = type(exc).__name__
        lines = [line for line in str(exc).splitlines() if line.strip()] or [""]
        line = next((x for x in lines if x.startswith(f"{name}: ")), lines[-1])
        detail = " ".join(line.split()).removeprefix(f"{name}: ")[:160]
        raise BadInput(f"unreadable {fmt} ({type(exc).__name__}: {detail})", path) from None


def _check_readable(recording: Recording) -> None:
    """Open the header of a recording of the formats below with the reader convert uses."""
    if recording.format == "CNT":
        _check_cnt_size(recording, None)  # before mne, whose guesses hide a cut file
    raw = _read_check(
        recording.format, recording.main.path, lambda: read_recording(recording, preload=False)
    )
    # a data file cut short: mne reads the header only, so check the samples it promises
    _read_check(
        recording.format,
        recording.main.path,
        lambda: raw.get_data(start=max(raw.n_times - 1, 0), stop=raw.n_times),
    )
    # mne pads a short read of these with zeros, or counts samples from the file size
    checks = {"KIT": _check_kit_size, "Persyst": _check_persyst_size}
    if recording.format in checks:
        checks[recording.format](recording, raw)


def _check_kit_size(recording: Recording, raw: Any) -> None:
    """Refuse a KIT file shorter than the samples its header announces."""
    from mne.io.kit.constants import KIT

    # mne keeps the header's directory and sample count in its (private) extras; mne is
    # pinned in pyproject.toml
    extras = raw._raw_extras[0]
    offset = extras["dirs"][KIT.DIR_INDEX_RAW_DATA]["offset"]
    expected = offset + int(extras["n_samples"]) * extras["nchan"] * extras["dtype"].itemsize
    size = recording.main.path.stat().st_size
    if size < expected:
        raise BadInput(f"truncated KIT: {size} of {expected} bytes", recording.main.path)


def _check_cnt_size(recording: Recording, _raw: Any) -> None:
    """Refuse a Neuroscan CNT cut before the end of its event table (which follows the data)."""
    path = recording.main.path
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(_CNT_EVENT_TABLE_POS)
        field = fh.read(4)
        position = struct.unpack("<i", field)[0] if len(field) == 4 else 0
        table = b""
        if position > 0:
            fh.seek(position + 1)
            table = fh.read(4)
    length = struct.unpack("<i", table)[0] if len(table) == 4 else 0
    expected = position + 9 + max(length, 0)  # type byte, size and offset, the table
    if position <= 0 or size < expected:
        raise BadInput(f"truncated CNT: {size} of {expected} bytes", path)


def _check_persyst_size(recording: Recording, raw: Any) -> None:
    """Refuse a Persyst .dat that is not whole samples (mne counts them from its size)."""
    data = next(f.path for f in recording.files if f != recording.main)
    frame = raw._raw_extras[0]["n_chs"] * raw._raw_extras[0]["dtype"].itemsize
    size = data.stat().st_size
    if frame <= 0 or size == 0 or size % frame:
        raise BadInput(
            f"truncated Persyst data: {size} bytes is not a whole number of "
            f"{raw._raw_extras[0]['n_chs']}-channel samples ({frame} bytes each)",
            data,
        )


def _same_stem(by_path: dict[PurePosixPath, SourceFile], rel: PurePosixPath) -> list[SourceFile]:
    """Files next to ``rel`` with its stem (case-insensitive), ``rel`` first."""
    stem = rel.stem.lower()
    return [by_path[rel]] + [
        f
        for p, f in sorted(by_path.items())
        if p != rel and p.parent == rel.parent and p.stem.lower() == stem
    ]


def _kit_companions(
    by_path: dict[PurePosixPath, SourceFile], rel: PurePosixPath, others: int
) -> list[SourceFile]:
    """Marker (.mrk) and digitisation (.elp, .hsp) files that belong to a KIT file.

    KIT systems name them freely (``MQKIT_125.mrk`` for ``MQKIT_125_2sec.con``): a file
    goes with the recording whose stem starts with its stem, or with the only KIT
    recording of its folder (``others`` is how many more there are).
    """
    found = []
    for p, f in sorted(by_path.items()):
        if p.parent != rel.parent or p.suffix.lower() not in (".mrk", *_KIT_DIGITISATION):
            continue
        if p.suffix.lower() == ".mrk" and not _head(f.path, 8).startswith(_KIT_MAGIC):
            continue
        if rel.stem.lower().startswith(p.stem.lower()) or others == 0:
            found.append(f)
    return found


def _other_formats(
    by_path: dict[PurePosixPath, SourceFile], used: set[PurePosixPath]
) -> list[Recording]:
    """KIT, BTi/4D, EEGLAB, Neuroscan, Nihon Kohden and Persyst recordings, by content."""
    found: list[Recording] = []
    kit = [
        p
        for p, f in sorted(by_path.items())
        if p not in used
        and p.suffix.lower() in _KIT_SUFFIXES
        and _head(f.path, 8).startswith(_KIT_MAGIC)
    ]
    for rel in kit:
        others = sum(1 for p in kit if p.parent == rel.parent) - 1
        group = [by_path[rel], *_kit_companions(by_path, rel, others)]
        found.append(Recording("meg", "KIT", rel.stem, by_path[rel], tuple(group)))
    for rel, source_file in sorted(by_path.items()):
        if rel in used or rel in kit:
            continue
        suffix, head = rel.suffix.lower(), _head(source_file.path)
        if _BTI_DATA.match(rel.name) and (rel.parent / "config") in by_path:
            group = [source_file, by_path[rel.parent / "config"]]
            if (rel.parent / "hs_file") in by_path:
                group.append(by_path[rel.parent / "hs_file"])
            name = f"{rel.parent.name or 'bti'}-{re.sub(r'[^A-Za-z0-9]+', '', rel.name)}"
            found.append(Recording("meg", "BTi", name, source_file, tuple(group)))
        elif suffix == ".set" and head.startswith(_MAT73_MAGIC):
            raise BadInput(
                "EEGLAB file in MATLAB 7.3 (HDF5) format: not supported, save it from "
                "EEGLAB as a MATLAB 5 file ('-v6' or '-v7')",
                source_file.path,
            )
        elif suffix == ".set" and head.startswith(_MAT5_MAGIC):
            group = [
                f for f in _same_stem(by_path, rel) if f.relpath.suffix.lower() in (".set", ".fdt")
            ]
            found.append(Recording("eeg", "EEGLAB", rel.stem, source_file, tuple(group)))
        elif suffix == ".cnt" and head.startswith(_CNT_MAGIC):
            found.append(Recording("eeg", "CNT", rel.stem, source_file, (source_file,)))
        elif suffix == ".eeg" and _NIHON_MAGIC.match(head[:16]):
            group = [
                f
                for f in _same_stem(by_path, rel)
                if f.relpath not in used and not _head(f.path, 8).startswith(_EDF_MAGIC)
            ]
            found.append(Recording("eeg", "NihonKohden", rel.stem, source_file, tuple(group)))
        elif suffix == ".lay" and _PERSYST_HEADER.match(head):
            data_name = _ini_value(source_file.path.read_text("utf-8", "replace"), "File")
            data = by_path.get(rel.parent / data_name) if data_name else None
            if data is None:
                raise BadInput(
                    f"incomplete Persyst recording: its File= {data_name!r} is not next to it",
                    source_file.path,
                )
            found.append(Recording("eeg", "Persyst", rel.stem, source_file, (source_file, data)))
        else:
            continue
        used |= {f.relpath for f in found[-1].files}
    used |= {f.relpath for r in found for f in r.files}
    for recording in found:
        _check_readable(recording)
    return found


def _unique_names(recordings: list[Recording]) -> list[Recording]:
    """Give recordings that share a name (an EDF export beside its source) distinct ones."""
    taken: set[str] = set()
    unique = []
    for recording in recordings:
        name = recording.name
        if name in taken:
            name = f"{name}-{recording.format.lower()}"
        n = 2
        while name in taken:
            name, n = f"{recording.name}-{recording.format.lower()}{n}", n + 1
        taken.add(name)
        unique.append(dataclasses.replace(recording, name=name))
    return unique


#: channel types from labels, for formats that do not type their channels (EDF, BDF,
#: BrainVision...): the first pattern that matches a channel's label wins
LABEL_TYPES: Final = (
    ("stim", re.compile(r"\b(?:d?trig\w*|sti(?:\s*\d+)?|stim|status)\b", re.IGNORECASE)),
    ("eog", re.compile(r"eog", re.IGNORECASE)),
    ("ecg", re.compile(r"ecg|ekg", re.IGNORECASE)),
    ("emg", re.compile(r"emg", re.IGNORECASE)),
)
#: formats whose files say nothing (or not enough) about channel types
_UNTYPED: Final = ("EDF", "BDF", "BrainVision", "EEGLAB", "CNT", "NihonKohden", "Persyst")


def label_type(label: str) -> str | None:
    """The channel type a channel's label names (``EOG``, ``ECG``/``EKG``, ``EMG``,
    trigger), or None."""
    for kind, pattern in LABEL_TYPES:
        if pattern.search(label):
            return kind
    return None


def _companion(recording: Recording, *suffixes: str) -> list[Path]:
    return [f.path for f in recording.files if f.relpath.suffix.lower() in suffixes]


def _read_kit(recording: Recording, preload: bool) -> Any:
    import mne

    mrk, elp, hsp = (_companion(recording, s) for s in (".mrk", ".elp", ".hsp"))
    # mne coregisters only with all three; without them the files stay in sourcedata
    coreg = bool(mrk and elp and hsp)
    return mne.io.read_raw_kit(
        recording.main.path,
        mrk=mrk if coreg else None,
        elp=elp[0] if coreg else None,
        hsp=hsp[0] if coreg else None,
        preload=preload,
        verbose="error",
    )


def _read_cnt(path: Path, preload: bool) -> Any:
    import mne

    try:
        return mne.io.read_raw_cnt(path, preload=preload, verbose="error")
    except RuntimeError as exc:
        # header without a sample count: mne cannot tell 16- from 32-bit samples; Neuroscan
        # SCAN 4.x writes 32 bits (docs/formats-ephys.md)
        if "number of samples (according to header) is 0" not in str(exc):
            raise
        return mne.io.read_raw_cnt(path, data_format="int32", preload=preload, verbose="error")


def _read_edf(recording: Recording, preload: bool) -> Any:
    """EDF/BDF with channels typed from their labels, trigger channels read unscaled."""
    import mne

    reader = mne.io.read_raw_bdf if recording.format == "BDF" else mne.io.read_raw_edf
    header = reader(recording.main.path, verbose="error")
    types = {name: label_type(name) for name in header.ch_names}
    stim = [n for n, t in types.items() if t == "stim"]
    # stim_channel makes mne read them as integer codes, not scaled to volts
    raw = reader(
        recording.main.path,
        stim_channel=stim or "auto",
        eog=[n for n, t in types.items() if t == "eog"] or None,
        preload=preload,
        verbose="error",
    )
    return raw


def read_recording(recording: Recording, preload: bool = False) -> Any:
    """Open ``recording`` with the mne reader of its format (never from a file suffix alone).

    The format is what :func:`find_recordings` recognised from the content: a BrainVision
    header is read as BrainVision whatever its ``DataFile`` is called. Channels the
    format leaves untyped are typed from their labels (:func:`label_type`).
    """
    import mne

    path, fmt = recording.main.path, recording.format
    readers: dict[str, Callable[[], Any]] = {
        "BrainVision": lambda: mne.io.read_raw_brainvision(path, preload=preload, verbose="error"),
        "EDF": lambda: _read_edf(recording, preload),
        "BDF": lambda: _read_edf(recording, preload),
        "FIF": lambda: mne.io.read_raw_fif(path, preload=preload, verbose="error"),
        "CTF": lambda: mne.io.read_raw_ctf(path.parent, preload=preload, verbose="error"),
        "KIT": lambda: _read_kit(recording, preload),
        "BTi": lambda: mne.io.read_raw_bti(
            path,
            config_fname=path.parent / "config",
            head_shape_fname=(
                h[0]
                if (h := [f.path for f in recording.files if f.relpath.name == "hs_file"])
                else None
            ),
            preload=preload,
            verbose="error",
        ),
        "EEGLAB": lambda: mne.io.read_raw_eeglab(path, preload=preload, verbose="error"),
        "CNT": lambda: _read_cnt(path, preload),
        "NihonKohden": lambda: mne.io.read_raw_nihon(path, preload=preload, verbose="error"),
        "Persyst": lambda: mne.io.read_raw_persyst(path, preload=preload, verbose="error"),
    }
    # mne's Persyst reader prints a birthdate it cannot parse: never to windl's output
    with contextlib.redirect_stdout(io.StringIO()):
        raw = readers[fmt]()
    if fmt in _UNTYPED:
        typed = {
            name: kind
            for name, kind in ((n, label_type(n)) for n in raw.ch_names)
            if kind is not None and raw.get_channel_types([name])[0] == "eeg"
        }
        if typed:
            raw.set_channel_types(typed, on_unit_change="ignore", verbose="error")
    return raw


def find_recordings(files: Sequence[SourceFile]) -> tuple[list[Recording], list[SourceFile]]:
    """Split ``files`` into EEG/MEG recordings and the rest.

    Every format is recognised by content (a magic number or header line) and each
    recording keeps its companion files (markers, digitisation, channel tables).

    Raises
    ------
    BadInput
        For an incomplete BrainVision or Persyst set, a truncated EDF/BDF, an unreadable
        FIF or any recording that its mne reader cannot open.
    """
    by_path = {f.relpath: f for f in files}
    used: set[PurePosixPath] = set()
    recordings: list[Recording] = []

    # CTF: a folder named *.ds holding .meg4 and .res4
    for ds_dir in sorted({p.parent for p in by_path if p.parent.suffix.lower() == ".ds"}):
        members = [f for p, f in by_path.items() if ds_dir in p.parents]
        suffixes = {f.relpath.suffix.lower() for f in members}
        if {".meg4", ".res4"} <= suffixes:
            main = next(f for f in members if f.relpath.suffix.lower() == ".res4")
            recordings.append(Recording("meg", "CTF", ds_dir.stem, main, tuple(members)))
            used |= {f.relpath for f in members}

    for rel, source_file in sorted(by_path.items()):
        if rel in used:
            continue
        suffix = rel.suffix.lower()
        head = _head(source_file.path)
        if suffix in (".vhdr", ".ahdr") and _VHDR_HEADER.match(head):
            group = _brainvision_group(by_path, rel)
            recordings.append(Recording("eeg", "BrainVision", rel.stem, source_file, group))
            used |= {f.relpath for f in group}
        elif head.startswith(_EDF_MAGIC) and suffix in (".edf", ".rec"):
            _check_edf(source_file.path, bdf=False)
            recordings.append(Recording("eeg", "EDF", rel.stem, source_file, (source_file,)))
            used.add(rel)
        elif head.startswith(_BDF_MAGIC):
            _check_edf(source_file.path, bdf=True)
            recordings.append(Recording("eeg", "BDF", rel.stem, source_file, (source_file,)))
            used.add(rel)
        elif head.startswith(_FIF_MAGIC) and suffix == ".fif":
            match = _FIF_SPLIT.match(rel.name)
            if (
                match
                and match.group("n")
                and (rel.parent / f"{match.group('base')}.fif") in by_path
            ):
                continue  # a split part: joins its first file below
            parts = [source_file] + [
                by_path[p]
                for p in sorted(by_path)
                if p.parent == rel.parent
                and (m := _FIF_SPLIT.match(p.name))
                and m.group("n")
                and m.group("base") == rel.stem
            ]
            for part in parts:
                _check_fif_tags(part.path)
            kind = _fif_kind(source_file.path)
            recordings.append(Recording(kind, "FIF", rel.stem, source_file, tuple(parts)))
            used |= {f.relpath for f in parts}
    for recording in recordings:
        if recording.format in ("BrainVision", "EDF", "BDF", "CTF"):
            # e.g. an EDF+ of annotations only (a hypnogram), a CTF .meg4 cut short
            _check_readable(recording)
    recordings += _other_formats(by_path, used)
    used |= {f.relpath for r in recordings for f in r.files}

    # BrainVision data or marker files that no header claimed
    for rel, source_file in sorted(by_path.items()):
        if rel in used:
            continue
        if rel.suffix.lower() in (".vmrk", ".amrk") and _VMRK_HEADER.match(_head(source_file.path)):
            raise BadInput(
                "incomplete BrainVision recording: marker file without header", source_file.path
            )
        if rel.suffix.lower() == ".eeg" and rel.with_suffix(".vmrk") in by_path:
            raise BadInput(
                "incomplete BrainVision recording: data file without header", source_file.path
            )
    rest = [f for f in files if f.relpath not in used]
    return _unique_names(recordings), rest


def folder_recording(folder: Path) -> Recording | None:
    """The recording ingest stored in ``folder`` (``<kind>/<name>/``), recognised by content.

    Conversion and the release's identifier search read a stored recording with this, so
    both open it as ingest recognised it.
    """
    files = [
        SourceFile(p, PurePosixPath(p.relative_to(folder).as_posix()))
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    ]
    recordings, _ = find_recordings(files)
    return recordings[0] if recordings else None


def _brainvision_group(
    by_path: dict[PurePosixPath, SourceFile], rel: PurePosixPath
) -> tuple[SourceFile, ...]:
    """A BrainVision header with the data and marker files it names, checked."""
    header = by_path[rel]
    refs = _brainvision_refs(header.path)
    if "DataFile" not in refs:
        raise BadInput("BrainVision header names no DataFile", header.path)
    group = [header]
    for key, name in refs.items():
        partner = by_path.get(rel.parent / name)
        if partner is None:
            raise BadInput(
                f"incomplete BrainVision recording: header names {key} {name!r}, "
                "which is not next to it",
                header.path,
            )
        group.append(partner)
    data_file = by_path[rel.parent / refs["DataFile"]]
    marker = by_path.get(rel.parent / refs["MarkerFile"]) if "MarkerFile" in refs else None
    _check_brainvision_data(header.path, data_file.path, marker.path if marker else None)
    return tuple(group)
