"""Defacing of anatomical images that show a face (T1w, T2w, FLAIR, PD, ...).

pydeface 2.1 registers its template head to the image with FSL ``flirt`` and zeroes the
voxels under its face mask. FSL cannot be installed here, so windl reuses pydeface's data
only -- the template ``data/mean_reg2mean.nii.gz`` and the face mask ``data/facemask.nii.gz``
of the PyPI package ``pydeface==2.1.0`` -- and replaces ``flirt`` by SimpleITK:

1. the image (first volume if 4D) and the template are block-averaged to about
   :attr:`RegistrationSettings.resolution_mm` (integer factors per axis, so the grids stay
   exact and no full-resolution float copy of the image is made);
2. an affine (12 degrees of freedom, like flirt's default) Mattes mutual-information
   registration of the template (moving) to the image (fixed): centre-of-mass
   initialisation, a two-level pyramid, random sampling with a fixed seed, regular-step
   gradient descent, one thread (with more, ITK's sums vary in their last bits from run
   to run, and so would the output);
3. the face mask is mapped into the image grid with that transform (trilinear, threshold
   0.5; outside the template's field of view the mask is extended from its nearest edge,
   so a chin or nose tip beyond the template is still covered);
4. exactly the voxels under the mapped face are set to 0; everything else -- the header
   with its extensions, affine and dtype, every other voxel -- is copied byte for byte;
   ``.nii.gz`` is written with gzip ``mtime=0`` and no file name, so the same input
   always gives the same bytes.

The transform is kept in the :class:`DefaceRecord` as a 4x4 matrix in nibabel's world
coordinates (RAS+ mm): it maps a point of the image to the template. :func:`face_check`
maps the face mask again from that matrix alone (no registration engine needed) and
reports which fraction of it is zero -- the release audit uses it.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from windl.errors import BadInput, WindlError

try:
    __version__ = version("windl")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0"

TOOL = "windl.deid.deface"
ENGINE = "SimpleITK"
TEMPLATE_PACKAGE = "pydeface"
TEMPLATE_FILE = "data/mean_reg2mean.nii.gz"
FACE_MASK_FILE = "data/facemask.nii.gz"

#: BIDS suffixes of images that show the face (whole-head anatomical images and maps).
#: Not included: brain-masked derived maps (Chimap, MWFmap, MTVmap: a head template does
#: not register to them), masks/segmentations (defacemask, mask, dseg, probseg), and the
#: low-resolution series of other datatypes (bold, dwi, fieldmaps), which windl, like
#: common practice, does not deface.
FACE_SUFFIXES = frozenset(
    {
        # non-parametric structural images
        "T1w",
        "T2w",
        "PDw",
        "T2starw",
        "FLAIR",
        "inplaneT1",
        "inplaneT2",
        "PDT2",
        "angio",
        "T2star",  # deprecated
        "FLASH",  # deprecated
        "PD",  # deprecated
        # parametric maps that cover the whole head
        "T1map",
        "T2map",
        "T2starmap",
        "R1map",
        "R2map",
        "R2starmap",
        "PDmap",
        "M0map",
        "S0map",
        "UNIT1",
        "MTRmap",
        "MTsat",
        "T1rho",
        # quantitative-MRI file collections (each image is a whole head)
        "MP2RAGE",
        "MPM",
        "MTS",
        "MTR",
        "VFA",
        "IRT1",
        "MESE",
        "MEGRE",
    }
)

#: Plausible scale factors (singular values) of the image-to-template matrix: adult and
#: child heads differ from the template by far less; outside this, the registration failed.
PLAUSIBLE_SCALES = (0.67, 1.5)

_NIFTI_EXTENSIONS = (".nii.gz", ".nii")
_GZIP_LEVEL = 6  # gzip's own default: 1.3 s and 10.1 MB here (level 9: 9.4 s, 10.0 MB)
_MAP_CHUNK_VOXELS = 1 << 21  # voxels per slab when mapping or reading the mask
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class DefaceFailed(WindlError):
    """The template did not register plausibly to the image (nothing is written)."""


@dataclass(frozen=True)
class RegistrationSettings:
    """Parameters of the template-to-image registration (all of them go into the record).

    Chosen on the pydeface test image against a full-resolution reference registration
    (SimpleITK, 50 % sampling, three levels, 513 s): over the head the defaults stay within
    0.42 mm (mean) / 0.89 mm (max) of it, in ~1.8 s of one core; antspyx's default affine
    registration differs from that reference by 0.53 / 1.26 mm. Numbers for the
    alternatives: ``benchmarks/bench_deface.py``.
    """

    resolution_mm: float = 3.0
    shrink_factors: tuple[int, ...] = (2, 1)
    smoothing_sigmas_mm: tuple[float, ...] = (3.0, 0.0)
    histogram_bins: int = 32
    sampling_fraction: float = 0.25
    sampling_seed: int = 20251109
    learning_rate: float = 2.0
    min_step: float = 5e-3
    relaxation_factor: float = 0.5
    max_iterations: int = 200
    threads: int = 1


@dataclass(frozen=True)
class TemplateFile:
    """A file of pydeface's data used for defacing, pinned by its hash."""

    package: str
    package_version: str
    path: str
    sha256: str


