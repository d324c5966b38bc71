"""What a series is, from its DICOM headers, when dcm2niix's BidsGuess is silent.

:func:`series_headers` reads the facts windl decides on from a series' files (the
first file, plus a sample of files for the b-values); :func:`classify` turns them into
a BIDS datatype and suffix, or says why it cannot. The facts are a tuple of
(name, value) pairs, hashable, as heudiconv requires of a ``custom_seqinfo``.

Rules, first match wins (times in ms, as DICOM writes them):

- b-value > 1 s/mm² in any file (standard DiffusionBValue, Siemens (0019,100C), GE
  (0043,1039), Philips (2001,1003), per-frame groups of enhanced files): ``dwi``.
- an EPI readout (ScanningSequence EP, or an EPI sequence name): ``func/bold`` (a
  single volume is renamed ``sbref`` after conversion).
- a field-map name with a phase or magnitude ImageType: ``fmap/phasediff|magnitude``.
- InversionTime ≥ 1200 with EchoTime ≥ 60: ``FLAIR``; other inversion recovery with a
  short echo: ``T1w``; RepetitionTime ≤ 1000 with EchoTime < 30: ``T1w``; EchoTime ≥ 60
  with RepetitionTime ≥ 1500: ``T2w``; a spin echo with a long TR and a short TE:
  ``PDw``; a gradient echo with EchoTime ≥ 15: ``T2starw``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom

Headers = tuple[tuple[str, Any], ...]

#: where each vendor keeps the b-value of a diffusion-weighted image
_BVALUE_TAGS = (
    (0x0018, 0x9087),  # DiffusionBValue (standard; Canon/Toshiba, UIH, new Philips/GE)
    (0x0019, 0x100C),  # Siemens CSA B_value
    (0x2001, 0x1003),  # Philips private diffusion b-factor
    (0x0043, 0x1039),  # GE slop_int_6: b-value (+ 10^9 with some software versions)
)
#: files of a series read for b-values (evenly spaced): enough to meet a weighted volume
_BVALUE_SAMPLE = 48
_EPI_NAME = re.compile(r"epi|ep2d|ep_|fmri|bold", re.IGNORECASE)
_FIELDMAP_NAME = re.compile(r"field|fmap|b0.?map|fm2d|phasediff", re.IGNORECASE)


@dataclass(frozen=True)
class Classified:
    """A BIDS datatype and suffix for a series, or ``None`` and why not."""

    datatype: str | None
    suffix: str
    reason: str


def _read(path: str, full: bool = False) -> pydicom.Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, stop_before_pixels=True, force=full)
        except Exception:  # any unreadable file: no facts from it
            return None


def _groups(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    """The dataset, then its shared and first per-frame functional groups (enhanced DICOM)."""
    found = [ds]
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = ds.get(keyword) or []
        if groups:
            found += [item[0] for item in _sequences(groups[0])]
    return found


def _sequences(group: pydicom.Dataset) -> list[pydicom.Sequence]:
    return [elem.value for elem in group if elem.VR == "SQ" and elem.value]


def _find(ds: pydicom.Dataset, *keywords: str) -> Any:
    """The first of ``keywords`` set in ``ds`` or its functional groups."""
    for group in _groups(ds):
        for keyword in keywords:
            value = group.get(keyword)
            if value not in (None, ""):
                return value
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value[0] if isinstance(value, (list, pydicom.multival.MultiValue)) else value)
    except (TypeError, ValueError, IndexError):
        return None


def _bvalue_of(ds: pydicom.Dataset) -> float | None:
    """The b-value one classic file declares, by any vendor's tag."""
    for tag in _BVALUE_TAGS:
        if tag in ds:
            value = _number(ds[tag].value)
            if value is not None:
                return value % 1e9 if tag == (0x0043, 0x1039) else value
    return None


def _frame_bvalues(ds: pydicom.Dataset) -> list[float]:
    """b-values of the frames of an enhanced multi-frame file."""
    values = []
    for frame in ds.get("PerFrameFunctionalGroupsSequence") or []:
        for item in frame.get("MRDiffusionSequence") or []:
            value = _number(item.get("DiffusionBValue"))
            if value is not None:
                values.append(value)
    return values


