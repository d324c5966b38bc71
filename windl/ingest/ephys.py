"""Recognise EEG and MEG recordings in an ingest source, by content, and check them.

A recording is one unit even when it is several files: a BrainVision header with its
data and marker files (which it names), a FIF file with its split parts, a CTF ``.ds``
folder. Each is checked before anything is written: BrainVision references must resolve
and its binary data hold whole samples up to its last marker, EDF/BDF sizes must match
their header, FIF files must parse and their chain of tags must end inside the file.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from windl.errors import BadInput
from windl.ingest.sources import SourceFile

_FIF_MAGIC = b"\x00\x00\x00\x64"  # first tag: FIFF_FILE_ID (kind 100), big endian
_EDF_MAGIC = b"0       "
_BDF_MAGIC = b"\xffBIOSEMI"
_VHDR_HEADER = re.compile(rb"^\s*Brain ?Vision Data Exchange Header File", re.IGNORECASE)
_VMRK_HEADER = re.compile(rb"^\s*Brain ?Vision Data Exchange Marker File", re.IGNORECASE)
_FIF_SPLIT = re.compile(r"^(?P<base>.+?)(?:-(?P<n>\d+))?\.fif$", re.IGNORECASE)


@dataclass(frozen=True)
class Recording:
    """One EEG/MEG recording and all the files that belong to it."""

    kind: str  # "eeg" or "meg"
    format: str  # BrainVision, EDF, BDF, FIF, CTF
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
    if channels is None or not channels.isdigit() or int(channels) <= 0 or width is None:
        raise BadInput("BrainVision header has no valid NumberOfChannels and BinaryFormat", vhdr)
    frame = int(channels) * width
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


def find_recordings(files: Sequence[SourceFile]) -> tuple[list[Recording], list[SourceFile]]:
    """Split ``files`` into EEG/MEG recordings and the rest.

    Raises
    ------
    BadInput
        For an incomplete BrainVision set, a truncated EDF/BDF or an unreadable FIF.
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
        if suffix == ".vhdr" and _VHDR_HEADER.match(head):
            refs = _brainvision_refs(source_file.path)
            if "DataFile" not in refs:
                raise BadInput("BrainVision header names no DataFile", source_file.path)
            group = [source_file]
            for key, name in refs.items():
                partner = by_path.get(rel.parent / name)
                if partner is None:
                    raise BadInput(
                        f"incomplete BrainVision recording: header names {key} {name!r}, "
                        "which is not next to it",
                        source_file.path,
                    )
                group.append(partner)
            data_file = by_path[rel.parent / refs["DataFile"]]
            marker = by_path.get(rel.parent / refs["MarkerFile"]) if "MarkerFile" in refs else None
            _check_brainvision_data(
                source_file.path, data_file.path, marker.path if marker else None
            )
            recordings.append(Recording("eeg", "BrainVision", rel.stem, source_file, tuple(group)))
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

    # BrainVision data or marker files that no header claimed
    for rel, source_file in sorted(by_path.items()):
        if rel in used:
            continue
        if rel.suffix.lower() == ".vmrk" and _VMRK_HEADER.match(_head(source_file.path)):
            raise BadInput(
                "incomplete BrainVision recording: marker file without header", source_file.path
            )
        if rel.suffix.lower() == ".eeg" and rel.with_suffix(".vmrk") in by_path:
            raise BadInput(
                "incomplete BrainVision recording: data file without header", source_file.path
            )
    rest = [f for f in files if f.relpath not in used]
    return recordings, rest
