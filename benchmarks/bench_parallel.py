"""Benchmark ``windl convert --jobs 2`` against ``--jobs 1`` on a multi-session study.

What is measured
----------------
Wall-clock time (:func:`time.perf_counter`) of ``windl convert STUDY --jobs N`` (the CLI,
``python -m windl``, as a user runs it) on copies of one site whose study holds the
sessions below, ingested once from the real DICOM in the shared data folder (setup, not
timed):

===========  =================================================
sub-01, 07   GE DISCOVERY MR750 EPI (dcm_qa_nih, 600 files)
sub-02, 08   Siemens Skyra EPI mosaics (dcm_qa_nih)
sub-03       Philips Achieva (dcm_qa_philips_magdeburg)
sub-04       Siemens XA10 enhanced multi-frame (dcm_qa_enh_subset)
sub-05       Philips enhanced B0 map (dcm_qa_enh_subset)
sub-06       heudiconv's own test DICOMs (Siemens E11/XA30/XA60/B17)
===========  =================================================

Each repetition copies the ingested site twice and converts one copy with ``--jobs 1``
(sessions one after the other in the study, the default) and the other with ``--jobs 2``
(each session a job in a worktree of its own, records replayed in order), alternating
which goes first. Before any time is used, each run must exit 0 and both copies must end
with the same study tree (``HEAD^{tree}``: every file byte-identical) and the same run
records; otherwise the script exits non-zero and reports no speed.

The machine's load average is recorded before and after each run: these machines have
2 cores and are shared, so a busy neighbour slows ``--jobs 2`` most (it needs both cores).
The CPU time (user + system of windl and every process it waited for) does not depend on
the neighbours; ``N * cpu(--jobs 1) / cpu(--jobs N)`` bounds the speedup on N idle cores.

Usage
-----
``python benchmarks/bench_parallel.py [--repeat N] [--jobs 2] [--data DIR] [--tmpdir DIR]``

Prints a table (median over the repetitions) and writes ``benchmarks/results/parallel.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "parallel.json"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"
SESSIONS = {
    "01": "dcm_qa_nih/In/20180918GE",
    "02": "dcm_qa_nih/In/20180918Si",
    "03": "dcm_qa_philips_magdeburg/In/Magdeburg_2014",
    "04": "dcm_qa_enh_subset/In/Siemens",
    "05": "dcm_qa_enh_subset/In/Philips",
    "06": "heudiconv_testdata/data",
    "07": "dcm_qa_nih/In/20180918GE",
    "08": "dcm_qa_nih/In/20180918Si",
}
WINDL = [sys.executable, "-m", "windl"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONPATH", str(HERE.parent))
    return env


def _windl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*WINDL, *map(str, args)], capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        sys.exit(f"windl {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def _git(ds: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def _children_cpu() -> float:
    # user + system time of every finished child process (and the ones they waited for)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_site(root: Path, data: Path) -> Path:
    site = root / "ingested"
    _windl("site", "init", site)
    _windl("study", "create", "bench", "--site", site)
    for subject, source in SESSIONS.items():
        _windl("ingest", "bench", data / source, "--subject", subject, "--site", site)
    return site


def convert(template: Path, target: Path, jobs: int) -> dict[str, float | str]:
    shutil.copytree(template, target, symlinks=True)
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    _windl("convert", "bench", "--jobs", str(jobs), "--site", target)
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    study = target / "superdataset" / "studies" / "bench"
    return {
        "seconds": seconds,
        "cpu": cpu,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "tree": _git(study, "rev-parse", "HEAD^{tree}").strip(),
        "records": _git(study, "log", "--format=%B", "-n", str(2 * len(SESSIONS))),
        "nifti": str(len(list(study.glob("sub-*/*/*.nii.gz")))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tmpdir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="windl-bench-parallel-", dir=args.tmpdir))
    try:
        template = build_site(root, args.data)
        runs: dict[int, list[dict[str, float | str]]] = {1: [], args.jobs: []}
        for rep in range(args.repeat):
            order = (1, args.jobs) if rep % 2 == 0 else (args.jobs, 1)
            for jobs in order:
                runs[jobs].append(convert(template, root / f"r{rep}-j{jobs}", jobs))
                run = runs[jobs][-1]
                print(f"rep {rep + 1}: --jobs {jobs}: {run['seconds']:.1f} s, "
                      f"CPU {run['cpu']:.1f} s (load {run['load_before']:.2f})")  # fmt: skip
            one, many = runs[1][-1], runs[args.jobs][-1]
            if one["tree"] != many["tree"] or one["records"] != many["records"]:
                sys.exit(f"rep {rep + 1}: --jobs {args.jobs} made other files or records")
        median = {j: statistics.median(float(r["seconds"]) for r in rs) for j, rs in runs.items()}
        cpu = {j: statistics.median(float(r["cpu"]) for r in rs) for j, rs in runs.items()}
        speedup = median[1] / median[args.jobs]
        # on an idle machine with N cores, N jobs can at best split the CPU work N ways
        bound = args.jobs * cpu[1] / cpu[args.jobs]
        loads = [
            float(r[k]) for rs in runs.values() for r in rs for k in ("load_before", "load_after")
        ]
        print(f"\n{len(SESSIONS)} sessions, {runs[1][0]['nifti']} NIfTI, nproc {os.cpu_count()}")
        print(f"--jobs 1: {median[1]:.1f} s   --jobs {args.jobs}: {median[args.jobs]:.1f} s   "
              f"speedup {speedup:.2f}x (median of {args.repeat})")  # fmt: skip
        print(f"CPU time: --jobs 1: {cpu[1]:.1f} s   --jobs {args.jobs}: {cpu[args.jobs]:.1f} s "
              f"(speedup bound on {args.jobs} idle cores: {bound:.2f}x)")  # fmt: skip
        print(f"load average during the runs: {min(loads):.2f} .. {max(loads):.2f}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
            "sessions": len(SESSIONS),
            "seconds": {str(j): [float(r["seconds"]) for r in rs] for j, rs in runs.items()},
            "median": {str(j): m for j, m in median.items()},
            "cpu_seconds": {str(j): [float(r["cpu"]) for r in rs] for j, rs in runs.items()},
            "speedup": speedup,
            "speedup_bound_idle": bound,
            "load_average": [min(loads), max(loads)],
        }, indent=1) + "\n")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
