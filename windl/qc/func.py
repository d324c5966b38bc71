"""Functional (BOLD) image quality metrics with MRIQC's names and definitions.

- ``tsnr``: median over the brain mask of the voxel-wise temporal mean / temporal SD.
- ``dvars_nstd``, ``dvars_std``, ``dvars_vstd``: DVARS (Power et al. 2012) — RMS over the
  mask of the temporal derivative; standardised by its expected SD under the voxel-wise
  AR(1) model (Nichols 2013, as nipype's ``ComputeDVARS`` which MRIQC uses); the series is
  scaled to a mask median of 1000 first. Means over the run.
- ``fd_mean``, ``fd_num``, ``fd_perc``: framewise displacement (Power et al. 2012), the sum
  of absolute frame-to-frame changes of the six rigid-body parameters, rotations as arc
  length on a 50 mm sphere; ``fd_num``/``fd_perc`` count frames with FD > 0.2 mm. Motion is
  estimated by SimpleITK rigid (Euler3D) registration of each volume to the first one, at
  half resolution (MRIQC uses AFNI 3dvolreg).
- ``gsr_x``, ``gsr_y``: ghost-to-signal ratio (Giannelli et al. 2010) on the mean EPI, the
  ghost region being the brain mask shifted by N/2 along x or y.
- ``aor``: AFNI 3dToutcount's mean fraction of outlier voxels per volume
  (``|x - median| > Q^-1(0.001 / T) * sqrt(pi / 2) * MAD``).
- ``fwhm_{x,y,z,avg}``: smoothness of the mean EPI (3dFWHMx classic estimate), mm.
- ``gcor``: global correlation (Saad et al. 2013), the mean of all voxel-pair correlations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from windl.errors import BadInput
from windl.qc.common import SEGMENTATION_METHOD, Array, fwhm, head_mask, load_canonical, rounded

FD_RADIUS_MM = 50.0
FD_THRESHOLD_MM = 0.2


@dataclass
class FuncQC:
    """Metrics of one BOLD run, its per-volume series and the arrays the report draws."""

    path: Path
    metrics: dict[str, Any]
    timeseries: dict[str, list[float]]  # fd, dvars_std, dvars_nstd, aor per volume
    mean: Array = field(repr=False)
    tsnr_map: Array = field(repr=False)
    mask: Array = field(repr=False)


def rigid_motion(series: Array, zooms: tuple[float, ...], shrink: int = 2) -> Array:
    """Rigid-body parameters (rx, ry, rz in rad; tx, ty, tz in mm) of each volume vs the first.

    SimpleITK Euler3D registration, mean-squares metric, regular step gradient descent, on
    images downsampled by ``shrink`` in-plane. One thread, so reruns give the same numbers.
    """
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    def image(vol: Array) -> Any:
        img = sitk.GetImageFromArray(np.ascontiguousarray(vol.T.astype(np.float32)))
        img.SetSpacing(tuple(float(z) for z in zooms[:3]))
        factors = [shrink, shrink, 1]
        return sitk.Shrink(img, factors) if min(vol.shape[:2]) >= 32 else img

    scale = float(np.percentile(series[..., 0], 99)) or 1.0
    fixed = image(series[..., 0] / scale)
    params = np.zeros((series.shape[3], 6))
    previous = sitk.Euler3DTransform()
    previous.SetCenter(
        fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in fixed.GetSize()])
    )
    for t in range(1, series.shape[3]):
        moving = image(series[..., t] / scale)
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMeanSquares()
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(
            learningRate=1.0,
            minStep=1e-4,
            numberOfIterations=100,
            relaxationFactor=0.5,
            gradientMagnitudeTolerance=1e-10,
        )
        reg.SetOptimizerScalesFromPhysicalShift()
        out = sitk.Euler3DTransform(previous)
        reg.SetInitialTransform(out, inPlace=True)
        reg.Execute(fixed, moving)
        params[t] = out.GetParameters()
        previous = out
    return params


def framewise_displacement(params: Array, radius: float = FD_RADIUS_MM) -> Array:
    """Power et al. (2012) FD per volume (first volume 0), rotations on a ``radius`` sphere."""
    delta = np.abs(np.diff(params, axis=0))
    fd = delta[:, 3:].sum(axis=1) + radius * delta[:, :3].sum(axis=1)
    return np.concatenate([[0.0], fd])


def dvars(series: Array, mask: Array) -> dict[str, Array]:
    """DVARS per frame transition: ``nstd`` (raw), ``std`` (standardised), ``vstd`` (voxel-wise)."""
    ts = series[mask].astype(np.float64)  # voxels x time
    ts = ts[ts.std(axis=1) > 1e-10]
    if ts.shape[1] < 2 or ts.shape[0] == 0:
        return {k: np.zeros(0) for k in ("nstd", "std", "vstd")}
    ts = ts * (1000.0 / np.median(ts.mean(axis=1)))
    sd = (np.percentile(ts, 75, axis=1) - np.percentile(ts, 25, axis=1)) / 1.349
    sd = np.where(sd > 0, sd, ts.std(axis=1))
    centred = ts - ts.mean(axis=1, keepdims=True)
    if ts.shape[1] > 2:
        ar1 = np.sum(centred[:, 1:] * centred[:, :-1], axis=1) / np.sum(centred**2, axis=1)
    else:
        ar1 = np.zeros(ts.shape[0])
    diff_sd = np.sqrt(np.clip(2 * (1 - ar1), 1e-6, None)) * sd
    diff = np.diff(ts, axis=1)
    nstd = np.sqrt(np.mean(diff**2, axis=0))
    return {
        "nstd": nstd,
        "std": nstd / np.mean(diff_sd),
        "vstd": np.sqrt(np.mean((diff / diff_sd[:, None]) ** 2, axis=0)),
    }


def outlier_fraction(series: Array, mask: Array) -> Array:
    """3dToutcount: per volume, the fraction of mask voxels that are outliers in time."""
    ts = series[mask]
    nt = ts.shape[1]
    med = np.median(ts, axis=1, keepdims=True)
    mad = np.median(np.abs(ts - med), axis=1, keepdims=True)
    alpha = stats.norm.isf(0.001 / nt)
    out = np.abs(ts - med) > alpha * np.sqrt(np.pi / 2) * mad
    return out.mean(axis=0)


def ghost_to_signal(mean: Array, mask: Array, axis: int) -> float:
    """GSR (Giannelli 2010) along ``axis`` (0: x, 1: y) as MRIQC: ghost minus background
    mean over the median signal."""
    ghost = np.roll(mask, mask.shape[axis] // 2, axis=axis) & ~mask
    background = ~mask & ~ghost
    if not ghost.any() or not background.any():
        return 0.0
    signal = float(np.median(mean[mask]))
    return float((mean[ghost].mean() - mean[background].mean()) / signal) if signal else 0.0


def global_correlation(series: Array, mask: Array) -> float:
    """GCOR (Saad 2013): squared norm of the mean unit-variance time series."""
    ts = series[mask]
    ts = ts - ts.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(ts, axis=1, keepdims=True)
    ts = ts[norm[:, 0] > 0] / norm[norm[:, 0] > 0]
    return float(np.sum(ts.mean(axis=0) ** 2)) if ts.size else 0.0


def func_metrics(series: Array, zooms: tuple[float, ...]) -> FuncQC:
    """MRIQC-style metrics of a 4D BOLD series (x, y, z, t) in RAS+ orientation."""
    if series.ndim != 4 or series.shape[3] < 2:
        raise BadInput(f"not a 4D BOLD series with at least 2 volumes (shape {series.shape})")
    series = np.clip(series, 0, None)
    mean = series.mean(axis=3)
    mask = head_mask(mean)
    sd = series.std(axis=3)
    tsnr_map = np.where(sd > 0, mean / np.where(sd > 0, sd, 1), 0.0)
    params = rigid_motion(series, zooms)
    fd = framewise_displacement(params)
    dv = dvars(series, mask)
    aor = outlier_fraction(series, mask)
    m: dict[str, Any] = {
        "tsnr": float(np.median(tsnr_map[mask])),
        "dvars_nstd": float(dv["nstd"].mean()) if dv["nstd"].size else 0.0,
        "dvars_std": float(dv["std"].mean()) if dv["std"].size else 0.0,
        "dvars_vstd": float(dv["vstd"].mean()) if dv["vstd"].size else 0.0,
        "fd_mean": float(fd[1:].mean()),
        "fd_num": int(np.sum(fd > FD_THRESHOLD_MM)),
        "fd_perc": float(100.0 * np.sum(fd > FD_THRESHOLD_MM) / len(fd)),
        "gsr_x": ghost_to_signal(mean, mask, 0),
        "gsr_y": ghost_to_signal(mean, mask, 1),
        "aor": float(aor.mean()),
        "gcor": global_correlation(series, mask),
        "summary_fg_mean": float(mean[mask].mean()),
        "summary_fg_median": float(np.median(mean[mask])),
        "summary_fg_stdv": float(mean[mask].std()),
        "summary_bg_mean": float(mean[~mask].mean()) if (~mask).any() else 0.0,
        "summary_bg_stdv": float(mean[~mask].std()) if (~mask).any() else 0.0,
        "size_x": int(series.shape[0]),
        "size_y": int(series.shape[1]),
        "size_z": int(series.shape[2]),
        "size_t": int(series.shape[3]),
        "spacing_x": float(zooms[0]),
        "spacing_y": float(zooms[1]),
        "spacing_z": float(zooms[2]),
        "spacing_tr": float(zooms[3]) if len(zooms) > 3 else 0.0,
    } | fwhm(mean, mask, zooms)
    m["segmentation"] = SEGMENTATION_METHOD
    m["motion"] = "SimpleITK Euler3D registration to volume 1, half resolution"
    timeseries = {
        "framewise_displacement": [float(f"{v:.6g}") for v in fd],
        "dvars_std": [0.0, *(float(f"{v:.6g}") for v in dv["std"])],
        "dvars_nstd": [0.0, *(float(f"{v:.6g}") for v in dv["nstd"])],
        "aor": [float(f"{v:.6g}") for v in aor],
    }
    for i, name in enumerate(("rot_x", "rot_y", "rot_z", "trans_x", "trans_y", "trans_z")):
        timeseries[name] = [float(f"{v:.6g}") for v in params[:, i]]
    return FuncQC(Path(), rounded(m), timeseries, mean, tsnr_map, mask)


def func_qc(path: Path) -> FuncQC:
    """Read a 4D BOLD NIfTI and compute its metrics.

    Raises
    ------
    BadInput
        The file is not a readable 4D series.
    """
    data, zooms = load_canonical(Path(path))
    try:
        result = func_metrics(data, zooms)
    except BadInput as exc:
        raise BadInput(exc.message, path) from None
    result.path = Path(path)
    return result