@dataclass(frozen=True)
class AffineTransform:
    """The registration result.

    ``matrix`` maps a point of the image (nibabel world coordinates, RAS+ mm) to the
    template; ``engine_parameters`` and ``engine_fixed_parameters`` are the same transform as
    the engine reports it (SimpleITK ``AffineTransform``: 9 matrix entries + translation,
    and the centre; LPS mm, image = fixed, template = moving).
    """

    matrix: list[list[float]]
    engine_parameters: list[float]
    engine_fixed_parameters: list[float]
    metric_value: float
    iterations: int
    stop_condition: str
    convention: str = "image world (RAS+ mm) -> template world (RAS+ mm)"


@dataclass(frozen=True)
class DefaceRecord:
    """What :func:`deface` did to one image (JSON-serialisable via :meth:`to_dict`)."""

    tool: str
    tool_version: str
    engine: str
    engine_version: str
    method: str
    settings: dict[str, Any]
    template: TemplateFile
    face_mask: TemplateFile
    transform: AffineTransform
    input_sha256: str
    output_sha256: str
    face_voxels: int
    voxels_zeroed: int
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON types."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Return the record as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DefaceRecord:
        """Rebuild a record from :meth:`to_dict` output (e.g. read back from JSON)."""
        values = dict(data)
        values["template"] = TemplateFile(**values["template"])
        values["face_mask"] = TemplateFile(**values["face_mask"])
        values["transform"] = AffineTransform(**values["transform"])
        return cls(**values)


# --- which images ------------------------------------------------------------------------


def needs_defacing(bids_name: str) -> bool:
    """Tell whether a BIDS file is an image that shows the face and must be defaced.

    Parameters
    ----------
    bids_name : str
        A BIDS file name or path, e.g. ``sub-01/anat/sub-01_run-1_T1w.nii.gz``. A name
        without extension (``sub-01_T1w``) is judged by its suffix alone.

    Returns
    -------
    bool
        True for NIfTI images whose BIDS suffix is in :data:`FACE_SUFFIXES`; False for
        everything else, including the sidecars (``.json``) of such images.
    """
    name = PurePosixPath(bids_name.replace("\\", "/")).name
    for ext in _NIFTI_EXTENSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    else:
        if "." in name:  # BIDS entities never contain dots: this is another extension
            return False
    return name.rsplit("_", 1)[-1] in FACE_SUFFIXES


# --- defacing ----------------------------------------------------------------------------


