"""QC metrics on the real shared data, and degraded copies of it move the right metric."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from windl.errors import BadInput
from windl.qc.anat import anat_metrics, anat_qc
from windl.qc.common import load_canonical
from windl.qc.ephys import ephys_metrics, ephys_qc, read_raw
from windl.qc.func import func_metrics, func_qc

T1W = "pydeface_t1w_face/ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
GE_BOLD = "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii"  # GE MR750, 64x64x15x10
SIEMENS_EPI = "dcm_qa_nih/Ref/EPI_PE=AP_3.nii"  # Siemens Skyra, 72x72x5x2
EEG_FILES = ("mne_testfiles/brainvision/test.vhdr", "mne_testfiles/edf/test.edf")
MEG_FILE = "mne_testfiles/fif/test_ctf_comp_raw.fif"


def _finite(metrics: dict) -> None:
    for key, value in metrics.items():
        if isinstance(value, float):
            assert math.isfinite(value), key


@pytest.fixture(scope="module")
def t1w(data: Path):
    return anat_qc(data / T1W)


def test_t1w_metrics_are_finite_and_plausible(t1w) -> None:
    m = t1w.metrics
    _finite(m)
    assert 2 < m["snr_total"] < 50
    assert 0.5 < m["cnr"] < 10
    assert 0.2 < m["cjv"] < 1.5
    assert 0.2 < m["efc"] < 0.9
    assert m["fber"] > 100
    assert 0.3 < m["wm2max"] < 1.0
    assert 1.0 < m["fwhm_avg"] < 8.0
    assert (
        m["summary_wm_mean"] > m["summary_gm_mean"] > m["summary_csf_mean"] > m["summary_bg_mean"]
    )
    assert "k-means" in m["segmentation"] and "Otsu" in m["segmentation"]


def test_noise_added_to_t1w_lowers_snr_and_cnr_and_raises_cjv(data: Path, t1w) -> None:
    volume, zooms = load_canonical(data / T1W)
    rng = np.random.default_rng(0)
    noisy = volume + rng.normal(0, 0.3 * t1w.metrics["summary_wm_median"], volume.shape)
    degraded, _ = anat_metrics(noisy, zooms)
    assert degraded["snr_wm"] < t1w.metrics["snr_wm"]
    assert degraded["cnr"] < t1w.metrics["cnr"]
    assert degraded["cjv"] > t1w.metrics["cjv"]
    assert degraded["fber"] < t1w.metrics["fber"]
    assert degraded["snrd_total"] < t1w.metrics["snrd_total"]


@pytest.mark.parametrize("name", [GE_BOLD, SIEMENS_EPI])
def test_bold_metrics_are_finite_and_plausible(data: Path, name: str) -> None:
    q = func_qc(data / name)
    m = q.metrics
    _finite(m)
    assert m["tsnr"] > 1
    assert m["dvars_std"] > 0 and m["dvars_nstd"] > 0
    assert 0 <= m["fd_mean"] < 50 and 0 <= m["fd_perc"] <= 100
    assert -1 < m["gsr_x"] < 1 and -1 < m["gsr_y"] < 1
    assert 0 <= m["aor"] < 0.5
    assert 0 < m["fwhm_avg"] < 30
    assert len(q.timeseries["framewise_displacement"]) == m["size_t"]


def test_noise_lowers_tsnr_and_a_zeroed_slice_raises_outliers_and_dvars(data: Path) -> None:
    series, zooms = load_canonical(data / GE_BOLD)
    base = func_metrics(series, zooms)
    rng = np.random.default_rng(0)
    noisy = series + rng.normal(0, 0.2 * base.metrics["summary_fg_median"], series.shape)
    assert func_metrics(noisy, zooms).metrics["tsnr"] < 0.8 * base.metrics["tsnr"]
    zeroed = series.copy()
    zeroed[:, :, 7, 5] = 0
    hit = func_metrics(zeroed, zooms)
    assert hit.metrics["aor"] > base.metrics["aor"]
    assert hit.timeseries["aor"][5] > base.timeseries["aor"][5] + 0.02
    assert hit.timeseries["dvars_std"][5] > base.timeseries["dvars_std"][5]
    assert hit.metrics["dvars_nstd"] > base.metrics["dvars_nstd"]


def test_moved_volume_raises_framewise_displacement(data: Path) -> None:
    series, zooms = load_canonical(data / SIEMENS_EPI)
    still = series[..., [0, 0, 0]]
    moved = still.copy()
    moved[..., 2] = np.roll(still[..., 2], 1, axis=0)  # 3 mm shift in x
    assert func_metrics(still, zooms).metrics["fd_mean"] < 0.05
    fd = func_metrics(moved, zooms).timeseries["framewise_displacement"]
    assert 2.0 < fd[2] < 4.0


def test_a_3d_image_is_not_a_bold_series(data: Path) -> None:
    with pytest.raises(BadInput, match="4D"):
        func_qc(data / T1W)


@pytest.mark.parametrize("name", EEG_FILES)
def test_eeg_metrics_are_finite_and_plausible(data: Path, name: str) -> None:
    m = ephys_qc(data / name).metrics
    _finite(m)
    assert 1 < m["duration_s"] < 60 and m["sampling_frequency"] >= 250
    assert m["n_eeg"] > 10 and m["n_flat_channels"] == 0
    assert 0 < m["eeg_ptp_median"] < 0.01  # volts
    assert m["line_noise_ratio"] >= 0 and m["n_events"] > 0


def test_meg_checks_report_head_position_and_references(data: Path) -> None:
    m = ephys_qc(data / MEG_FILE).metrics
    _finite(m)
    assert m["n_mag"] == 274 and m["n_ref_meg"] == 29
    assert m["device_head_transform"] is True and 20 < m["head_origin_distance_mm"] < 200
    assert m["compensation_grade"] == 3 and m["flat_ref_meg"] == ""
    assert 0 < m["mag_ptp_median"] < 1e-9  # tesla


def test_a_flat_eeg_channel_is_named_and_50_hz_raises_line_noise(data: Path) -> None:
    raw = read_raw(data / EEG_FILES[1])
    base = ephys_metrics(raw, 50.0).metrics
    flat = raw.copy()
    flat._data[flat.ch_names.index("A5")] = 0.0
    m = ephys_metrics(flat, 50.0).metrics
    assert m["flat_channels"] == "A5" and m["n_flat_channels"] == 1
    hum = raw.copy()
    eeg = [i for i, t in enumerate(raw.get_channel_types()) if t == "eeg"]
    amplitude = 2 * np.median(raw.get_data(picks=eeg).std(axis=1))
    hum._data[eeg] += amplitude * np.sin(2 * np.pi * 50.0 * raw.times)
    assert ephys_metrics(hum, 50.0).metrics["line_noise_ratio"] > 5 * base["line_noise_ratio"]


def test_an_unreadable_recording_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"not an edf")
    with pytest.raises(BadInput, match=r"broken\.edf"):
        ephys_qc(bad)


def test_an_image_without_a_head_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.int16), np.eye(4)), empty)
    with pytest.raises(BadInput, match=r"empty\.nii\.gz"):
        anat_qc(empty)
