"""Recognise EEG and MEG recordings in an ingest source, by content, and check them.

A recording is one unit even when it is several files: a BrainVision header with its
data and marker files (which it names), a FIF file with its split parts, a CTF ``.ds``
folder. Each is checked before anything is written: BrainVision references must resolve,
EDF/BDF sizes must match their header, FIF files must parse.
"""

from __future__ import annotations

import re
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
        except ValueError:
            raise BadInput(f"not a valid {what} header", path) from None
    record = sum(samples) * (3 if bdf else 2)
    if header_bytes != 256 * (n_signals + 1) or record <= 0:
        raise BadInput(f"not a valid {what} header", path)
    expected = header_bytes + n_records * record
    if n_records > 0 and size < expected:
        raise BadInput(f"truncated {what}: {size} of {expected} bytes", path)
    if n_records <= 0 and (size - header_bytes) % record:
        raise BadInput(f"truncated {what}: data is not a whole number of records", path)


def _fif_kind(path: Path) -> str:
    """Open a FIF file's tag directory (detects damage) and say whether it holds MEG."""
    import mne

    try:
        info = mne.io.read_info(path, verbose="error")
    except Exception as exc:  # mne raises many types for damaged files
        detail = " ".join(str(exc).split())[:160]
        raise BadInput(f"unreadable FIF ({type(exc).__name__}: {detail})", path) from None
    has_meg = len(mne.pick_types(info, meg=True, ref_meg=False, exclude=[])) > 0
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
