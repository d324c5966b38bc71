"""Pixels that may show text: which images are suspect, OCR of their pixels, region blanking.

An image is *pixel-suspect* when its header says or suggests that text may be drawn into
its pixels (PS3.15 E.1.1 item 6 leaves burned-in text to the de-identifier):

* ``BurnedInAnnotation`` is ``YES``;
* it is of a kind that carries text whatever the flag says (absent or ``NO``): Modality
  SC, OT, DOC, SR; a secondary capture, screen, dose report, PDF or SR SOP class;
  ``ImageType`` with DERIVED and SECONDARY; a ``ConversionType``;
* it is not an acquisition: ``ImageType`` does not start with ORIGINAL (or is absent).

A suspect series is released only if (a) OCR of its pixels (Debian's ``tesseract`` CLI on
PNG renderings of its frames, every frame up to ``ocr_images``, an even sample beyond)
finds no word of at least three letters or digits with at least ``ocr_confidence``, or
(b) the study declares a blanking rule for its scanner model and series in
``code/study.toml``, as CTP's DicomPixelAnonymizer does; then the rule's rectangles are
zeroed in every frame (DICOM) and in the matching voxels of the NIfTI, and the blanked
pixels are what is released::

    [deid.pixels]
    ocr_confidence = 80        # tesseract word confidence (0-100) that counts as text
    ocr_images = 32            # frames OCR'd per series (evenly sampled beyond)

    [[deid.pixels.blank]]
    model = "DISCOVERY MR750"  # ManufacturerModelName (case-insensitive full match, regex)
    series = "(?i)screen"      # SeriesDescription regex (search)
    rectangles = [[0, 0, 64, 12]]  # x (column), y (row), width, height, in DICOM pixels

Words made only of ``0``/``O``/``o`` are not counted as text: round structures (phantoms,
vessels in cross-section) are read as such by OCR; a word of that form identifies nobody.
Nothing here ever returns or logs a recognised word in a reason: reasons name the file
and the rule, never the value.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from windl.errors import ConfigError, WindlError

#: Modality values of objects that carry text (PS3.3 C.7.3.1.1.1)
TEXT_MODALITIES = frozenset({"SC", "OT", "DOC", "SR", "KO", "PR"})

#: SOP classes whose images are screens, captures, reports or documents
TEXT_SOP_CLASSES: Mapping[str, str] = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA",
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.68": "Radiopharmaceutical Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.11.1": "Grayscale Softcopy Presentation State",
}

DEFAULT_CONFIDENCE = 80.0
DEFAULT_IMAGES = 32
#: shortest side of a rendering handed to tesseract (small MR matrices are upscaled)
_RENDER_SIDE = 800
_WORD = re.compile(r"[A-Za-z0-9]")
_ROUND_ONLY = re.compile(r"[0Oo]+")


class PixelCheckUnavailable(WindlError):
    """The OCR the pixel check needs (``tesseract``) is not installed."""


@dataclass(frozen=True)
class BlankingRule:
    """A study's rule: rectangles zeroed in the series of one scanner model.

    Attributes
    ----------
    model : str
        ``ManufacturerModelName``, a regex matched in full, case-insensitively.
    series : str
        ``SeriesDescription`` regex (searched).
    rectangles : tuple of (x, y, width, height)
        In DICOM pixels: x is the column, y the row of the top-left corner.
    """

    model: str
    series: str
    rectangles: tuple[tuple[int, int, int, int], ...]

    def matches(self, ds: Dataset) -> bool:
        """True if ``ds`` is of the rule's scanner model and series."""
        model = str(ds.get("ManufacturerModelName", "") or "").strip()
        description = str(ds.get("SeriesDescription", "") or "")
        return bool(
            re.fullmatch(self.model, model, re.IGNORECASE) and re.search(self.series, description)
        )


