"""Recognise DICOM by content and check that a file can be stored and converted."""

from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import BytesLengthException, InvalidDicomError

from windl.errors import BadInput

logging.getLogger("pydicom").setLevel(logging.ERROR)

#: names that promise DICOM content: a file so named that is not DICOM is an error
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".ima"})

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_TRAILING_PADDING = b"\xfc\xff\xfc\xff"  # (FFFC,FFFC) DataSetTrailingPadding

#: transfer syntaxes dcm2niix decodes (built with OpenJPEG and CharLS), by UID
CONVERTIBLE_TRANSFER_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline (lossy)",
    "1.2.840.10008.1.2.4.51": "JPEG Extended (lossy)",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
}


@dataclass(frozen=True)
class DicomInfo:
    """What ingest needs from one DICOM file's header."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    series_number: int | None
    series_description: str
    modality: str
    transfer_syntax: str
    is_image: bool


def has_dicom_magic(path: Path) -> bool:
    """True if the file has the 128-byte preamble followed by ``DICM`` (PS3.10)."""
    with path.open("rb") as fh:
        fh.seek(128)
        return fh.read(4) == b"DICM"


def _encapsulated_ends(raw: bytes) -> bool:
    """True if encapsulated pixel data ends with its sequence delimiter.

    At the end of the file, or followed only by DataSetTrailingPadding (as in pydicom's
    own JPEG-LS and JPEG 2000 test files).
    """
    if raw.endswith(_SEQUENCE_DELIMITER):
        return True
    end = raw.rfind(_SEQUENCE_DELIMITER + _TRAILING_PADDING)
    return end != -1 and raw.rfind(_SEQUENCE_DELIMITER, end + 8) == -1


def _check_pixel_data(ds: pydicom.Dataset, raw: bytes, path: Path) -> None:
    """Refuse files whose pixel data ends early (pydicom itself reads them silently)."""
    for keyword in _PIXEL_TAGS:
        if keyword not in ds:
            continue
        elem = ds.get_item(keyword)  # still raw after dcmread: declared length is kept
        declared = getattr(elem, "length", None)
        if declared == 0xFFFFFFFF:
            if not _encapsulated_ends(raw):
                raise BadInput("truncated DICOM: encapsulated pixel data has no end", path)
        elif declared and elem.value is not None and len(elem.value) < declared:
            raise BadInput(
                f"truncated DICOM: pixel data has {len(elem.value)} of {declared} bytes", path
            )


#: what pydicom raises on damaged bytes (it never wraps them in one type)
_PARSE_ERRORS = (
    InvalidDicomError,
    BytesLengthException,
    EOFError,
    ValueError,
    OSError,
    KeyError,
    TypeError,
    IndexError,
    struct.error,
    NotImplementedError,  # an unknown value representation (found by fuzzing, issue 22)
)


def _short_element(ds: pydicom.Dataset) -> str | None:
    """The first element whose value ends before its declared length (a cut-off file).

    pydicom returns whatever bytes are left for the last element of a truncated file
    instead of raising, so the declared and the read length are compared here.
    """
    for tag in list(ds.keys()):  # keys, not elements: iterating would convert them
        elem = ds.get_item(tag)
        if not isinstance(elem, RawDataElement) or elem.length == 0xFFFFFFFF:
            continue
        if elem.value is not None and len(elem.value) < elem.length:
            name = pydicom.datadict.keyword_for_tag(tag) or str(elem.tag)
            return f"{name} has {len(elem.value)} of {elem.length} bytes"
    return None


def _sop_class_name(uid: str) -> str:
    name = pydicom.uid.UID(uid).name
    return name if name != uid else ""


def read_dicom(path: Path) -> DicomInfo | None:
    """Return header facts of a DICOM file, ``None`` if the file is not DICOM.

    Raises
    ------
    BadInput
        If the file is DICOM but unusable (truncated, missing UIDs, a transfer syntax
        dcm2niix cannot decode), or is named like DICOM but is not.
    """
    if not has_dicom_magic(path):
        if path.suffix.lower() in DICOM_SUFFIXES:
            raise BadInput("not a DICOM file (no 'DICM' marker after the 128-byte preamble)", path)
        return None
    # pydicom warns (to stderr) about values of damaged files; the error says it all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _read_dicom(path)
        except BadInput:
            raise
        except _PARSE_ERRORS as exc:
            # a header cut inside a tag, length or value, or a value of the wrong size
            reason = str(exc).splitlines()[0].split(". ")[0] if str(exc) else ""
            raise BadInput(f"unreadable DICOM ({type(exc).__name__}: {reason})", path) from None
        except AttributeError as exc:
            # an OB/OW element (PixelData) whose VR depends on a BitsAllocated the file lacks:
            # pydicom raises AttributeError (found by fuzzing); any other one is a bug
            if "ambiguous VR" not in str(exc):
                raise
            raise BadInput(f"unreadable DICOM ({str(exc).splitlines()[0]})", path) from None


#: Media Storage Directory (a DICOMDIR): an index of a CD's files, no series of its own
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


def _read_dicom(path: Path) -> DicomInfo | None:
    raw = path.read_bytes()
    ds = pydicom.dcmread(io.BytesIO(raw))
    if str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "")) == _DICOMDIR_CLASS:
        return None  # kept with the other files under misc/
    if short := _short_element(ds):
        raise BadInput(f"truncated DICOM: {short}", path)
    missing = [
        kw
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
        if not ds.get(kw)
    ]
    if missing:
        raise BadInput(f"DICOM without {', '.join(missing)}", path)
    transfer_syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    is_image = any(kw in ds for kw in _PIXEL_TAGS)
    sop_class = _sop_class_name(str(ds.SOPClassUID))
    if not is_image and "Image Storage" in sop_class:
        # the file ends exactly between two elements, before the pixel data
        raise BadInput(
            f"truncated DICOM: {sop_class} file without pixel data (ends after {len(raw)} bytes)",
            path,
        )
    if is_image:
        if transfer_syntax not in CONVERTIBLE_TRANSFER_SYNTAXES:
            name = pydicom.uid.UID(transfer_syntax).name if transfer_syntax else "missing"
            raise BadInput(
                f"transfer syntax {transfer_syntax or '?'} ({name}) cannot be converted by "
                "dcm2niix; ask the sender for Explicit VR Little Endian or a lossless JPEG",
                path,
            )
        try:
            _check_pixel_data(ds, raw, path)
        except (ValueError, TypeError) as exc:
            raise BadInput(f"unreadable pixel data ({exc})", path) from None
    number = ds.get("SeriesNumber")
    return DicomInfo(
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        series_number=int(number) if number not in (None, "") else None,
        series_description=str(ds.get("SeriesDescription", "") or ds.get("ProtocolName", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        transfer_syntax=transfer_syntax,
        is_image=is_image,
    )