def max_bvalue(files: list[str], first: pydicom.Dataset) -> float:
    """The largest b-value of a series (0 when it declares none).

    Only a sample of the files is read: a diffusion series interleaves weighted volumes
    with few b=0 ones, so an even sample meets one.
    """
    frames = _frame_bvalues(first)
    if frames:
        return max(frames)
    # not only the first file: Canon/Toshiba write no b-value tag into b=0 images
    step = max(1, len(files) // _BVALUE_SAMPLE)
    best = 0.0
    for path in sorted(files)[::step]:
        ds = _read(path)
        value = _bvalue_of(ds) if ds is not None else None
        best = max(best, value or 0.0)
        if best > 1:
            break
    return best


def _text(value: Any) -> str:
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value or "")


def series_headers(files: list[str]) -> Headers:
    """The facts :func:`classify` decides on, read from a series' files."""
    first = next((ds for ds in map(_read, sorted(files)[:1]) if ds is not None), None)
    if first is None:
        return ()
    facts: dict[str, Any] = {
        "modality": _text(first.get("Modality")),
        "image_type": _text(_find(first, "ImageType", "FrameType")),
        "scanning_sequence": _text(_find(first, "ScanningSequence", "EchoPulseSequence")),
        "sequence_variant": _text(_find(first, "SequenceVariant")),
        "sequence_name": _text(_find(first, "SequenceName", "PulseSequenceName")),
        "acquisition": _text(_find(first, "MRAcquisitionType")),
        "echo_time": _number(_find(first, "EchoTime", "EffectiveEchoTime")),
        "repetition_time": _number(_find(first, "RepetitionTime")),
        "inversion_time": _number(_find(first, "InversionTime", "InversionTimes")),
        "description": _text(first.get("SeriesDescription") or first.get("ProtocolName")),
        "bvalue": max_bvalue(files, first),
    }
    return tuple(facts.items())


def headers_of_folder(folder: Path) -> Headers:
    """:func:`series_headers` of every file in ``folder`` (one series)."""
    return series_headers([str(p) for p in sorted(folder.iterdir()) if p.is_file()])


def _times(facts: dict[str, Any]) -> str:
    parts = [
        f"{name} {facts[key]:g}"
        for name, key in (("TR", "repetition_time"), ("TE", "echo_time"), ("TI", "inversion_time"))
        if facts.get(key) is not None
    ]
    return ", ".join(parts) or "no TR/TE"


def _anat(facts: dict[str, Any]) -> str | None:
    """The anatomical contrast the timing says, or None."""
    te, tr, ti = (facts.get(k) for k in ("echo_time", "repetition_time", "inversion_time"))
    sequence = facts.get("scanning_sequence", "").upper()
    if te is None or tr is None:
        return None
    if ti and ti >= 1200 and te >= 60:
        return "FLAIR"
    if ti and 300 <= ti < 1500 and te < 15:
        return "T1w"
    if tr <= 1000 and te < 30:
        return "T1w"
    if te >= 60 and tr >= 1500:
        return "T2w"
    if "SE" in sequence and tr >= 1500 and te < 45:
        return "PDw"
    if "GR" in sequence and te >= 15:
        return "T2starw"
    return None


def classify(headers: Headers) -> Classified:
    """BIDS datatype and suffix of a series from its header facts (rules: module doc)."""
    facts = dict(headers)
    if not facts:
        return Classified(None, "", "headers unreadable by pydicom")
    image_type = facts.get("image_type", "").upper().split("\\")
    sequence = facts.get("scanning_sequence", "").upper()
    name = f"{facts.get('sequence_name', '')} {facts.get('description', '')}"
    if (facts.get("bvalue") or 0) > 1:
        return Classified("dwi", "dwi", f"b-values up to {facts['bvalue']:g} s/mm²")
    if "EP" in sequence.split("\\") or _EPI_NAME.search(facts.get("sequence_name", "")):
        return Classified("func", "bold", f"EPI without diffusion weighting ({_times(facts)})")
    if _FIELDMAP_NAME.search(name):
        phase = bool({"P", "PHASE"} & set(image_type))
        suffix = "phasediff" if phase else "magnitude"
        return Classified("fmap", suffix, f"field-map name, {'phase' if phase else 'magnitude'}")
    if {"P", "PHASE"} & set(image_type):
        return Classified(
            None, "", "a phase image that is no field map: give it a ReproIn name to convert it"
        )
    contrast = _anat(facts)
    if contrast:
        return Classified("anat", contrast, f"{contrast} from {_times(facts)}")
    return Classified(
        None,
        "",
        f"contrast not recognised from the headers ({_times(facts)}, ScanningSequence "
        f"{sequence or '?'}): give the series a ReproIn name (e.g. anat-T1w) or a study "
        "heuristic (code/heuristic.py)",
    )