@dataclass(frozen=True)
class PixelPolicy:
    """``[deid.pixels]`` of a study: OCR thresholds and blanking rules."""

    confidence: float = DEFAULT_CONFIDENCE
    images: int = DEFAULT_IMAGES
    rules: tuple[BlankingRule, ...] = ()

    @classmethod
    def from_dict(cls, table: Mapping[str, Any] | None) -> PixelPolicy:
        """Read ``[deid.pixels]`` (``None``: the defaults, no rule).

        Raises
        ------
        ConfigError
            On an unknown key, a bad regex or a rectangle that is not four integers.
        """
        table = dict(table or {})
        unknown = sorted(set(table) - {"ocr_confidence", "ocr_images", "blank"})
        if unknown:
            raise ConfigError(f"[deid.pixels]: unknown key(s) {', '.join(unknown)}")
        confidence = table.get("ocr_confidence", DEFAULT_CONFIDENCE)
        images = table.get("ocr_images", DEFAULT_IMAGES)
        if not isinstance(confidence, int | float) or not 0 <= confidence <= 100:
            raise ConfigError("[deid.pixels] ocr_confidence must be a number from 0 to 100")
        if not isinstance(images, int) or images < 1:
            raise ConfigError("[deid.pixels] ocr_images must be a positive integer")
        rules = tuple(_rule(entry) for entry in table.get("blank", []) or [])
        return cls(float(confidence), images, rules)

    def rule_for(self, ds: Dataset) -> BlankingRule | None:
        """The first blanking rule that matches ``ds``, or ``None``."""
        return next((rule for rule in self.rules if rule.matches(ds)), None)


def _rule(entry: Any) -> BlankingRule:
    if not isinstance(entry, Mapping) or set(entry) - {"model", "series", "rectangles"}:
        raise ConfigError("[[deid.pixels.blank]] needs model, series and rectangles only")
    model, series = entry.get("model"), entry.get("series", ".*")
    rects = entry.get("rectangles")
    if not isinstance(model, str) or not isinstance(series, str):
        raise ConfigError("[[deid.pixels.blank]] model and series must be text")
    for pattern in (model, series):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"[[deid.pixels.blank]] bad regex {pattern!r}: {exc}") from None
    if (
        not isinstance(rects, list)
        or not rects
        or not all(
            isinstance(r, list) and len(r) == 4 and all(isinstance(v, int) and v >= 0 for v in r)
            for r in rects
        )
    ):
        raise ConfigError(
            "[[deid.pixels.blank]] rectangles must be [[x, y, width, height], ...] (integers)"
        )
    return BlankingRule(model, series, tuple((r[0], r[1], r[2], r[3]) for r in rects))


# --- which images are suspect -------------------------------------------------------------


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip().upper() for v in value.split("\\")]
    try:
        return [str(v).strip().upper() for v in value]
    except TypeError:
        return [str(value).strip().upper()]


def suspect_reason(ds: Dataset) -> str | None:
    """Why the pixels of ``ds`` may show text, or ``None`` for a plain acquisition.

    Parameters
    ----------
    ds : pydicom.Dataset
        A DICOM header (pixel data need not be read).

    Returns
    -------
    str or None
        A reason naming the attribute (never its free-text value), or ``None``.
    """
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        return "BurnedInAnnotation is YES"
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in TEXT_MODALITIES:
        return f"Modality {modality} carries text"
    sop_class = str(ds.get("SOPClassUID", "") or "").strip()
    if sop_class in TEXT_SOP_CLASSES:
        return f"SOP class {TEXT_SOP_CLASSES[sop_class]} carries text"
    image_type = _values(ds, "ImageType")
    if "DERIVED" in image_type and "SECONDARY" in image_type:
        return "ImageType is DERIVED\\SECONDARY"
    if str(ds.get("ConversionType", "") or "").strip():
        return "ConversionType is present (a converted or captured image)"
    if not image_type or image_type[0] != "ORIGINAL":
        return "ImageType is not ORIGINAL (not an acquisition)"
    return None


