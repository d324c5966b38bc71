"""Shared pieces of MRI QC: loading, masks, segmentation, smoothness.

Segmentation used by windl (named in every report): the head (foreground) is the largest
connected component of the image above an **Otsu threshold**, with holes filled; the
tissues inside it are **3-class k-means** (Lloyd's algorithm on intensities, initialised at
the 1/6, 1/2 and 5/6 quantiles, so the result is deterministic), labelled by mean intensity
as ``csf`` (darkest), ``gm`` and ``wm`` (brightest) — MRIQC's tissue names for a T1w.
Everything is numpy/scipy; no FSL/ANTs/AFNI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, stats

from windl.errors import BadInput

SEGMENTATION_METHOD = (
    "head mask: Otsu threshold, largest connected component, holes filled (numpy/scipy); "
    "tissues: 3-class k-means of intensities within the head mask (csf < gm < wm)"
)

Array = NDArray[Any]


def load_canonical(path: Path) -> tuple[Array, tuple[float, ...]]:
    """Image data as float64 in RAS+ orientation (closest canonical) and its voxel sizes."""
    try:
        img = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asanyarray(img.dataobj).astype(np.float64)
    except Exception as exc:  # nibabel raises many types on broken files
        raise BadInput(f"cannot read image: {exc}", path) from None
    if not np.all(np.isfinite(data)):
        data = np.nan_to_num(data)
    return data, tuple(float(z) for z in img.header.get_zooms())


def otsu_threshold(values: Array, bins: int = 256) -> float:
    """Otsu's (1979) threshold: maximises the between-class variance of the histogram."""
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    weight1 = np.cumsum(hist)
    weight2 = weight1[-1] - weight1
    mean1 = np.cumsum(hist * centers) / np.maximum(weight1, 1)
    total = np.sum(hist * centers)
    mean2 = (total - np.cumsum(hist * centers)) / np.maximum(weight2, 1)
    between = weight1 * weight2 * (mean1 - mean2) ** 2
    return float(centers[int(np.argmax(between[:-1]))])


def head_mask(volume: Array) -> Array:
    """Foreground (head) mask of a 3D image: Otsu, largest component, closed, holes filled."""
    sample = volume[volume > 0] if np.any(volume > 0) else volume.ravel()
    mask = volume > otsu_threshold(sample if sample.size > 1000 else volume.ravel())
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    mask = ndimage.binary_closing(mask, iterations=2)
    filled = np.zeros_like(mask)
    for z in range(mask.shape[2]):  # slice-wise too: thick-slice EPI has open 3D holes
        filled[..., z] = ndimage.binary_fill_holes(mask[..., z])
    return ndimage.binary_fill_holes(filled | mask)


def kmeans_tissues(volume: Array, mask: Array, classes: int = 3, iterations: int = 50) -> Array:
    """Label image: 0 outside ``mask``, 1..classes inside, ordered by mean intensity."""
    values = volume[mask]
    centers = np.quantile(values, (np.arange(classes) + 0.5) / classes)
    for _ in range(iterations):
        assign = np.argmin(np.abs(values[:, None] - centers[None, :]), axis=1)
        new = np.array(
            [
                values[assign == k].mean() if np.any(assign == k) else centers[k]
                for k in range(classes)
            ]
        )
        if np.allclose(new, centers):
            break
        centers = new
    order = np.argsort(centers)
    rank = np.empty(classes, dtype=int)
    rank[order] = np.arange(classes)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[mask] = rank[assign] + 1
    return labels


def summary_stats(values: Array) -> dict[str, float]:
    """MRIQC's ``summary_*`` statistics of one region (mad = 1.4826 x median abs deviation)."""
    if values.size == 0:
        return {k: 0.0 for k in ("mean", "median", "stdv", "mad", "k", "p05", "p95", "n")}
    median = float(np.median(values))
    p05, p95 = np.percentile(values, (5, 95))
    return {
        "mean": float(values.mean()),
        "median": median,
        "stdv": float(values.std()),
        "mad": float(1.4826 * np.median(np.abs(values - median))),
        "k": float(stats.kurtosis(values)) if values.size > 3 and values.std() > 0 else 0.0,
        "p05": float(p05),
        "p95": float(p95),
        "n": float(values.size),
    }


def fwhm(volume: Array, mask: Array, zooms: tuple[float, ...]) -> dict[str, float]:
    """Smoothness in mm, as AFNI 3dFWHMx's classic estimate (Forman et al. 1995).

    Per axis, from the variance of first differences inside the mask relative to the
    variance of the data: ``FWHM = d * sqrt(-2 ln 2 / ln(1 - var(diff) / (2 var)))``;
    ``fwhm_avg`` is the geometric mean of the axes (3dFWHMx ``-combine``). An axis whose
    neighbours are uncorrelated (e.g. 12 mm slices) has no estimate: 0, left out of the mean.
    """
    values = volume[mask]
    var = float(values.var())
    out: dict[str, float] = {}
    for axis, name in enumerate("xyz"):
        both = mask & np.roll(mask, -1, axis=axis)
        both[(slice(None),) * axis + (-1,)] = False
        diff = (np.roll(volume, -1, axis=axis) - volume)[both]
        ratio = 1.0 - float(diff.var()) / (2 * var) if var > 0 and diff.size > 1 else 0.0
        out[f"fwhm_{name}"] = (
            float(zooms[axis] * np.sqrt(-2 * np.log(2) / np.log(ratio))) if 0 < ratio < 1 else 0.0
        )
    defined = [out[f"fwhm_{n}"] for n in "xyz" if out[f"fwhm_{n}"] > 0]
    out["fwhm_avg"] = float(np.prod(defined) ** (1 / len(defined))) if defined else 0.0
    return out


def rounded(metrics: dict[str, Any], digits: int = 6) -> dict[str, Any]:
    """Metrics with floats rounded to ``digits`` significant digits (stable files on rerun)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, float | np.floating):
            out[key] = float(f"{float(value):.{digits}g}")
        else:
            out[key] = value
    return out
