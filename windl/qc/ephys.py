"""EEG/MEG quality metrics with MNE-Python.

Per recording: duration, sampling rate, channel counts per type; the line-noise power ratio
(Welch PSD at the power-line frequency over the flanking bands); flat channels (no signal:
peak-to-peak 0, or SD below 1/1000 of the median SD of their type) and noisy channels
(robust z-score of log SD above 5, the "deviation" criterion of the PREP pipeline,
Bigdely-Shamlo et al. 2015) — both by name; amplitude ranges per channel type; event
counts per type (annotations and stim-channel events); for MEG the device-to-head
transform (head origin distance from the device origin), HPI coils found by MNE
(:func:`mne.chpi.get_chpi_info`), the CTF/4D compensation grade and the reference
channels (count, flat ones).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from windl.errors import BadInput
from windl.qc.common import Array, rounded

DATA_TYPES = ("eeg", "mag", "grad", "ref_meg", "ecg", "eog", "emg", "seeg", "ecog")
NOISY_Z = 5.0
FLAT_RATIO = 1e-3


@dataclass
class EphysQC:
    """Metrics of one EEG/MEG recording, plus what the report draws."""

    path: Path
    metrics: dict[str, Any]
    psd_freqs: Array = field(repr=False)
    psd: dict[str, Array] = field(repr=False)  # channel type → channels x freqs (log10)
    channel_sd: dict[str, float] = field(default_factory=dict, repr=False)


def read_raw(path: Path) -> Any:
    """Read any MNE-supported raw file (BrainVision .vhdr, EDF, FIF, …), data preloaded."""
    import mne

    try:
        return mne.io.read_raw(str(path), preload=True, verbose="error")
    except Exception as exc:  # MNE raises many types on unreadable files
        raise BadInput(f"cannot read EEG/MEG recording: {exc}", path) from None


def line_noise_ratio(freqs: Array, psd: Array, line_freq: float) -> Array:
    """Per channel: mean power within ±1 Hz (or one bin) of ``line_freq`` over the mean power
    in the flanking bands 2-6 Hz away from it (1 = no line noise)."""
    step = float(freqs[1] - freqs[0]) if freqs.size > 1 else 1.0
    half = max(1.0, step / 2 + 1e-9)
    at = np.abs(freqs - line_freq) <= half
    off = np.abs(freqs - line_freq)
    flank = (off >= max(2.0, 1.5 * step)) & (off <= max(6.0, 3.5 * step))
    if not at.any() or not flank.any():
        return np.full(psd.shape[0], np.nan)
    base = psd[:, flank].mean(axis=1)
    return np.where(base > 0, psd[:, at].mean(axis=1) / np.where(base > 0, base, 1), np.nan)


def _robust_z(values: Array) -> Array:
    med = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - med))
    return (values - med) / mad if mad > 0 else np.zeros_like(values)


def ephys_metrics(raw: Any, line_freq: float | None = None) -> EphysQC:
    """Metrics of an MNE Raw (data loaded); ``line_freq`` defaults to the recording's, or 50."""
    import mne

    freq = float(line_freq or raw.info.get("line_freq") or 50.0)
    sfreq = float(raw.info["sfreq"])
    types = raw.get_channel_types()
    m: dict[str, Any] = {
        "duration_s": float(raw.n_times / sfreq),
        "sampling_frequency": sfreq,
        "n_channels": len(raw.ch_names),
        "power_line_frequency": freq,
    }
    for kind, n in sorted(Counter(types).items()):
        m[f"n_{kind}"] = n
    data = raw.get_data()
    flat: list[str] = []
    noisy: list[str] = []
    channel_sd: dict[str, float] = {}
    psd_by_type: dict[str, Array] = {}
    line_ratios: list[float] = []
    n_fft = int(min(raw.n_times, 2 ** int(np.ceil(np.log2(sfreq)))))  # ≈1 Hz resolution
    freqs = np.zeros(0)
    for kind in DATA_TYPES:
        picks = [i for i, t in enumerate(types) if t == kind]
        if not picks:
            continue
        x = data[picks]
        sd = x.std(axis=1)
        ptp = np.ptp(x, axis=1)
        floor = FLAT_RATIO * float(np.median(sd[sd > 0])) if np.any(sd > 0) else 0.0
        is_flat = (ptp == 0) | (sd <= floor)
        flat += [raw.ch_names[p] for p, f in zip(picks, is_flat, strict=True) if f]
        live = ~is_flat
        z = np.zeros(len(picks))
        # reference channels mix magnetometers and gradiometers: no common scale
        if live.sum() >= 4 and kind != "ref_meg":
            z[live] = _robust_z(np.log(sd[live]))
        noisy += [raw.ch_names[p] for p, zz in zip(picks, z, strict=True) if zz > NOISY_Z]
        channel_sd |= {raw.ch_names[p]: float(s) for p, s in zip(picks, sd, strict=True)}
        m[f"{kind}_ptp_min"] = float(ptp[live].min()) if live.any() else 0.0
        m[f"{kind}_ptp_median"] = float(np.median(ptp[live])) if live.any() else 0.0
        m[f"{kind}_ptp_max"] = float(ptp[live].max()) if live.any() else 0.0
        if freq < sfreq / 2 - 2:
            psd, freqs = mne.time_frequency.psd_array_welch(
                x, sfreq, fmin=0.0, fmax=min(sfreq / 2, 2.5 * freq), n_fft=n_fft,
                n_overlap=n_fft // 2, verbose="error",
            )  # fmt: skip
            ratio = line_noise_ratio(freqs, psd[live], freq)
            ratio = ratio[np.isfinite(ratio)]
            m[f"{kind}_line_noise_ratio"] = float(np.median(ratio)) if ratio.size else 0.0
            line_ratios += list(ratio)
            psd_by_type[kind] = np.log10(np.where(psd > 0, psd, np.nan))
    m["line_noise_ratio"] = float(np.median(line_ratios)) if line_ratios else 0.0
    m["line_noise_db"] = float(10 * np.log10(m["line_noise_ratio"])) if line_ratios else 0.0
    m["n_flat_channels"] = len(flat)
    m["flat_channels"] = ",".join(flat)
    m["n_noisy_channels"] = len(noisy)
    m["noisy_channels"] = ",".join(noisy)
    m |= _events(raw)
    if any(t in ("mag", "grad") for t in types):
        m |= _meg_checks(raw, flat)
    return EphysQC(Path(), rounded(m), freqs, psd_by_type, channel_sd)