def deface(
    src: Path,
    dst: Path,
    settings: RegistrationSettings | None = None,
) -> DefaceRecord:
    """Deface one NIfTI image: zero the voxels under pydeface's face mask mapped to it.

    Parameters
    ----------
    src : Path
        The image (``.nii`` or ``.nii.gz``, NIfTI-1 or -2, 3D or 4D).
    dst : Path
        Where to write the defaced image; ``.nii.gz`` is gzip-compressed (deterministic),
        ``.nii`` is not. Written atomically; may be ``src`` itself.
    settings : RegistrationSettings, optional
        Registration parameters; the defaults are what windl uses.

    Returns
    -------
    DefaceRecord
        Tool, engine, template and mask (with sha256), the transform, the number of face
        voxels and of voxels that changed, and timings in seconds.

    Raises
    ------
    BadInput
        If ``src`` is not a readable single-file NIfTI image with at least 3 dimensions, or
        ``dst`` does not end in ``.nii`` / ``.nii.gz``.
    DefaceFailed
        If the registration is implausible (see :func:`check_plausible`); ``dst`` is not
        written.
    """
    settings = settings or RegistrationSettings()
    src, dst = Path(src), Path(dst)
    if not dst.name.endswith(_NIFTI_EXTENSIONS):
        raise BadInput("output must end in .nii or .nii.gz", dst)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    image = _RawNifti.read(src)
    template = _template_file(TEMPLATE_FILE)
    face_mask = _template_file(FACE_MASK_FILE)
    fixed = _block_mean(image.first_volume_scaled_slabs(), image.affine, image.shape[:3], settings)
    moving = _template_blocks(settings)
    timings["load"] = time.perf_counter() - start

    mark = time.perf_counter()
    transform = _register_sitk(fixed, moving, settings)
    check_plausible(transform.matrix, src)
    timings["register"] = time.perf_counter() - mark

    mark = time.perf_counter()
    face = map_face_mask(image.shape[:3], image.affine, np.asarray(transform.matrix))
    face_voxels = int(np.count_nonzero(face))
    voxels_zeroed = image.zero(face)
    timings["mask"] = time.perf_counter() - mark

    mark = time.perf_counter()
    output_sha256 = _write_atomic(image.buffer, dst)
    timings["write"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start

    import SimpleITK as sitk

    return DefaceRecord(
        tool=TOOL,
        tool_version=__version__,
        engine=ENGINE,
        engine_version=sitk.Version.VersionString(),
        method=(
            "pydeface 2.1 template and face mask; affine (12 dof) Mattes mutual-information "
            "registration of the template to the image with SimpleITK; face mask mapped "
            "trilinearly (threshold 0.5, nearest-edge extension); voxels under it set to 0"
        ),
        settings=json.loads(json.dumps(dataclasses.asdict(settings))),
        template=template,
        face_mask=face_mask,
        transform=transform,
        input_sha256=image.input_sha256,
        output_sha256=output_sha256,
        face_voxels=face_voxels,
        voxels_zeroed=voxels_zeroed,
        timings={key: round(value, 3) for key, value in timings.items()},
    )


def face_check(
    image: Path,
    transform: DefaceRecord | Mapping[str, Any] | Sequence[Sequence[float]] | NDArray[Any],
) -> float:
    """Return the fraction of the face (template mask mapped to ``image``) that is zero.

    Parameters
    ----------
    image : Path
        A NIfTI image (typically the defaced output).
    transform : DefaceRecord or mapping or array-like
        A :class:`DefaceRecord`, its :meth:`~DefaceRecord.to_dict` form (e.g. read from
        JSON), or the 4x4 matrix itself (image world -> template world, RAS+ mm).

    Returns
    -------
    float
        Zero face voxels / face voxels, in [0, 1]; a voxel of a 4D image counts as zero
        when it is zero in every volume. ``1.0`` if no face voxel lies in the image's field
        of view.
    """
    matrix = _matrix_of(transform)
    img = nib.load(Path(image))
    if len(img.shape) < 3:
        raise BadInput("not a 3D/4D image", image)
    raw = np.asanyarray(img.dataobj.get_unscaled())
    face = map_face_mask(img.shape[:3], img.affine, matrix)
    n_face = int(np.count_nonzero(face))
    if n_face == 0:
        return 1.0
    zero = _raw_zero(img.header)
    values = raw.reshape(*img.shape[:3], -1, order="F")[face]
    return float(np.count_nonzero(np.all(values == zero, axis=1))) / n_face


def check_plausible(matrix: Sequence[Sequence[float]] | NDArray[Any], path: Path) -> None:
    """Refuse a transform that cannot map a head onto the template.

    Parameters
    ----------
    matrix : array-like
        4x4 image-to-template matrix (RAS+ mm).
    path : Path
        The image, named in the error.

    Raises
    ------
    DefaceFailed
        If a scale factor of the matrix lies outside :data:`PLAUSIBLE_SCALES`, or it
        mirrors (negative determinant).
    """
    linear = np.asarray(matrix, dtype=float)[:3, :3]
    scales = np.linalg.svd(linear, compute_uv=False)
    low, high = PLAUSIBLE_SCALES
    if np.linalg.det(linear) <= 0 or scales.min() < low or scales.max() > high:
        raise DefaceFailed(
            "defacing refused: the face template did not register to this image (scale "
            f"factors {', '.join(f'{v:.2f}' for v in scales)}; is it a whole head?)",
            path,
        )


def map_face_mask(
    shape: Sequence[int], affine: NDArray[Any], matrix: NDArray[Any] | Sequence[Sequence[float]]
) -> NDArray[np.bool_]:
    """Map pydeface's face mask into an image grid.

    Parameters
    ----------
    shape : sequence of int
        The image's first three dimensions.
    affine : ndarray
        The image's voxel-to-world affine (nibabel, RAS+ mm).
    matrix : array-like
        4x4 transform from image world to template world (RAS+ mm).

    Returns
    -------
    ndarray of bool
        True on the face (the mask's zero region), in the image's voxel grid.
    """
    from scipy import ndimage

    keep, keep_affine = _face_mask_keep()
    vox = np.linalg.inv(keep_affine) @ np.asarray(matrix, dtype=float) @ np.asarray(affine)
    nx, ny, nz = (int(n) for n in shape[:3])
    face = np.empty((nx, ny, nz), dtype=bool)
    step = max(1, _MAP_CHUNK_VOXELS // max(1, nx * ny))
    for z0 in range(0, nz, step):  # slabs of output: no full-size float copy
        z1 = min(nz, z0 + step)
        mapped = ndimage.affine_transform(
            keep,
            vox[:3, :3],
            offset=vox[:3, 3] + vox[:3, 2] * z0,
            output_shape=(nx, ny, z1 - z0),
            output=np.float32,
            order=1,
            mode="nearest",
        )
        face[:, :, z0:z1] = mapped < 0.5
    return face


# --- mosaic --------------------------------------------------------------------------------


def deface_mosaic(before: Path, after: Path, png_path: Path) -> Path:
    """Draw the head before and after defacing, as a PNG for the audit report.

    Rows: before, after. Columns: the skin surface seen from the right, the front and the
    left (depth-shaded renderings of the first voxel above a threshold along each line of
    sight, so any face left anywhere shows), and the mid-sagittal slice. Both rows use the
    threshold and intensity window of ``before``. The ``before`` row shows the face: the PNG
    belongs with the restricted data, never in a release.

    Parameters
    ----------
    before, after : Path
        The original and the defaced NIfTI image (same grid; first volume if 4D).
    png_path : Path
        Where to write the PNG (written atomically; same inputs give the same bytes).

    Returns
    -------
    Path
        ``png_path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data, (dx, dy, dz) = _canonical_volume(Path(before))
    sample = data[::3, ::3, ::3]
    positive = sample[sample > 0]
    vmax = float(np.percentile(positive, 99.5)) if positive.size else 1.0
    threshold = 0.15 * vmax
    # (title, axis looked along, look from the high end, flip left-right, pixel size)
    views = [
        ("right", 0, True, False, (dy, dz)),
        ("front", 1, True, False, (dx, dz)),
        ("left", 0, False, True, (dy, dz)),
    ]
    fig = Figure(figsize=(16, 8), dpi=80, facecolor="black")
    FigureCanvasAgg(fig)
    ncols = len(views) + 1
    for row, label in enumerate(("before", "after")):
        if row:
            data, _ = _canonical_volume(Path(after))
        panels: list[tuple[str, NDArray[Any], tuple[float, float], float]] = []
        for title, axis, from_high, flip, size in views:
            plane = _surface(data, axis, from_high, threshold)
            panels.append((title, plane[::-1] if flip else plane, size, 1.0))
        panels.append(("mid-sagittal", data[data.shape[0] // 2], (dy, dz), vmax))
        for col, (title, plane, (du, dv), top) in enumerate(panels):
            ax = fig.add_subplot(2, ncols, row * ncols + col + 1)
            ax.imshow(
                plane.T,
                origin="lower",
                cmap="gray",
                vmin=0.0,
                vmax=top,
                extent=(0, plane.shape[0] * du, 0, plane.shape[1] * dv),
                interpolation="nearest",
            )
            ax.set_axis_off()
            ax.set_title(f"{label}: {title}", color="white", fontsize=12)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(f".{png_path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            fig.savefig(out, format="png", facecolor="black", metadata={"Software": None})
        os.replace(tmp, png_path)
    finally:
        tmp.unlink(missing_ok=True)
    return png_path


def _surface(
    data: NDArray[np.float32], axis: int, from_high: bool, threshold: float
) -> NDArray[np.float32]:
    """Depth-shaded view of the first voxel above ``threshold`` along ``axis``."""
    inside = data > threshold
    if from_high:
        inside = np.flip(inside, axis)
    hit = inside.any(axis)
    depth = np.argmax(inside, axis).astype(np.float32)
    length = data.shape[axis]
    grad_u, grad_v = np.gradient(np.where(hit, depth, float(length)))
    shade = (1.0 - 0.6 * depth / length) / np.sqrt(1.0 + grad_u**2 + grad_v**2)
    return np.where(hit, shade, 0.0).astype(np.float32)


# --- internals -----------------------------------------------------------------------------


class _RawNifti:
    """A single-file NIfTI held as its (decompressed) bytes, with a writable voxel view."""

    def __init__(self, path: Path, buffer: bytearray, header: Any, input_sha256: str) -> None:
        self.path = path
        self.buffer = buffer
        self.header = header
        self.input_sha256 = input_sha256
        self.shape: tuple[int, ...] = tuple(int(n) for n in header.get_data_shape())
        self.affine: NDArray[np.float64] = header.get_best_affine()
        dtype = header.get_data_dtype()
        count = int(np.prod(self.shape))
        offset = int(header["vox_offset"])
        if offset + count * dtype.itemsize > len(buffer):
            raise BadInput("truncated NIfTI file (less voxel data than the header says)", path)
        self.raw = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(
            self.shape, order="F"
        )
        self.zero_value = _raw_zero(header)

    @classmethod
    def read(cls, path: Path) -> _RawNifti:
        if not path.name.endswith(_NIFTI_EXTENSIONS):
            raise BadInput("not a NIfTI image (expected .nii or .nii.gz)", path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read ({exc.strerror})", path) from None
        input_sha256 = hashlib.sha256(data).hexdigest()
        try:
            buffer = _gunzip(data) if data[:2] == b"\x1f\x8b" else bytearray(data)
        except (OSError, EOFError) as exc:
            raise BadInput(f"damaged gzip data ({exc})", path) from None
        del data
        header: Any = None
        for klass in (nib.Nifti1Header, nib.Nifti2Header):
            try:
                header = klass.from_fileobj(io.BytesIO(buffer))
            except Exception:  # nibabel raises several types on foreign bytes
                continue
            if header.get("magic", b"") in (b"n+1", b"n+2"):
                break
            header = None
        if header is None:
            raise BadInput("not a single-file NIfTI-1/-2 image (bad header)", path)
        if len(header.get_data_shape()) < 3:
            raise BadInput("not a 3D or 4D image", path)
        return cls(path, buffer, header, input_sha256)

    def first_volume_scaled_slabs(self) -> _ArraySlabs:
        first = self.raw.reshape(*self.shape[:3], -1, order="F")[..., 0]
        return _ArraySlabs(first, self.header.get_slope_inter())

    def zero(self, face: NDArray[np.bool_]) -> int:
        """Set the face voxels to 0 (all volumes) and return how many values changed."""
        voxels = self.raw.reshape(*self.shape[:3], -1, order="F")
        selected = voxels[face]
        changed = int(np.count_nonzero(selected != self.zero_value))
        voxels[face] = self.zero_value
        return changed


class _ArraySlabs:
    """Float32 slabs along the last axis of a (raw) array, scaled to physical values."""

    def __init__(self, raw: NDArray[Any], slope_inter: tuple[Any, Any]) -> None:
        self.raw = raw
        slope, inter = slope_inter
        self.slope = 1.0 if slope is None else float(slope)
        self.inter = 0.0 if inter is None else float(inter)

    def slab(self, start: int, stop: int) -> NDArray[np.float32]:
        out = np.asarray(self.raw[:, :, start:stop], dtype=np.float32)
        if self.slope != 1.0 or self.inter != 0.0:
            out = out * np.float32(self.slope) + np.float32(self.inter)
        return np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


@functools.lru_cache(maxsize=2)
def _template_blocks(
    settings: RegistrationSettings,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The template block-averaged for ``settings`` (cached: the same for every image)."""
    img = nib.load(str(files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_FILE)))
    slabs = _ArraySlabs(np.asanyarray(img.dataobj), (None, None))
    data, affine = _block_mean(slabs, img.affine, img.shape[:3], settings)
    data.setflags(write=False)
    return data, affine


@functools.lru_cache(maxsize=1)
def _face_mask_keep() -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """pydeface's mask as uint8 (1 = keep, 0 = face) and its affine.

    The file stores float64; it is read in chunks so that no float64 copy is held.
    """
    path = files(TEMPLATE_PACKAGE).joinpath(FACE_MASK_FILE)
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
        header = nib.Nifti1Header.from_fileobj(stream)
        stream.seek(int(header["vox_offset"]))
        dtype = header.get_data_dtype()
        shape = tuple(int(n) for n in header.get_data_shape()[:3])
        keep = np.empty(int(np.prod(shape)), dtype=np.uint8)
        chunk = _MAP_CHUNK_VOXELS
        for start in range(0, keep.size, chunk):
            count = min(chunk, keep.size - start)
            values = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype)
            if values.size != count:
                raise RuntimeError(f"{FACE_MASK_FILE} of {TEMPLATE_PACKAGE} is truncated")
            keep[start : start + count] = values > 0.5
    keep = keep.reshape(shape, order="F")
    keep.setflags(write=False)
    return keep, header.get_best_affine()