def sidecar_suspect_reason(sidecar: Mapping[str, Any]) -> str | None:
    """As :func:`suspect_reason`, for a NIfTI's JSON sidecar (what dcm2niix carried over).

    A sidecar without ``ImageType`` (e.g. imported data) is not suspect here: what
    dcm2niix does not record cannot be judged from the sidecar.
    """
    modality = str(sidecar.get("Modality", "MR") or "MR").strip().upper()
    if modality != "MR":
        return f"Modality {modality} is not MR"
    image_type = sidecar.get("ImageType")
    if image_type is None:
        return None
    values = [
        str(v).upper() for v in (image_type if isinstance(image_type, list) else [image_type])
    ]
    if "DERIVED" in values and "SECONDARY" in values:
        return "ImageType is DERIVED\\SECONDARY"
    if not values or values[0] != "ORIGINAL":
        return "ImageType is not ORIGINAL (not an acquisition)"
    if sidecar.get("ConversionType"):
        return "ConversionType is present"
    return None


# --- OCR ----------------------------------------------------------------------------------


def _tesseract() -> str:
    found = shutil.which("tesseract")
    if found is None:
        raise PixelCheckUnavailable(
            "the pixel check needs Debian's tesseract-ocr (apt-get install tesseract-ocr)"
        )
    return found


