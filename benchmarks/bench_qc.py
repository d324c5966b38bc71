"""QC speed on the shared data: seconds per T1w, per BOLD run (and per volume), per EEG hour.

Run: ``PYTHONPATH=. python benchmarks/bench_qc.py [--json]`` from the repository root.
The metric functions are timed directly (no DataLad), best of ``--repeat`` runs.

``--jobs 1 2`` times the whole ``windl qc STUDY --jobs N`` (under ``datalad run``) of a demo
study (``windl demo`` is built first unless ``--site`` names a demo site) for each N: the QC
cache is removed before each run, so every file is computed again; the outputs are the same
whatever N, so the study is unchanged afterwards (checked) and the runs can repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("WINDL_SHARED_DATA", REPO.parent / "shared" / "data"))


CPU: dict[str, float] = {}


def _best(fn, repeat: int, name: str = "") -> float:  # type: ignore[no-untyped-def]
    """Best wall time of ``repeat`` runs; the CPU time of that run goes to ``CPU[name]``
    (the machine is shared: CPU seconds do not grow with other people's load)."""
    times = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = min(times)
    if name:
        CPU[name] = cpu
    return wall


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_jobs(site: Path | None, jobs: Sequence[int], repeat: int) -> dict[str, object]:
    """Wall and CPU seconds of ``windl qc demo --jobs N`` for each N (median of ``repeat``)."""
    import statistics

    with tempfile.TemporaryDirectory(prefix="windl-bench-qc-") as tmp:
        if site is None:
            site = Path(tmp) / "demo"
            subprocess.run(
                [sys.executable, "-m", "windl", "demo", str(site)], check=True, capture_output=True
            )
        study = site / "superdataset" / "studies" / "demo"
        head = subprocess.run(
            ["git", "-C", str(study), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout
        result: dict[str, object] = {"load_average_before": os.getloadavg()[0]}
        for n in jobs:
            walls, cpus, files = [], [], 0
            for _ in range(repeat):
                (study / ".git" / "windl" / "qc-cache.json").unlink(missing_ok=True)
                start, cpu = time.perf_counter(), _children_cpu()
                out = subprocess.run(
                    [sys.executable, "-m", "windl", "qc", "demo", "--jobs", str(n), "--json",
                     "--site", str(site)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                walls.append(time.perf_counter() - start)
                cpus.append(_children_cpu() - cpu)
                summary = json.loads(out.stdout)
                files = summary["computed"]
                assert not summary["changed"], "QC output changed with --jobs"
            result[f"jobs{n}"] = {
                "files": files,
                "wall_seconds": round(statistics.median(walls), 2),
                "cpu_seconds": round(statistics.median(cpus), 2),
                "walls": [round(w, 2) for w in walls],
            }
        after = subprocess.run(
            ["git", "-C", str(study), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout
        assert after == head, "windl qc made a commit: outputs differ between runs"
        result["load_average_after"] = os.getloadavg()[0]
        return result


def main() -> None:
    from windl.qc.anat import anat_qc
    from windl.qc.ephys import ephys_qc
    from windl.qc.func import func_qc

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=None, help="time windl qc of a demo study per N"
    )
    parser.add_argument("--site", type=Path, default=None, help="an existing demo site")
    args = parser.parse_args()
    if args.jobs:
        timed = bench_jobs(args.site, args.jobs, args.repeat)
        if args.json:
            print(json.dumps(timed, indent=2))
            return
        for n in args.jobs:
            row = timed[f"jobs{n}"]
            print(f"windl qc demo --jobs {n}: {row['files']} files, {row['wall_seconds']:.1f} s "
                  f"wall, {row['cpu_seconds']:.1f} s CPU ({row['walls']})")  # fmt: skip
        first = timed[f"jobs{args.jobs[0]}"]["wall_seconds"]
        for n in args.jobs[1:]:
            print(f"speedup --jobs {n} over --jobs {args.jobs[0]}: "
                  f"{first / timed[f'jobs{n}']['wall_seconds']:.2f}x")  # fmt: skip
        print(f"load average {timed['load_average_before']:.1f} -> "
              f"{timed['load_average_after']:.1f} on {os.cpu_count()} cores")  # fmt: skip
        return
    t1w = DATA / "pydeface_t1w_face/ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
    bold = DATA / "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii"
    eeg = DATA / "mne_testfiles/edf/test.edf"
    result: dict[str, float] = {}
    result["t1w_seconds"] = _best(lambda: anat_qc(t1w), args.repeat, "t1w")
    result["bold_run_seconds"] = _best(lambda: func_qc(bold), args.repeat, "bold")
    volumes = func_qc(bold).metrics["size_t"]
    result["bold_seconds_per_volume"] = result["bold_run_seconds"] / volumes
    seconds = _best(lambda: ephys_qc(eeg), args.repeat)
    # a 5-minute recording: the EDF's 6 s tiled 50 times (138 channels, 512 Hz)
    import mne
    import numpy as np

    from windl.qc.ephys import ephys_metrics, read_raw

    raw = read_raw(eeg)
    long = mne.io.RawArray(np.tile(raw.get_data(), 50), raw.info, verbose="error")
    long_s = _best(lambda: ephys_metrics(long, 50.0), args.repeat, "eeg")
    result["eeg_seconds_per_hour"] = long_s * 3600 / (long.n_times / long.info["sfreq"])
    result["eeg_file_seconds"] = seconds
    scale = 3600 / (long.n_times / long.info["sfreq"])
    result |= {
        "t1w_cpu_seconds": CPU["t1w"],
        "bold_run_cpu_seconds": CPU["bold"],
        "eeg_cpu_seconds_per_hour": CPU["eeg"] * scale,
        "load_average_1min": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"T1w 192x256x256:               {result['t1w_seconds']:.1f} s")
        print(
            f"BOLD 64x64x15x{volumes}:             {result['bold_run_seconds']:.2f} s "
            f"({result['bold_seconds_per_volume']:.3f} s/volume)"
        )
        print(f"EEG (EDF 138 ch, 512 Hz, 6 s):  {seconds:.2f} s")
        print(f"EEG per hour (from 5 min, 138 ch, 512 Hz): {result['eeg_seconds_per_hour']:.0f} s")
        print(
            f"CPU seconds: T1w {CPU['t1w']:.1f}, BOLD run {CPU['bold']:.2f}, "
            f"EEG hour {result['eeg_cpu_seconds_per_hour']:.0f} "
            f"(load average {result['load_average_1min']:.1f} on {os.cpu_count()} cores)"
        )


if __name__ == "__main__":
    main()