@functools.lru_cache(maxsize=4)
def _template_file(name: str) -> TemplateFile:
    data = files(TEMPLATE_PACKAGE).joinpath(name).read_bytes()
    return TemplateFile(
        package=TEMPLATE_PACKAGE,
        package_version=version(TEMPLATE_PACKAGE),
        path=name,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _block_mean(
    slabs: _ArraySlabs,
    affine: NDArray[Any],
    shape: Sequence[int],
    settings: RegistrationSettings,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Average blocks of whole voxels to ~``resolution_mm``; return data and its affine."""
    zooms = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    factors = np.maximum(1, np.round(settings.resolution_mm / zooms)).astype(int)
    fx, fy, fz = (int(f) for f in factors)
    nx, ny, nz = (int(n) // f for n, f in zip(shape[:3], factors, strict=True))
    out = np.empty((nx, ny, nz), dtype=np.float32)
    for k in range(nz):
        slab = slabs.slab(k * fz, (k + 1) * fz)[: nx * fx, : ny * fy]
        out[:, :, k] = slab.reshape(nx, fx, ny, fy, fz).mean(axis=(1, 3, 4), dtype=np.float64)
    block_affine = np.array(affine, dtype=float)
    block_affine[:3, 3] = block_affine[:3, :3] @ ((factors - 1) / 2.0) + block_affine[:3, 3]
    block_affine[:3, :3] = block_affine[:3, :3] * factors
    return out, block_affine


def _to_sitk(data: NDArray[np.float32], affine: NDArray[Any]) -> Any:
    """A SimpleITK image with nibabel's geometry (RAS affine -> LPS origin/direction)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(data.T))
    lps = _RAS_TO_LPS @ np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (lps[:3, :3] / spacing).ravel()])
    image.SetOrigin([float(v) for v in lps[:3, 3]])
    return image


