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
import json
import re
from pathlib import Path
from typing import Any

from windl.qc import QC_DIR, find_recordings
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
    out_dir.mkdir(parents=True, exist_ok=True)
    name = _bids_name(rel)
    if kind in ("T1w", "T2w"):
        from windl.qc.anat import anat_qc

        qc: Any = anat_qc(root / rel)
    elif kind == "bold":
        from windl.qc.func import func_qc

        qc = func_qc(root / rel)
        with (out_dir / f"{name}_timeseries.tsv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(list(qc.timeseries))
            writer.writerows(zip(*qc.timeseries.values(), strict=True))
    else:
        from windl.qc.ephys import ephys_qc

        qc = ephys_qc(root / rel, _line_freq(root, rel))
    metrics = {"bids_name": name, "source": rel, **qc.metrics}
    (out_dir / f"{name}_qc.json").write_text(
        json.dumps(metrics, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    report.recording_report(rel, kind, qc, out_dir / f"{name}_qc.html")
    return metrics


def write_groups(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Rebuild every group TSV and the dataset report from the per-file JSON files."""
    from windl.qc import report

    qc_root = root / QC_DIR
    kinds = dict(find_recordings(root))
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(qc_root.glob("sub-*/**/*_qc.json")):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        kind = kinds.get(metrics.get("source", ""))
        if kind is None:  # its source file is gone
            continue
        metrics["report"] = path.with_suffix(".html").relative_to(qc_root).as_posix()
        groups.setdefault(kind, []).append(metrics)
    for stale in qc_root.glob("group_*.tsv"):
        stale.unlink()
    for kind, rows in groups.items():
        columns = list(dict.fromkeys(k for r in rows for k in r if k != "report"))
        with (qc_root / f"group_{kind}.tsv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(
                fh, columns, delimiter="\t", lineterminator="\n", restval="n/a",
                extrasaction="ignore",
            )  # fmt: skip
            writer.writeheader()
            writer.writerows(rows)
    report.dataset_report(groups, qc_root / "group_qc.html")
    return groups


def run_step(root: Path, subject: str | None = None) -> int:
    from importlib.metadata import version

    qc_root = root / QC_DIR
    qc_root.mkdir(parents=True, exist_ok=True)
    (qc_root / "dataset_description.json").write_text(
        json.dumps(_description(version("windl")), indent=2) + "\n", encoding="utf-8"
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
