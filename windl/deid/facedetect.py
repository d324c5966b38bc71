"""A face detector on a rendered head surface: the audit's check of defacing by other means.

:mod:`windl.deid.deface` removes the face through a registration of pydeface's template, and
its :func:`~windl.deid.deface.face_check` maps the face mask with that same registration: a
registration that went wrong would fail both in the same way. This module shares none of that
-- no template, no mask, no transform. It looks at the head the way a person would:

1. the image (first volume if 4D) is put into the voxel order closest to RAS+ from its
   NIfTI affine (a transpose, no resampling; so the face looks forward whatever the voxel
   order of the scan), and smoothed by :attr:`DetectSettings.smoothing_mm`;
2. the head is what lies above a threshold of the smoothed volume: Otsu's threshold of its
   histogram times :attr:`DetectSettings.otsu_fraction` (skin is darker than the tissue Otsu
   separates from air), largest connected piece only, so noise in the air stops no ray;
3. for each yaw angle the head is turned about the vertical axis (slice by slice, onto a
   grid of :attr:`DetectSettings.voxel_mm`) and seen from the front: the depth of the first
   voxel above the threshold along each line of sight (sub-voxel, by linear interpolation),
   Lambert-shaded from the depth gradients with a light slightly above the
   viewer and dimmed with depth, on a fixed canvas of :attr:`DetectSettings.canvas_mm`
   (one pixel per voxel, head centred, top of the head near the top edge);
4. OpenCV's bundled Haar cascades look for faces in each picture: the frontal cascade
   (``alt2``) and the profile cascade on the picture and its mirror image. A cascade's
   candidates are grouped by OpenCV; the strength of a candidate is the number of raw
   detections grouped into it ("neighbours"). A face is *found* when some candidate reaches
   the cascade's threshold in :attr:`DetectSettings.min_neighbours`.

The thresholds were set on the two heads with a face that are available offline --
pydeface's test T1w (a real head, ds000031) and pydeface's template (an average head) -- and
on both defaced by windl, at several resolutions (``tests/test_facedetect.py``,
``docs/defacing-check.md``). The pictures are written by :func:`face_picture` for the audit
report; a "before" picture shows a face and belongs with the restricted data, never in a
release.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from windl.errors import BadInput

#: The cascades used (file names under ``cv2.data.haarcascades``) and their short names.
CASCADES = {
    "frontal": "haarcascade_frontalface_alt2.xml",
    "profile": "haarcascade_profileface.xml",
}


@dataclass(frozen=True)
class DetectSettings:
    """How heads are rendered and faces detected (all of it goes into the audit's record)."""

    voxel_mm: float = 1.0
    smoothing_mm: float = 1.5
    otsu_fraction: float = 0.5
    yaw_degrees: tuple[float, ...] = (-40.0, -20.0, 0.0, 20.0, 40.0)
    canvas_mm: int = 256
    top_margin_mm: int = 16
    light: tuple[float, float, float] = (0.0, 0.3, 1.0)
    depth_dimming_mm: float = 100.0
    scale_factor: float = 1.05
    min_face_mm: int = 48
    min_neighbours: Mapping[str, int] = field(
        default_factory=lambda: {"frontal": 120, "profile": 45}
    )

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON types."""
        data = dataclasses.asdict(self)
        data["min_neighbours"] = dict(self.min_neighbours)
        return data


@dataclass(frozen=True)
class FaceBox:
    """One candidate face: where (canvas pixels), in which view, by which cascade, how strong."""

    yaw: float
    cascade: str
    mirrored: bool
    x: int
    y: int
    width: int
    height: int
    neighbours: int
    face: bool


@dataclass
class Detection:
    """What the detector saw on one image.

    ``views`` are the rendered pictures (uint8, canvas pixels, one per yaw angle; not
    serialised by :meth:`to_dict`); ``candidates`` holds the strongest candidate of each
    cascade in each view; ``found`` is true when one of them reached its threshold.
    """

    path: str
    found: bool
    strongest: dict[str, int]
    candidates: list[FaceBox]
    views: dict[float, NDArray[np.uint8]] = field(repr=False)
    settings: DetectSettings

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types (without the pictures)."""
        return {
            "found": self.found,
            "strongest": dict(self.strongest),
            "thresholds": dict(self.settings.min_neighbours),
            "faces": [dataclasses.asdict(c) for c in self.candidates if c.face],
            "candidates": len(self.candidates),
        }


def detect_face(path: Path, settings: DetectSettings | None = None) -> Detection:
    """Render the head in ``path`` from the front and a few yaw angles; look for a face.

    Parameters
    ----------
    path : Path
        A NIfTI image (3D or 4D; the first volume is used).
    settings : DetectSettings, optional
        Rendering and detection parameters; the defaults are what the audit uses.

    Returns
    -------
    Detection
        The pictures, the strongest candidate of each cascade per view, and whether a face
        was found.

    Raises
    ------
    BadInput
        If the file is not a readable 3D/4D NIfTI image.
    """
    settings = settings or DetectSettings()
    smooth, threshold, zooms = head_volume(Path(path), settings)
    views: dict[float, NDArray[np.uint8]] = {}
    candidates: list[FaceBox] = []
    for yaw in settings.yaw_degrees:
        picture = render_view(smooth, threshold, zooms, yaw, settings)
        views[float(yaw)] = picture
        candidates.extend(_detect(picture, float(yaw), settings))
    strongest = {name: 0 for name in CASCADES}
    for box in candidates:
        strongest[box.cascade] = max(strongest[box.cascade], box.neighbours)
    return Detection(
        path=str(path),
        found=any(box.face for box in candidates),
        strongest=strongest,
        candidates=candidates,
        views=views,
        settings=settings,
    )


# --- rendering -----------------------------------------------------------------------------


def head_volume(
    path: Path, settings: DetectSettings
) -> tuple[NDArray[np.float32], float, tuple[float, float, float]]:
    """The smoothed image in RAS+ voxel order, zero outside the head, and the surface threshold.

    Parameters
    ----------
    path : Path
        A NIfTI image.
    settings : DetectSettings
        Smoothing and threshold fraction.

    Returns
    -------
    tuple of ndarray, float and tuple of float
        The volume (axis 0 = right, 1 = anterior, 2 = superior) cropped to the head, the
        threshold above which a voxel is head, and the voxel size in mm per axis.
    """
    from scipy import ndimage

    volume, zooms = _canonical(path)
    sigmas = [settings.smoothing_mm / z for z in zooms]
    smooth = ndimage.gaussian_filter(volume, sigmas, output=np.float32)
    del volume
    top = float(np.percentile(smooth[::4, ::4, ::4], 99.9))
    threshold = otsu(np.clip(smooth[::2, ::2, ::2], 0.0, top)) * settings.otsu_fraction
    labels, count = ndimage.label(smooth > threshold)
    if not threshold > 0 or count == 0:
        return np.zeros((1, 1, 1), dtype=np.float32), 1.0, zooms
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    head = labels == sizes.argmax()
    del labels
    # a margin of two voxels keeps the sub-voxel step into the surface
    head = ndimage.binary_dilation(head, iterations=2)
    box = ndimage.find_objects(head.astype(np.uint8))[0]
    cropped = np.where(head[box], smooth[box], 0.0).astype(np.float32)
    return cropped, threshold, zooms


def render_view(
    smooth: NDArray[np.float32],
    threshold: float,
    zooms: tuple[float, float, float],
    yaw: float,
    settings: DetectSettings,
) -> NDArray[np.uint8]:
    """The head seen from the front after turning it by ``yaw`` degrees (positive: to its left).

    Parameters
    ----------
    smooth : ndarray
        The head volume from :func:`head_volume` (axes right, anterior, superior).
    threshold : float
        Its surface threshold.
    zooms : tuple of float
        Its voxel size, mm.
    yaw : float
        Rotation about the vertical axis, degrees.
    settings : DetectSettings
        Pixel size, canvas size, light, dimming.

    Returns
    -------
    ndarray of uint8
        ``canvas_mm / voxel_mm`` pixels square; row 0 at the top, the subject's right on the
        viewer's left, as in a photograph of the face.
    """
    import cv2

    turned = _turn(smooth, zooms, yaw, settings.voxel_mm)
    depth, hit = _first_hit(turned, threshold)
    # depth map (x, z): z still in voxels of zooms[2]; make its pixels square
    rows = max(1, round(depth.shape[1] * zooms[2] / settings.voxel_mm))
    size = (rows, depth.shape[0])  # cv2 sizes are (width, height)
    depth = cv2.resize(depth, size, interpolation=cv2.INTER_LINEAR)
    hit = cv2.resize(hit.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    shade = _lambert(depth, hit, settings)
    # (x, z) -> image rows top to bottom = superior to inferior, columns = left to right
    # on the viewer's side = the subject's right (+x) to left
    return _on_canvas(shade[::-1, ::-1].T, hit[::-1, ::-1].T, settings)


def _turn(
    smooth: NDArray[np.float32], zooms: tuple[float, float, float], yaw: float, pixel_mm: float
) -> NDArray[np.float32]:
    """Turn each axial slice by ``yaw`` about the head's axis, onto a grid of ``pixel_mm``.

    Slice by slice with OpenCV's ``warpAffine`` (bilinear): a few ms per slice, where a 3D
    rotation of the whole volume takes seconds. The grid is large enough for the turned
    head, so neither ears nor nose are cut off.
    """
    import cv2

    nx, ny, nz = smooth.shape
    half = np.hypot(nx * zooms[0], ny * zooms[1]) / 2.0
    side = int(np.ceil(2.0 * half / pixel_mm)) + 1
    angle = np.deg2rad(yaw)
    cos, sin = np.cos(angle), np.sin(angle)
    # output (u, v) in pixels -> mm about the centre -> turned back -> input voxel (x, y)
    centre_in = np.array([(nx - 1) * zooms[0], (ny - 1) * zooms[1]]) / 2.0
    centre_out = (side - 1) / 2.0
    back = np.array([[cos, sin], [-sin, cos]]) * pixel_mm
    to_voxel = np.diag([1.0 / zooms[0], 1.0 / zooms[1]])
    linear = to_voxel @ back
    offset = to_voxel @ (centre_in - back @ np.array([centre_out, centre_out]))
    # cv2 maps (column, row) = (y-index, x-index) of a 2D slice: swap the axes
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    matrix = np.hstack([swap @ linear @ swap, (swap @ offset)[:, None]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = np.empty((side, side, nz), dtype=np.float32)
    for k in range(nz):
        out[:, :, k] = cv2.warpAffine(
            np.ascontiguousarray(smooth[:, :, k]),
            matrix,
            (side, side),
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    return out


def _first_hit(
    volume: NDArray[np.float32], threshold: float
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Depth (voxels from the front) of the first value above ``threshold`` along -y."""
    front = volume[:, ::-1, :]  # index 0 = most anterior
    inside = front > threshold
    hit = inside.any(axis=1)
    k = np.argmax(inside, axis=1)
    before = np.clip(k - 1, 0, None)
    a = np.take_along_axis(front, before[:, None, :], axis=1)[:, 0]
    b = np.take_along_axis(front, k[:, None, :], axis=1)[:, 0]
    step = np.clip((threshold - a) / np.maximum(b - a, 1e-6), 0.0, 1.0)
    depth = np.where(k > 0, before + step, 0.0).astype(np.float32)
    return depth, hit


def _lambert(
    depth: NDArray[np.float32], hit: NDArray[np.bool_], settings: DetectSettings
) -> NDArray[np.float32]:
    """Lambert shading of the depth map (x, z), dimmed with distance from the nearest point."""
    far = float(depth.shape[0] + depth.shape[1])
    grad_x, grad_z = np.gradient(np.where(hit, depth, far))
    # a silhouette edge is a cliff in depth: clip it so it shades dark, not as noise
    grad_x, grad_z = np.clip(grad_x, -8, 8), np.clip(grad_z, -8, 8)
    light = np.asarray(settings.light, dtype=float)
    light = light / np.linalg.norm(light)
    # the surface normal towards the viewer is (-dd/dx, +dd/dz, 1) in (x, z-up, viewer)
    lit = (-grad_x * light[0] + grad_z * light[1] + light[2]) / np.sqrt(1.0 + grad_x**2 + grad_z**2)
    near = float(depth[hit].min()) if hit.any() else 0.0
    dim = 1.0 - 0.5 * np.clip((depth - near) * settings.voxel_mm / settings.depth_dimming_mm, 0, 1)
    return np.where(hit, np.clip(lit, 0.0, 1.0) * dim, 0.0).astype(np.float32)


def _on_canvas(
    picture: NDArray[np.float32], hit: NDArray[np.bool_], settings: DetectSettings
) -> NDArray[np.uint8]:
    """Place the picture on the fixed canvas: head centred left-right, its top near the top."""
    size = round(settings.canvas_mm / settings.voxel_mm)
    canvas = np.zeros((size, size), dtype=np.uint8)
    rows, cols = np.nonzero(hit)
    if rows.size == 0:
        return canvas
    top = int(rows.min())
    centre = (int(cols.min()) + int(cols.max())) // 2
    row0 = round(settings.top_margin_mm / settings.voxel_mm) - top
    col0 = size // 2 - centre
    src_r = slice(max(0, -row0), min(picture.shape[0], size - row0))
    src_c = slice(max(0, -col0), min(picture.shape[1], size - col0))
    if src_r.start >= src_r.stop or src_c.start >= src_c.stop:
        return canvas
    dst_r = slice(src_r.start + row0, src_r.stop + row0)
    dst_c = slice(src_c.start + col0, src_c.stop + col0)
    canvas[dst_r, dst_c] = np.round(picture[src_r, src_c] * 255.0).astype(np.uint8)
    return canvas


def _canonical(path: Path) -> tuple[NDArray[np.float32], tuple[float, float, float]]:
    """The first volume in the voxel order closest to RAS+ (a transpose, no resampling).

    A scan tilted by a few degrees stays tilted by as much; a face detector does not mind.
    """
    try:
        img = nib.as_closest_canonical(nib.load(Path(path)))
    except Exception as exc:  # nibabel raises several types on foreign bytes
        raise BadInput(f"not a readable NIfTI image ({type(exc).__name__})", path) from None
    if len(img.shape) < 3:
        raise BadInput("not a 3D or 4D image", path)
    data = np.asanyarray(img.dataobj)
    if data.ndim > 3:
        data = data.reshape(*data.shape[:3], -1)[..., 0]
    data = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return data, (zooms[0], zooms[1], zooms[2])


def otsu(values: NDArray[Any], bins: int = 256) -> float:
    """Otsu's threshold: the cut of the histogram with the largest between-class variance."""
    hist, edges = np.histogram(np.ravel(values), bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2.0
    weight_low = np.cumsum(hist).astype(float)
    weight_high = weight_low[-1] - weight_low
    moment = np.cumsum(hist * centres)
    mean_low = moment / np.maximum(weight_low, 1.0)
    mean_high = (moment[-1] - moment) / np.maximum(weight_high, 1.0)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


# --- detection -----------------------------------------------------------------------------


@functools.cache
def _cascade(name: str) -> Any:
    import cv2

    path = os.path.join(cv2.data.haarcascades, CASCADES[name])
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's {CASCADES[name]} did not load from {path}")
    return cascade


def _detect(picture: NDArray[np.uint8], yaw: float, settings: DetectSettings) -> list[FaceBox]:
    """The strongest candidate of each cascade (and mirror image, for profiles) in a view."""
    smallest = max(24, round(settings.min_face_mm / settings.voxel_mm))
    width = picture.shape[1]
    out: list[FaceBox] = []
    for name in CASCADES:
        for mirrored in (False, True) if name == "profile" else (False,):
            image = np.ascontiguousarray(picture[:, ::-1] if mirrored else picture)
            boxes, counts = _cascade(name).detectMultiScale2(
                image,
                scaleFactor=settings.scale_factor,
                minNeighbors=1,
                minSize=(smallest, smallest),
            )
            if len(boxes) == 0:
                continue
            best = int(np.argmax(counts))
            x, y, w, h = (int(v) for v in boxes[best])
            if mirrored:
                x = width - x - w
            neighbours = int(counts[best])
            out.append(
                FaceBox(
                    yaw=yaw,
                    cascade=name,
                    mirrored=mirrored,
                    x=x,
                    y=y,
                    width=w,
                    height=h,
                    neighbours=neighbours,
                    face=neighbours >= int(settings.min_neighbours[name]),
                )
            )
    return out


# --- picture -------------------------------------------------------------------------------


def face_picture(rows: Sequence[tuple[str, Detection | None]], png_path: Path) -> Path:
    """Draw the rendered views of each detection, one row per detection, boxes drawn.

    A face (a candidate at or above its threshold) is framed in red, a weaker candidate in
    thin grey. A row whose detection is ``None`` (the image was not available) is left out.

    Parameters
    ----------
    rows : sequence of (str, Detection or None)
        A label (e.g. ``"before"``, ``"after"``) and the detection to draw.
    png_path : Path
        Where to write the PNG (atomically; the same inputs give the same bytes).

    Returns
    -------
    Path
        ``png_path``.
    """
    import cv2

    strips = []
    for label, detection in rows:
        if detection is None:
            continue
        tiles = []
        for yaw, view in detection.views.items():
            tile = cv2.cvtColor(view, cv2.COLOR_GRAY2BGR)
            for box in detection.candidates:
                if box.yaw != yaw:
                    continue
                colour, thick = ((40, 40, 230), 2) if box.face else ((150, 150, 150), 1)
                corner = (box.x + box.width, box.y + box.height)
                cv2.rectangle(tile, (box.x, box.y), corner, colour, thick)
            verdict = "FACE" if any(b.face and b.yaw == yaw for b in detection.candidates) else ""
            text = f"{label} yaw {yaw:+.0f} {verdict}".strip()
            cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1)
            tiles.append(tile)
        if tiles:
            strips.append(np.hstack(tiles))
    if not strips:
        raise BadInput("nothing to draw", png_path)
    width = max(s.shape[1] for s in strips)
    sheet = np.vstack([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in strips])
    ok, encoded = cv2.imencode(".png", sheet)
    if not ok:
        raise RuntimeError("OpenCV could not encode the picture as PNG")
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(f".{png_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(encoded.tobytes())
        os.replace(tmp, png_path)
    finally:
        tmp.unlink(missing_ok=True)
    return png_path