def _events(raw: Any) -> dict[str, Any]:
    import mne

    counts: Counter[str] = Counter(str(d) for d in raw.annotations.description)
    stim = [ch for ch, t in zip(raw.ch_names, raw.get_channel_types(), strict=True) if t == "stim"]
    if stim:
        try:
            events = mne.find_events(raw, stim_channel=stim, verbose="error")
        except ValueError:
            events = np.zeros((0, 3), dtype=int)
        counts.update(f"stim/{int(code)}" for code in events[:, 2])
    out: dict[str, Any] = {"n_events": sum(counts.values())}
    out["events"] = ";".join(f"{k}={v}" for k, v in sorted(counts.items()))
    return out


def _meg_checks(raw: Any, flat: list[str]) -> dict[str, Any]:
    import mne

    info = raw.info
    # not MNE's name "dev_head_t": a site's scanner may be called DEV, and the release audit
    # rightly flags any token that equals an original identifier
    out: dict[str, Any] = {"device_head_transform": info["dev_head_t"] is not None}
    if info["dev_head_t"] is not None:
        trans = np.asarray(info["dev_head_t"]["trans"])
        # head origin in device coordinates: inverse of the device→head transform
        origin = -trans[:3, :3].T @ trans[:3, 3]
        out["head_origin_distance_mm"] = float(1000 * np.linalg.norm(origin))
    try:
        hpi_freqs, _, _ = mne.chpi.get_chpi_info(info, on_missing="ignore", verbose="error")
        out["n_hpi_coils"] = len(hpi_freqs)
    except Exception:  # not every system stores HPI information
        out["n_hpi_coils"] = 0
    out["n_dig_points"] = len(info["dig"] or [])
    out["compensation_grade"] = int(raw.compensation_grade or 0)
    refs = [ch for ch, t in zip(raw.ch_names, raw.get_channel_types(), strict=True)
            if t == "ref_meg"]  # fmt: skip
    out["n_ref_meg"] = len(refs)
    out["flat_ref_meg"] = ",".join(ch for ch in refs if ch in flat)
    return out


def ephys_qc(path: Path, line_freq: float | None = None) -> EphysQC:
    """Read an EEG/MEG file and compute its metrics.

    Raises
    ------
    BadInput
        MNE cannot read the file.
    """
    raw = read_raw(Path(path))
    result = ephys_metrics(raw, line_freq)
    result.path = Path(path)
    return result
