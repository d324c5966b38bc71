"""The step ``windl qc`` records with ``datalad run``: metrics + reports into derivatives/qc.

Layout (BIDS derivatives, MRIQC-like names)::

    derivatives/qc/dataset_description.json      GeneratedBy windl-qc
    derivatives/qc/sub-*/[ses-*/]<dtype>/<name>_qc.json          metrics of one file
    derivatives/qc/sub-*/[ses-*/]func/<name>_timeseries.tsv      FD, DVARS, AOR, motion
    derivatives/qc/sub-*/[ses-*/]<dtype>/<name>_qc.html          report of one file
    derivatives/qc/group_<T1w|T2w|bold|eeg|meg>.tsv              one row per file
    derivatives/qc/group_qc.html                                 the dataset report

Run from the study dataset root: ``python -m windl.qc.step [--subject S]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from windl.files import atomic_write_text
from windl.qc import DESCRIPTIVE_KEYS, QC_DIR, find_recordings, recording_kind
from windl.qc.common import SEGMENTATION_METHOD

SUFFIXES = re.compile(r"\.(nii\.gz|nii|vhdr|edf|bdf|set|fif|ds)$")


def _bids_name(rel: str) -> str:
    return SUFFIXES.sub("", Path(rel).name)


def _line_freq(root: Path, rel: str) -> float | None:
    sidecar = root / SUFFIXES.sub(".json", rel)
    if sidecar.exists():
        value = json.loads(sidecar.read_text(encoding="utf-8")).get("PowerLineFrequency")
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def _description(version: str) -> dict[str, Any]:
    return {
        "Name": "windl QC",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "windl-qc",
                "Version": version,
                "Description": "MRIQC-defined image quality metrics (Esteban et al. 2017) "
                f"reimplemented with numpy/scipy/SimpleITK; segmentation: {SEGMENTATION_METHOD}; "
                "EEG/MEG metrics with MNE-Python.",
            }
        ],
        "SourceDatasets": [{"URL": "../../"}],
    }


def qc_one(root: Path, rel: str, kind: str) -> dict[str, Any]:
    """Compute QC of one file, write its JSON (+ timeseries TSV) and HTML; return its row."""
    from windl.qc import report

    out_dir = root / QC_DIR / Path(rel).parent
    name = _bids_name(rel)
    if kind in ("T1w", "T2w"):
        from windl.qc.anat import anat_qc

        qc: Any = anat_qc(root / rel)
    elif kind == "bold":
        from windl.qc.func import func_qc

        qc = func_qc(root / rel)
        columns = list(qc.timeseries)
        rows = zip(*qc.timeseries.values(), strict=True)
        atomic_write_text(out_dir / f"{name}_timeseries.tsv", _tsv([columns, *rows]))
    else:
        from windl.qc.ephys import ephys_qc

        qc = ephys_qc(root / rel, _line_freq(root, rel))
    metrics = {"bids_name": name, "source": rel, **qc.metrics}
    atomic_write_text(out_dir / f"{name}_qc.json", json.dumps(metrics, indent=2) + "\n")
    report.recording_report(rel, kind, qc, out_dir / f"{name}_qc.html")
    return metrics


def _tsv(rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def group_rows(qc_root: Path, metric_files: Iterable[Path]) -> dict[str, list[dict[str, Any]]]:
    """Per kind, the rows of the per-file metric JSONs (``*_qc.json``) below ``qc_root``.

    A row's ``report`` is the per-file report's path relative to ``qc_root`` when that
    report exists (a release leaves some out), else ``None``.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(metric_files):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        kind = recording_kind(str(metrics.get("source", "")))
        if kind is None:
            continue
        page = path.with_name(path.name.removesuffix("_qc.json") + "_qc.html")
        metrics["report"] = page.relative_to(qc_root).as_posix() if page.is_file() else None
        groups.setdefault(kind, []).append(metrics)
    return groups


def group_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The text of a ``group_<kind>.tsv`` (format: :mod:`windl.qc`)."""
    skip = {"report", *DESCRIPTIVE_KEYS}
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in skip))

    def cell(value: Any) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, bool):
            return str(int(value))
        return str(value).replace("\t", " ").replace("\n", " ")

    return _tsv([columns, *([cell(r.get(c)) for c in columns] for r in rows)])


def write_group_files(
    groups: Mapping[str, Sequence[Mapping[str, Any]]], out: Path, note: str = ""
) -> list[Path]:
    """Write ``group_<kind>.tsv`` per kind and the dataset report ``group_qc.html`` to ``out``.

    ``note`` is shown at the top of the dataset report.
    """
    from windl.qc import report

    written = [
        atomic_write_text(out / f"group_{kind}.tsv", group_table(rows))
        for kind, rows in sorted(groups.items())
        if rows
    ]
    written.append(report.dataset_report(groups, out / "group_qc.html", note))
    return written


def write_groups(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Rebuild every group TSV and the dataset report from the per-file JSON files.

    Metrics of files no longer in the dataset are left out.
    """
    qc_root = root / QC_DIR
    present = {rel for rel, _ in find_recordings(root)}
    groups = group_rows(qc_root, qc_root.glob("sub-*/**/*_qc.json"))
    groups = {k: [r for r in rows if r["source"] in present] for k, rows in groups.items()}
    for stale in qc_root.glob("group_*.tsv"):
        stale.unlink()
    write_group_files(groups, qc_root)
    return groups


def run_step(root: Path, subject: str | None = None) -> int:
    from importlib.metadata import version

    qc_root = root / QC_DIR
    qc_root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        qc_root / "dataset_description.json",
        json.dumps(_description(version("windl")), indent=2) + "\n",
    )
    recordings = find_recordings(root, subject)
    for rel, kind in recordings:
        qc_one(root, rel, kind)
    write_groups(root)
    return len(recordings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m windl.qc.step")
    parser.add_argument("--subject", default=None)
    args = parser.parse_args(argv)
    n = run_step(Path.cwd(), args.subject)
    print(f"qc: {n} files")


if __name__ == "__main__":
    main()
