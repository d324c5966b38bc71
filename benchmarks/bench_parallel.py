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
With ``--idle-below L`` each run waits (at most ``--idle-wait`` seconds) until the 1-minute
load average is below L, so that wall-clock times are taken on an idle machine.
The CPU time (user + system of windl and every process it waited for) does not depend on
the neighbours; ``N * cpu(--jobs 1) / cpu(--jobs N)`` bounds the speedup on N idle cores.

The serial part of ``--jobs N`` comes from windl's checkpoint trace
(:mod:`windl.checkpoints`, timestamped): the time before the first job starts (Python
start-up, the up-to-date checks, DataLad's import) plus the time after the last job ends
(its replay, the superdataset's record, exit). With ``s`` that time over the ``--jobs 1``
wall time, Amdahl's law bounds the speedup on N cores by ``1 / (s + (1 - s) / N)``. The
trace also gives the tail: how long cores sat idle at the end because one job was still
running (core-seconds).

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


def _windl(*args: str | Path, trace: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = _env() | ({"WINDL_CHECKPOINT_FILE": str(trace)} if trace else {})
    proc = subprocess.run([*WINDL, *map(str, args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"windl {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def _git(ds: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def build_site(root: Path, data: Path) -> Path:
    site = root / "ingested"
    _windl("site", "init", site)
    _windl("study", "create", "bench", "--site", site)
    for subject, source in SESSIONS.items():
        _windl("ingest", "bench", data / source, "--subject", subject, "--site", site)
    return site


def _wait_for_idle(below: float, at_most: float) -> None:
    deadline = time.monotonic() + at_most
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)


def _trace_times(trace: Path, start: float, end: float) -> dict[str, float]:
    """Serial seconds before the first job and after the last, and idle core-seconds at
    the end, from a run's checkpoint trace (empty for ``--jobs 1``: it starts no jobs)."""
    starts, ends = [], {}
    lines = trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []
    for line in lines:
        name, when, pid, *_ = [*line.split("\t"), "", ""]
        if name == "job-start":
            starts.append(float(when))
        elif name == "job-end":
            ends[pid] = max(ends.get(pid, 0.0), float(when))  # each worker's last job
    if not starts or not ends:
        return {}
    last = max(ends.values())
    return {
        "serial_before": min(starts) - start,
        "serial_after": end - last,
        "tail_idle": sum(last - e for e in ends.values()),
    }


def convert(
    template: Path, target: Path, jobs: int, idle_below: float | None, idle_wait: float
) -> dict[str, float | str]:
    shutil.copytree(template, target, symlinks=True)
    if idle_below is not None:
        _wait_for_idle(idle_below, idle_wait)
    trace = target.with_name(target.name + ".trace")
    load_before = os.getloadavg()[0]
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall_start = time.time()
    start = time.perf_counter()
    _windl("convert", "bench", "--jobs", str(jobs), "--site", target, trace=trace)
    seconds = time.perf_counter() - start
    wall_end = time.time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    study = target / "superdataset" / "studies" / "bench"
    return {
        "seconds": seconds,
        "cpu": (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime),
        "cpu_user": usage.ru_utime - usage_before.ru_utime,
        "cpu_system": usage.ru_stime - usage_before.ru_stime,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **_trace_times(trace, wall_start, wall_end),
        "tree": _git(study, "rev-parse", "HEAD^{tree}").strip(),
        "records": _git(study, "log", "--format=%B", "-n", str(2 * len(SESSIONS))),
        "nifti": str(len(list(study.glob("sub-*/*/*.nii.gz")))),
    }


def _median(runs: list[dict[str, float | str]], key: str) -> float | None:
    values = [float(r[key]) for r in runs if key in r]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument(
        "--idle-below", type=float, default=None, metavar="LOAD",
        help="start each run only once the 1-minute load average is below LOAD",
    )  # fmt: skip
    parser.add_argument(
        "--idle-wait", type=float, default=600, metavar="SECONDS",
        help="wait at most this long for --idle-below (then run anyway)",
    )  # fmt: skip
    args = parser.parse_args()
    n = args.jobs
    root = Path(tempfile.mkdtemp(prefix="windl-bench-parallel-", dir=args.tmpdir))
    try:
        template = build_site(root, args.data)
        runs: dict[int, list[dict[str, float | str]]] = {1: [], n: []}
        for rep in range(args.repeat):
            order = (1, n) if rep % 2 == 0 else (n, 1)
            for jobs in order:
                run = convert(template, root / f"r{rep}-j{jobs}", jobs, args.idle_below,
                              args.idle_wait)  # fmt: skip
                runs[jobs].append(run)
                serial = (
                    f", serial {float(run['serial_before']):.1f} + "
                    f"{float(run['serial_after']):.1f} s, tail idle {float(run['tail_idle']):.1f} s"
                    if "serial_before" in run
                    else ""
                )
                print(f"rep {rep + 1}: --jobs {jobs}: {run['seconds']:.1f} s, "
                      f"CPU {run['cpu']:.1f} s{serial} (load {run['load_before']:.2f} -> "
                      f"{run['load_after']:.2f})", flush=True)  # fmt: skip
            one, many = runs[1][-1], runs[n][-1]
            if one["tree"] != many["tree"] or one["records"] != many["records"]:
                sys.exit(f"rep {rep + 1}: --jobs {n} made other files or records")
        median = {j: statistics.median(float(r["seconds"]) for r in rs) for j, rs in runs.items()}
        cpu = {j: statistics.median(float(r["cpu"]) for r in rs) for j, rs in runs.items()}
        speedup = median[1] / median[n]
        # on an idle machine with N cores, N jobs can at best split the CPU work N ways
        bound = n * cpu[1] / cpu[n]
        before, after = _median(runs[n], "serial_before"), _median(runs[n], "serial_after")
        tail = _median(runs[n], "tail_idle")
        serial_fraction = amdahl = None
        if before is not None and after is not None:
            serial_fraction = (before + after) / median[1]
            amdahl = 1 / (serial_fraction + (1 - serial_fraction) / n)
        loads = [
            float(r[k]) for rs in runs.values() for r in rs for k in ("load_before", "load_after")
        ]
        print(f"\n{len(SESSIONS)} sessions, {runs[1][0]['nifti']} NIfTI, nproc {os.cpu_count()}")
        print(f"wall (median of {args.repeat}): --jobs 1: {median[1]:.1f} s   --jobs {n}: "
              f"{median[n]:.1f} s   speedup {speedup:.2f}x")  # fmt: skip
        print(f"CPU (median): --jobs 1: {cpu[1]:.1f} s   --jobs {n}: {cpu[n]:.1f} s   "
              f"bound on {n} idle cores {n}*cpu1/cpu{n} = {bound:.2f}x")  # fmt: skip
        if serial_fraction is not None and amdahl is not None:
            print(f"serial part of --jobs {n} (median): {before:.1f} s before the first job + "
                  f"{after:.1f} s after the last = {serial_fraction:.1%} of --jobs 1's wall; "
                  f"Amdahl bound {amdahl:.2f}x; cores idle at the end {tail:.1f} s")  # fmt: skip
        print(f"load average during the runs: {min(loads):.2f} .. {max(loads):.2f}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
            "sessions": len(SESSIONS),
            "seconds": {str(j): [float(r["seconds"]) for r in rs] for j, rs in runs.items()},
            "median": {str(j): m for j, m in median.items()},
            "cpu_seconds": {str(j): [float(r["cpu"]) for r in rs] for j, rs in runs.items()},
            "cpu_median": {str(j): c for j, c in cpu.items()},
            "speedup": speedup,
            "speedup_bound_idle": bound,
            "serial_seconds": {k: [float(r[k]) for r in runs[n] if k in r]
                               for k in ("serial_before", "serial_after", "tail_idle")},
            "serial_fraction": serial_fraction,
            "speedup_bound_amdahl": amdahl,
            "load": {str(j): [[float(r["load_before"]), float(r["load_after"])] for r in rs]
                     for j, rs in runs.items()},
            "load_average": [min(loads), max(loads)],
        }, indent=1) + "\n")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
