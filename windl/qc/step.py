"""The step ``windl qc`` records with ``datalad run``: metrics + reports into derivatives/qc.

Layout (BIDS derivatives, MRIQC-like names)::

    derivatives/qc/dataset_description.json      GeneratedBy windl-qc
    derivatives/qc/sub-*/[ses-*/]<dtype>/<name>_qc.json          metrics of one file
    derivatives/qc/sub-*/[ses-*/]func/<name>_timeseries.tsv      FD, DVARS, AOR, motion
    derivatives/qc/sub-*/[ses-*/]<dtype>/<name>_qc.html          report of one file
    derivatives/qc/group_<T1w|T2w|bold|eeg|meg>.tsv              one row per file
    derivatives/qc/group_qc.html                                 the dataset report

Run from the study dataset root: ``python -m windl.qc.step [--subject S]``. The number of
worker processes comes from ``$WINDL_JOBS`` (default 1), not from the command line, so the
recorded command is the same whatever it was (see :mod:`windl.parallel`). Files whose
inputs are unchanged since their QC was computed are not computed again
(``.git/windl/qc-cache.json``, keyed by the inputs' git-annex keys).
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from windl.checkpoints import checkpoint
from windl.files import atomic_write_text
from windl.parallel import StepStatus, jobs_from_env, run_pool
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


#: the step's cache of finished files, in the dataset's git dir (never tracked, never
#: shipped): recording -> identity of its inputs and the outputs made from them
CACHE_FILE = Path(".git") / "windl" / "qc-cache.json"


def _code_identity() -> str:
    """windl's version and the QC code itself: other metric code, other results."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("windl").encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _file_identity(path: Path) -> str:
    """An annexed file's git-annex key (read from its link, no content read), else the
    sha256 of its bytes (small files in git)."""
    if path.is_symlink():
        target = os.readlink(path)
        if "annex/objects/" in target:
            return Path(target).name
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def input_identity(root: Path, rel: str, code: str) -> str:
    """Identity of what the QC of ``rel`` reads: the recording (every file of a folder
    recording such as CTF ``.ds``) and its companions ``<name>.*`` (sidecar with the
    power line frequency, BrainVision marker and data files)."""
    path = root / rel
    name = _bids_name(rel)
    files = {path} if not path.is_dir() else {p for p in path.rglob("*") if not p.is_dir()}
    files |= {p for p in path.parent.glob(f"{glob.escape(name)}.*") if not p.is_dir()}
    digest = hashlib.sha256(code.encode())
    for file in sorted(files):
        digest.update(f"\0{file.relative_to(root).as_posix()}\0{_file_identity(file)}".encode())
    return digest.hexdigest()


def _output_paths(root: Path, rel: str) -> list[Path]:
    """Every file :func:`qc_one` may write for ``rel``."""
    out_dir = root / QC_DIR / Path(rel).parent
    name = _bids_name(rel)
    return [out_dir / f"{name}{suffix}" for suffix in ("_qc.json", "_qc.html", "_timeseries.tsv")]


def _outputs_of(root: Path, rel: str) -> dict[str, str]:
    """sha256 of each output of ``rel`` now in the dataset (dataset-relative paths)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in _output_paths(root, rel)
        if p.is_file()
    }


def _load_cache(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(root: Path, cache: Mapping[str, Any]) -> None:
    if not (root / ".git").is_dir():  # a worktree or a plain copy: nowhere of our own to keep it
        return
    atomic_write_text(root / CACHE_FILE, json.dumps(cache, indent=1, sort_keys=True) + "\n")


def _compute(task: tuple[Path, str, str]) -> dict[str, str]:
    """Worker: QC of one file; returns the sha256 of what it wrote."""
    root, rel, kind = task
    qc_one(root, rel, kind)
    return _outputs_of(root, rel)


@dataclass
class StepSummary:
    """What one QC step did: files computed, reused from an earlier run, failed."""

    files: int
    computed: int
    reused: int
    failed: dict[str, str]


def run_step(root: Path, subject: str | None = None, jobs: int = 1) -> StepSummary:
    """Compute QC of the study at ``root`` (or one subject) and rebuild the group files.

    A file whose inputs and outputs are unchanged since its QC was computed (the step's
    cache, keyed by the inputs' git-annex keys) is not computed again, so a re-run only
    does new, changed and failed files. The others are computed by ``jobs`` worker
    processes; every file's result is the same whatever ``jobs`` is. A file whose QC
    fails does not stop the others: its earlier outputs are removed (they describe other
    input), it is left out of the group tables, and it is reported as failed.
    """
    from importlib.metadata import version

    qc_root = root / QC_DIR
    qc_root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        qc_root / "dataset_description.json",
        json.dumps(_description(version("windl")), indent=2) + "\n",
    )
    recordings = find_recordings(root, subject)
    status = StepStatus.from_env()
    status.start(len(recordings))
    code = _code_identity()
    cache = _load_cache(root)
    todo: list[tuple[str, str, str]] = []  # rel, kind, input identity
    reused = 0
    for rel, kind in recordings:
        identity = input_identity(root, rel, code)
        entry = cache.get(rel)
        if (
            isinstance(entry, dict)
            and entry.get("input") == identity
            and entry.get("outputs")
            and _outputs_of(root, rel) == entry["outputs"]
        ):
            reused += 1
            status.done(rel, reused=True)
        else:
            cache.pop(rel, None)
            todo.append((rel, kind, identity))
    if todo:
        # imported before the workers fork, so each worker does not import them again
        from windl.qc import anat, ephys, func, report  # noqa: F401

    sizes = [_size(root / rel) for rel, _, _ in todo]
    failed: dict[str, str] = {}
    tasks = [(root, rel, kind) for rel, kind, _ in todo]
    for outcome in run_pool(_compute, tasks, jobs, sizes):
        rel, _, identity = todo[outcome.index]
        if outcome.error is None and outcome.value is not None:
            cache[rel] = {"input": identity, "outputs": outcome.value}
        else:
            failed[rel] = outcome.error or "no result"
            for path in _output_paths(root, rel):
                path.unlink(missing_ok=True)
        status.done(rel, outcome.error)
    present = {rel for rel, _ in find_recordings(root)}
    _save_cache(root, {k: v for k, v in sorted(cache.items()) if k in present})
    # a kill here leaves a cache that names outputs the next run's recovery removes again
    checkpoint("qc-cached")
    write_groups(root)
    return StepSummary(
        len(recordings), len(todo) - len(failed), reused, dict(sorted(failed.items()))
    )


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m windl.qc.step")
    parser.add_argument("--subject", default=None)
    args = parser.parse_args(argv)
    summary = run_step(Path.cwd(), args.subject, jobs=jobs_from_env())
    # failures do not fail the step: the files that worked are recorded (datalad run saves
    # only after a command that succeeded) and the caller reports the failed ones
    for rel, error in summary.failed.items():
        print(f"qc failed: {rel}: {error}")
    print(
        f"qc: {summary.files} files ({summary.computed} computed, {summary.reused} unchanged, "
        f"{len(summary.failed)} failed)"
    )


if __name__ == "__main__":
    main()