def _register_sitk(
    fixed: tuple[NDArray[np.float32], NDArray[Any]],
    moving: tuple[NDArray[np.float32], NDArray[Any]],
    settings: RegistrationSettings,
) -> AffineTransform:
    """Affine Mattes-MI registration of ``moving`` (template) to ``fixed`` (image).

    Per-filter thread counts are not enough for reproducibility: parts of SimpleITK's v4
    registration follow ITK's global default, and with more than one thread the result
    varies in its last bits from run to run, even within one process (measured with
    SimpleITK 2.5.7). So the global default is pinned to ``settings.threads`` while this
    runs, and restored afterwards.
    """
    import SimpleITK as sitk

    saved = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(settings.threads)
    try:
        return _register_sitk_pinned(sitk, fixed, moving, settings)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(saved)


def _register_sitk_pinned(
    sitk: Any,
    fixed: tuple[NDArray[np.float32], NDArray[Any]],
    moving: tuple[NDArray[np.float32], NDArray[Any]],
    settings: RegistrationSettings,
) -> AffineTransform:
    fixed_image, moving_image = _to_sitk(*fixed), _to_sitk(*moving)
    initializer = sitk.CenteredTransformInitializerFilter()
    initializer.SetNumberOfThreads(settings.threads)
    initializer.MomentsOn()
    initial = initializer.Execute(fixed_image, moving_image, sitk.AffineTransform(3))

    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(settings.threads)
    reg.SetMetricAsMattesMutualInformation(settings.histogram_bins)
    if settings.sampling_fraction < 1.0:
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(settings.sampling_fraction, seed=settings.sampling_seed)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=settings.learning_rate,
        minStep=settings.min_step,
        numberOfIterations=settings.max_iterations,
        relaxationFactor=settings.relaxation_factor,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(settings.smoothing_sigmas_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    iterations = [0]

    def count() -> None:
        iterations[0] += 1

    reg.AddCommand(sitk.sitkIterationEvent, count)
    result = reg.Execute(fixed_image, moving_image)
    if isinstance(result, sitk.CompositeTransform):
        result = result.GetNthTransform(result.GetNumberOfTransforms() - 1)
    affine = sitk.AffineTransform(result)

    matrix = np.array(affine.GetMatrix(), dtype=float).reshape(3, 3)
    centre = np.array(affine.GetCenter(), dtype=float)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = np.array(affine.GetTranslation(), dtype=float) + centre - matrix @ centre
    ras = _RAS_TO_LPS @ lps @ _RAS_TO_LPS
    return AffineTransform(
        matrix=ras.tolist(),
        engine_parameters=[float(v) for v in affine.GetParameters()],
        engine_fixed_parameters=[float(v) for v in affine.GetFixedParameters()],
        metric_value=float(reg.GetMetricValue()),
        iterations=iterations[0],
        stop_condition=reg.GetOptimizerStopConditionDescription(),
    )


def _raw_zero(header: Any) -> Any:
    """The stored value that means 0 (taking ``scl_slope``/``scl_inter`` into account)."""
    dtype = header.get_data_dtype()
    slope, inter = header.get_slope_inter()
    if slope is None or not inter:
        return dtype.type(0)
    value = -float(inter) / float(slope)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        value = min(max(round(value), info.min), info.max)
    return dtype.type(value)


def _matrix_of(
    transform: DefaceRecord | Mapping[str, Any] | Sequence[Sequence[float]] | NDArray[Any],
) -> NDArray[np.float64]:
    if isinstance(transform, DefaceRecord):
        matrix: Any = transform.transform.matrix
    elif isinstance(transform, Mapping):
        matrix = transform["transform"]["matrix"] if "transform" in transform else transform
        if isinstance(matrix, Mapping):
            matrix = matrix["matrix"]
    else:
        matrix = transform
    out = np.asarray(matrix, dtype=float)
    if out.shape != (4, 4):
        raise ValueError(f"expected a 4x4 transform matrix, got shape {out.shape}")
    return out


def _gunzip(data: bytes) -> bytearray:
    """Decompress into a bytearray without holding a second full copy."""
    out = bytearray()
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
        while chunk := stream.read(1 << 22):
            out += chunk
    return out


def _write_atomic(buffer: bytearray, dst: Path) -> str:
    """Write ``buffer`` to ``dst`` (gzip without timestamp for .gz); return its sha256."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            if dst.name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=out, compresslevel=_GZIP_LEVEL, mtime=0
                ) as gz:
                    gz.write(buffer)
            else:
                out.write(buffer)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def _canonical_volume(path: Path) -> tuple[NDArray[np.float32], tuple[float, float, float]]:
    img = nib.as_closest_canonical(nib.load(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim > 3:
        data = data.reshape(*data.shape[:3], -1)[..., 0]
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return np.nan_to_num(data), (zooms[0], zooms[1], zooms[2])
