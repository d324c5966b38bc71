"""Anatomical (T1w/T2w) image quality metrics with MRIQC's names and definitions.

Definitions follow MRIQC (Esteban et al. 2017, PLoS ONE 12(9):e0184661; "Image Quality
Metrics" at https://mriqc.readthedocs.io), computed on windl's own segmentation
(:data:`windl.qc.common.SEGMENTATION_METHOD`) instead of FSL FAST / ANTs:

- ``snr_{csf,gm,wm,total}``: ``mu_T / (sigma_T * sqrt(n / (n - 1)))`` per tissue T; total = mean.
- ``snrd_{csf,gm,wm,total}``: Dietrich et al. (2007): ``mu_T / (sqrt(2 / (4 - pi)) * MAD_air)``.
- ``cnr``: ``|mu_GM - mu_WM| / sqrt(sigma_air^2 + sigma_GM^2 + sigma_WM^2)``.
- ``cjv``: Ganzetti et al. (2016): ``(sigma_WM + sigma_GM) / |mu_WM - mu_GM|`` (lower is better).
- ``efc``: Atkinson et al. (1997): Shannon entropy of voxel intensities normalised by the
  maximum entropy (lower: less ghosting/blurring).
- ``fber``: Shehzad et al. (2015): ``median(|head|^2) / median(|air|^2)``; 0 if the air is
  (nearly) zero, as in MRIQC.
- ``wm2max``: ``median(WM) / P99.95(image)``.
- ``summary_{bg,csf,gm,wm}_{mean,median,stdv,mad,k,p05,p95,n}`` and ``icvs_{csf,gm,wm}``.
- ``fwhm_{x,y,z,avg}``: smoothness (AFNI 3dFWHMx classic estimate), in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from windl.errors import BadInput
from windl.qc.common import (
    SEGMENTATION_METHOD,
    Array,
    fwhm,
    head_mask,
    kmeans_tissues,
    load_canonical,
    rounded,
    summary_stats,
)

TISSUES = ("csf", "gm", "wm")
DIETRICH_FACTOR = 1.0 / np.sqrt(2 / (4 - np.pi))


@dataclass
class AnatQC:
    """Metrics of one anatomical image, plus the arrays the report draws."""

    path: Path
    metrics: dict[str, Any]
    volume: Array = field(repr=False)
    labels: Array = field(repr=False)  # 0 air, 1 csf, 2 gm, 3 wm
    zooms: tuple[float, ...] = ()


def _snr(values: Array) -> float:
    n = values.size
    sd = values.std()
    return float(values.mean() / (sd * np.sqrt(n / (n - 1)))) if n > 1 and sd > 0 else 0.0


def efc(volume: Array) -> float:
    """Entropy focus criterion (Atkinson 1997), normalised to [0, 1] as in MRIQC."""
    n_vox = volume.size
    efc_max = 1.0 * n_vox * (1.0 / np.sqrt(n_vox)) * np.log(1.0 / np.sqrt(n_vox))
    b_max = np.sqrt(np.sum(volume**2))
    if b_max <= 0:
        return 0.0
    cc = np.abs(volume[volume != 0]) / b_max
    return float((1.0 / efc_max) * np.sum(cc * np.log(cc + 1e-16)))


def anat_metrics(volume: Array, zooms: tuple[float, ...]) -> tuple[dict[str, Any], Array]:
    """MRIQC-style metrics of a 3D anatomical image; returns (metrics, tissue labels)."""
    if volume.ndim != 3 or min(volume.shape) < 8:
        raise BadInput(f"not a 3D anatomical image (shape {volume.shape})")
    volume = np.clip(volume, 0, None)
    if float(volume.max()) <= float(volume.min()):
        raise BadInput("the image is constant (no head in it)")
    head = head_mask(volume)
    if head.sum() < 1000:
        raise BadInput("no head found in the image (fewer than 1000 foreground voxels)")
    labels = kmeans_tissues(volume, head)
    air = ~ndimage.binary_dilation(head, iterations=3)
    air_vals = volume[air]
    tissue = {t: volume[labels == i + 1] for i, t in enumerate(TISSUES)}
    stats = {"bg": summary_stats(air_vals)} | {t: summary_stats(v) for t, v in tissue.items()}
    m: dict[str, Any] = {}
    for t in TISSUES:
        m[f"snr_{t}"] = _snr(tissue[t])
    m["snr_total"] = float(np.mean([m[f"snr_{t}"] for t in TISSUES]))
    mad_air, sd_air = stats["bg"]["mad"], stats["bg"]["stdv"]
    noise = mad_air if mad_air > 1.0 else sd_air
    for t in TISSUES:
        m[f"snrd_{t}"] = float(DIETRICH_FACTOR * stats[t]["mean"] / noise) if noise > 1e-3 else -1.0
    m["snrd_total"] = float(np.mean([m[f"snrd_{t}"] for t in TISSUES]))
    gm, wm = stats["gm"], stats["wm"]
    m["cnr"] = float(
        abs(gm["mean"] - wm["mean"]) / np.sqrt(sd_air**2 + gm["stdv"] ** 2 + wm["stdv"] ** 2)
    )
    m["cjv"] = float((wm["stdv"] + gm["stdv"]) / max(abs(wm["mean"] - gm["mean"]), 1e-12))
    m["efc"] = efc(volume)
    fg_mu = float(np.median(volume[head] ** 2))
    bg_mu = float(np.median(air_vals**2)) if air_vals.size else 0.0
    m["fber"] = fg_mu / bg_mu if bg_mu >= 1e-3 else 0.0
    m["wm2max"] = float(wm["median"] / max(np.percentile(volume, 99.95), 1e-12))
    total = sum(tissue[t].size for t in TISSUES)
    for t in TISSUES:
        m[f"icvs_{t}"] = tissue[t].size / total
    for region, s in stats.items():
        for key, value in s.items():
            m[f"summary_{region}_{key}"] = value
    m |= fwhm(volume, head, zooms)
    m["size_x"], m["size_y"], m["size_z"] = (int(s) for s in volume.shape)
    m["spacing_x"], m["spacing_y"], m["spacing_z"] = (float(z) for z in zooms[:3])
    m["segmentation"] = SEGMENTATION_METHOD
    return rounded(m), labels


def anat_qc(path: Path) -> AnatQC:
    """Read a NIfTI T1w/T2w (first volume if 4D) and compute its metrics.

    Raises
    ------
    BadInput
        The file is not a readable 3D image with a head in it.
    """
    data, zooms = load_canonical(Path(path))
    if data.ndim == 4:
        data = data[..., 0]
    try:
        metrics, labels = anat_metrics(data, zooms)
    except BadInput as exc:
        raise BadInput(exc.message, path) from None
    return AnatQC(Path(path), metrics, np.clip(data, 0, None), labels, zooms)
