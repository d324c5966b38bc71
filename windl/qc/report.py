"""Self-contained HTML QC reports: one per recording, one per dataset (base64 PNG plots).

Plots: anatomical mosaics with the tissue segmentation outlined; the mean EPI and tSNR map;
FD / DVARS / outlier traces; channel PSDs per channel type; and, per dataset, each metric's
distribution with every recording marked. PNGs are written without timestamps, so the same
data give the same bytes (``datalad rerun`` reproduces the reports).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from windl.files import atomic_write_text
from windl.qc.common import SEGMENTATION_METHOD, Array

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
    "text-align:left;font-size:90%}img{max-width:100%}.warn{color:#b00}"
)


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (10, 4)) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=80)
    FigureCanvasAgg(fig)
    return fig


def _uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Any, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{_uri(fig)}">'


def mosaic(volume: Array, labels: Array | None = None, n: int = 12, title: str = "") -> Any:
    """Axial slices of ``volume`` (RAS) in a grid; tissue label outlines on top if given."""
    fig = _figure(size=(12, 3.2 * int(np.ceil(n / 6))))
    z = np.linspace(0.15, 0.85, n) * (volume.shape[2] - 1)
    vmax = float(np.percentile(volume, 99.5)) or 1.0
    for i, zi in enumerate(z.astype(int)):
        ax = fig.add_subplot(int(np.ceil(n / 6)), 6, i + 1)
        ax.imshow(volume[:, :, zi].T, origin="lower", cmap="gray", vmin=0, vmax=vmax)
        if labels is not None:
            for k, colour in ((1, "tab:blue"), (2, "tab:orange"), (3, "tab:red")):
                plane = (labels[:, :, zi] == k).T.astype(float)
                if plane.any() and not plane.all():
                    ax.contour(plane, levels=[0.5], colors=[colour], linewidths=0.6)
        ax.set_axis_off()
        ax.set_title(f"z={zi}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def traces(series: Mapping[str, Sequence[float]], names: Sequence[str]) -> Any:
    fig = _figure(len(names), 1, size=(10, 1.8 * len(names)))
    for i, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, i + 1)
        ax.plot(series[name], marker=".", lw=1)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    fig.axes[-1].set_xlabel("volume")
    fig.tight_layout()
    return fig


def psd_plot(freqs: Array, psd: Mapping[str, Array], line_freq: float) -> Any:
    fig = _figure(1, max(len(psd), 1), size=(5 * max(len(psd), 1), 3.5))
    for i, (kind, values) in enumerate(sorted(psd.items())):
        ax = fig.add_subplot(1, max(len(psd), 1), i + 1)
        ax.plot(freqs, values.T, lw=0.5, alpha=0.5, color="k")
        ax.axvline(line_freq, color="r", ls="--", lw=1)
        ax.set_title(f"{kind}: PSD per channel (log10)")
        ax.set_xlabel("Hz")
    fig.tight_layout()
    return fig


def _table(metrics: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in metrics.items()
    )
    return f"<table>{rows}</table>"


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def recording_report(rel: str, kind: str, qc: Any, html_path: Path) -> Path:
    """Write the HTML report of one recording (``qc``: AnatQC, FuncQC or EphysQC)."""
    parts = [f"<p>{html.escape(kind)} file <code>{html.escape(rel)}</code></p>"]
    if kind in ("T1w", "T2w"):
        parts.append(
            "<h2>Slices with the tissue segmentation</h2>"
            f"<p>Outlines: csf (blue), gm (orange), wm (red). Segmentation: "
            f"{html.escape(SEGMENTATION_METHOD)}.</p>"
            + _img(mosaic(qc.volume, qc.labels), "mosaic")
        )
    elif kind == "bold":
        parts.append(
            "<h2>Mean EPI with the brain mask</h2>"
            + _img(mosaic(qc.mean, qc.mask.astype(np.uint8) * 3), "mean EPI")
        )
        parts.append("<h2>tSNR map</h2>" + _img(mosaic(qc.tsnr_map), "tSNR"))
        parts.append(
            "<h2>Framewise displacement, DVARS, outliers</h2>"
            + _img(traces(qc.timeseries, ["framewise_displacement", "dvars_std", "aor"]), "traces")
        )
    else:
        flat = qc.metrics.get("flat_channels") or "none"
        noisy = qc.metrics.get("noisy_channels") or "none"
        parts.append(
            f"<p>Flat channels: <b>{html.escape(flat)}</b>; noisy channels: "
            f"<b>{html.escape(noisy)}</b></p>"
        )
        if qc.psd:
            parts.append(
                "<h2>Channel power spectra</h2>"
                + _img(psd_plot(qc.psd_freqs, qc.psd, qc.metrics["power_line_frequency"]), "PSD")
            )
    parts.append("<h2>Metrics</h2>" + _table(qc.metrics))
    return atomic_write_text(html_path, _page(f"QC: {Path(rel).name}", "".join(parts)))


def distributions(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> Any:
    """One strip plot per metric; every recording a dot, labelled by its subject."""
    cols = 4
    nrows = int(np.ceil(len(metrics) / cols))
    fig = _figure(size=(12, 2.6 * nrows))
    for i, name in enumerate(metrics):
        ax = fig.add_subplot(nrows, cols, i + 1)
        values = [float(r[name]) for r in rows]
        ax.boxplot(values, vert=False, widths=0.5)
        ax.scatter(values, np.ones(len(values)), color="tab:red", zorder=3, s=18)
        for r, v in zip(rows, values, strict=True):
            ax.annotate(str(r["bids_name"]).split("_")[0], (v, 1.12), fontsize=6, rotation=30)
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


KEY_METRICS = {
    "T1w": ["snr_total", "cnr", "cjv", "efc", "fber", "wm2max", "fwhm_avg", "snrd_total"],
    "T2w": ["snr_total", "cnr", "cjv", "efc", "fber", "wm2max", "fwhm_avg", "snrd_total"],
    "bold": ["tsnr", "dvars_std", "fd_mean", "fd_perc", "gsr_x", "gsr_y", "aor", "fwhm_avg"],
    "eeg": [
        "duration_s",
        "sampling_frequency",
        "line_noise_ratio",
        "n_flat_channels",
        "n_noisy_channels",
        "eeg_ptp_median",
        "n_events",
    ],
    "meg": [
        "duration_s",
        "sampling_frequency",
        "line_noise_ratio",
        "n_flat_channels",
        "n_noisy_channels",
        "mag_ptp_median",
        "head_origin_distance_mm",
    ],
}


def dataset_report(
    groups: Mapping[str, Sequence[Mapping[str, Any]]], html_path: Path, note: str = ""
) -> Path:
    """Write the dataset report: per kind, metric distributions and a table with links.

    A row links its per-file report when its ``report`` is set; ``note`` is shown on top.
    """
    parts = [f"<p>{html.escape(note)}</p>"] if note else []
    parts.append(
        f"<p>Segmentation: {html.escape(SEGMENTATION_METHOD)}. Metric definitions: "
        "MRIQC (Esteban et al. 2017); EEG/MEG: MNE-Python.</p>"
    )
    for kind, rows in sorted(groups.items()):
        if not rows:
            continue
        names = [k for k in KEY_METRICS.get(kind, []) if all(k in r for r in rows)]
        parts.append(f"<h2>{html.escape(kind)} ({len(rows)})</h2>")
        if names:
            parts.append(_img(distributions(rows, names), f"{kind} distributions"))
        head = "".join(f"<th>{html.escape(n)}</th>" for n in ["recording", *names])
        body = "".join(
            f"<tr><td>{_link(r)}</td>"
            + "".join(f"<td>{html.escape(str(r[n]))}</td>" for n in names)
            + "</tr>"
            for r in rows
        )
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return atomic_write_text(html_path, _page("QC: dataset", "".join(parts)))


def _link(row: Mapping[str, Any]) -> str:
    name = html.escape(str(row["bids_name"]))
    report = row.get("report")
    return f"<a href='{html.escape(report)}'>{name}</a>" if report else name