def frames(ds: Dataset) -> Iterator[np.ndarray]:
    """The 2D grey-level frames of a DICOM image (colour averaged), in file order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = np.asarray(ds.pixel_array)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        array = array.mean(axis=-1)
    if array.ndim == 2:
        yield array
    else:
        yield from array.reshape((-1, *array.shape[-2:]))


def _render(image: np.ndarray, path: Path) -> None:
    """A PNG tesseract reads well: contrast-stretched, dark text on light, upscaled."""
    from PIL import Image, ImageOps

    values = np.asarray(image, dtype=float)
    lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    grey = np.clip((values - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    picture = Image.fromarray(grey)
    scale = max(1, int(np.ceil(_RENDER_SIDE / max(1, min(grey.shape)))))
    if scale > 1:
        picture = picture.resize(
            (grey.shape[1] * scale, grey.shape[0] * scale), Image.Resampling.LANCZOS
        )
    picture = ImageOps.expand(ImageOps.invert(picture), border=20, fill=255)
    picture.save(path)


def recognised_words(image: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> list[str]:
    """Words tesseract reads in ``image`` that count as text (see the module docstring).

    Parameters
    ----------
    image : numpy.ndarray
        A 2D frame.
    confidence : float
        Lowest tesseract word confidence that counts.

    Returns
    -------
    list of str
        The words (for tests and the operator's own review; never put them in a finding).
    """
    tesseract = _tesseract()
    with tempfile.TemporaryDirectory(prefix="windl-ocr-") as tmp:
        png = Path(tmp) / "frame.png"
        _render(image, png)
        proc = subprocess.run(
            [tesseract, str(png), "stdout", "--psm", "11", "tsv"],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise PixelCheckUnavailable(f"tesseract failed (exit {proc.returncode})")
    words = []
    for line in proc.stdout.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) != 12:
            continue
        try:
            conf = float(cells[10])
        except ValueError:
            continue
        word = cells[11].strip()
        core = "".join(_WORD.findall(word))
        if conf >= confidence and len(core) >= 3 and not _ROUND_ONLY.fullmatch(core):
            words.append(word)
    return words


def sample(items: Sequence[Any], bound: int) -> list[Any]:
    """All of ``items`` up to ``bound``, else ``bound`` of them evenly spaced (ends kept)."""
    if len(items) <= bound:
        return list(items)
    picks = np.linspace(0, len(items) - 1, bound).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def images_show_text(images: Iterable[np.ndarray], policy: PixelPolicy) -> bool:
    """True as soon as OCR finds text in one of ``images``."""
    return any(recognised_words(image, policy.confidence) for image in images)


def read_header(path: Path, *, pixels: bool = False) -> Dataset:
    """A DICOM file's dataset (without pixel data unless ``pixels``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, stop_before_pixels=not pixels, force=True)


def series_frames(files: Sequence[Path], bound: int) -> Iterator[np.ndarray]:
    """At most ``bound`` frames of a series' files (an even sample across them)."""
    per_file = [(path, i) for path in files for i in range(_frame_count(path))]
    by_file: dict[Path, list[int]] = {}
    for path, index in sample(per_file, bound):
        by_file.setdefault(path, []).append(index)
    for path, wanted in by_file.items():
        ds = read_header(path, pixels=True)
        if "PixelData" not in ds and "FloatPixelData" not in ds:
            continue
        for index, frame in enumerate(frames(ds)):
            if index in wanted:
                yield frame


def _frame_count(path: Path) -> int:
    ds = read_header(path)
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


# --- verdicts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the pixel check decided for one series.

    Attributes
    ----------
    release : bool
        Whether its files may be released.
    reason : str
        Why (names attributes and rules, never a value); empty for a plain acquisition.
    rule : BlankingRule or None
        The study's rule whose rectangles are zeroed before release, if any.
    """

    release: bool
    reason: str = ""
    rule: BlankingRule | None = None


def review_series(files: Sequence[Path], policy: PixelPolicy) -> Verdict:
    """Decide whether the pixels of a DICOM series may leave (see the module docstring).

    Parameters
    ----------
    files : sequence of Path
        The series' DICOM files (their content present).
    policy : PixelPolicy
        The study's ``[deid.pixels]``.

    Returns
    -------
    Verdict
    """
    headers = [read_header(path) for path in files]
    reasons = [r for r in (suspect_reason(ds) for ds in headers) if r]
    if not reasons:
        return Verdict(True)
    reason = reasons[0]
    rule = policy.rule_for(headers[0])
    if rule is not None and all(rule.matches(ds) for ds in headers):
        return Verdict(True, f"pixel-suspect ({reason}); blanked by a [deid.pixels] rule", rule)
    if images_show_text(series_frames(files, policy.images), policy):
        return Verdict(False, f"pixel-suspect ({reason}) and OCR found text in its pixels")
    return Verdict(True, f"pixel-suspect ({reason}); OCR found no text")


# --- blanking -----------------------------------------------------------------------------


def blank_array(array: np.ndarray, rectangles: Iterable[tuple[int, int, int, int]]) -> None:
    """Zero ``rectangles`` (x, y, width, height) in the last two axes (rows, columns)."""
    for x, y, width, height in rectangles:
        array[..., y : y + height, x : x + width] = 0


def blank_dataset(ds: Dataset, rectangles: Iterable[tuple[int, int, int, int]]) -> None:
    """Zero ``rectangles`` in every frame of ``ds``; the pixels are stored uncompressed.

    ``BurnedInAnnotation`` becomes ``NO``: what the study declared as text is gone.
    """
    from pydicom.uid import ExplicitVRLittleEndian

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = np.array(ds.pixel_array)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        moved = np.moveaxis(array, -1, 0)  # rows and columns last
        blank_array(moved, rectangles)
        array = np.moveaxis(moved, 0, -1)
    else:
        blank_array(array, rectangles)
    syntax = ds.file_meta.TransferSyntaxUID if getattr(ds, "file_meta", None) else None
    if syntax is not None and syntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if samples > 1:
            ds.PlanarConfiguration = 0
            ds.PhotometricInterpretation = "RGB"
    ds.PixelData = array.astype(array.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 16)) > 8 else "OB"
    ds.BurnedInAnnotation = "NO"


@dataclass(frozen=True)
class Blanking:
    """A rule's rectangles with the header that maps them into a NIfTI's voxels."""

    rectangles: tuple[tuple[int, int, int, int], ...]
    header: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, rule: BlankingRule, ds: Dataset) -> Blanking:
        """The rule's rectangles, with the geometry of the series' header ``ds``."""
        geometry = {
            "ImagePositionPatient": [float(v) for v in ds.get("ImagePositionPatient", []) or []],
            "ImageOrientationPatient": [
                float(v) for v in ds.get("ImageOrientationPatient", []) or []
            ],
            "PixelSpacing": [float(v) for v in ds.get("PixelSpacing", []) or []],
            "Rows": int(ds.get("Rows", 0) or 0),
            "Columns": int(ds.get("Columns", 0) or 0),
            "Mosaic": "MOSAIC" in _values(ds, "ImageType"),
        }
        return cls(rule.rectangles, geometry)


class BlankingUnmappable(WindlError):
    """A blanking rule's rectangles cannot be placed in the NIfTI made from the series."""


def _voxel_boxes(blanking: Blanking, affine: np.ndarray, shape: Sequence[int]) -> list[tuple]:
    """Index boxes (one slice per axis) of the NIfTI voxels under each rectangle."""
    geo = blanking.header
    ipp, iop, spacing = (
        geo.get("ImagePositionPatient"),
        geo.get("ImageOrientationPatient"),
        geo.get("PixelSpacing"),
    )
    if geo.get("Mosaic") or not (ipp and len(iop or []) == 6 and len(spacing or []) == 2):
        raise BlankingUnmappable("no single-frame geometry (mosaic or no position/orientation)")
    along_row, along_column = np.array(iop[:3]), np.array(iop[3:])
    to_voxel = np.linalg.inv(affine)
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    boxes = []
    for x, y, width, height in blanking.rectangles:
        corners = []
        for col, row in ((x, y), (x + width - 1, y + height - 1)):
            lps = np.array(ipp) + col * spacing[1] * along_row + row * spacing[0] * along_column
            corners.append((to_voxel @ np.append(lps * lps_to_ras, 1.0))[:3])
        low, high = np.minimum(*corners), np.maximum(*corners)
        in_plane = [axis for axis in range(3) if high[axis] - low[axis] > 0.5]
        if width > 1 and height > 1 and len(in_plane) != 2:
            raise BlankingUnmappable("the rectangle is not in a plane of the NIfTI's voxel grid")
        box = []
        for axis in range(3):
            if axis in in_plane or high[axis] - low[axis] > 0.5:
                start = max(0, int(np.floor(low[axis] + 0.5)))
                stop = min(int(shape[axis]), int(np.floor(high[axis] + 0.5)) + 1)
                box.append(slice(start, stop))
            else:
                box.append(slice(None))  # the slice axis: every slice of the series
        boxes.append(tuple(box))
    return boxes


def blank_nifti(src: Path, dst: Path, blanking: Blanking) -> Path:
    """Copy a NIfTI with the voxels under ``blanking``'s rectangles set to 0 (every volume).

    The rectangles (DICOM pixels) are placed with the DICOM header's position,
    orientation and spacing and the NIfTI's affine, so the result does not depend on how
    the converter ordered rows and slices. The stored values are zeroed; the header and
    every other byte are kept. A ``.gz`` output has mtime 0 and no name.

    Raises
    ------
    BlankingUnmappable
        If the rectangles cannot be placed (mosaics, missing geometry): nothing is written.
    """
    import nibabel as nib

    raw = Path(src).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    buffer = bytearray(raw)
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(buffer[:348])), check=False)
    shape = header.get_data_shape()
    offset = int(header["vox_offset"])
    data = np.ndarray(shape, header.get_data_dtype(), buffer=buffer, offset=offset, order="F")
    for box in _voxel_boxes(blanking, header.get_best_affine(), shape[:3]):
        data[box] = 0
    out = bytes(buffer)
    if Path(dst).name.endswith(".gz"):
        stream = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=stream, mtime=0) as gz:
            gz.write(out)
        out = stream.getvalue()
    from windl.files import atomic_write

    atomic_write(Path(dst), lambda fh: fh.write(out))
    return Path(dst)


def nifti_show_text(path: Path, policy: PixelPolicy) -> bool:
    """OCR of a NIfTI's slices (third voxel axis, first volume; sampled): True on text."""
    import nibabel as nib

    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)
    while data.ndim > 3:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    slices = sample(range(data.shape[2]), policy.images)
    # NIfTI rows run along the first axis: transpose so text reads left to right
    return images_show_text((np.asarray(data[:, :, k]).T[::-1] for k in slices), policy)
