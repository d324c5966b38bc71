"""QC speed on the shared data: seconds per T1w, per BOLD run (and per volume), per EEG hour.

Run: ``PYTHONPATH=. python benchmarks/bench_qc.py [--json]`` from the repository root.
The metric functions are timed directly (no DataLad), best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
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


def main() -> None:
    from windl.qc.anat import anat_qc
    from windl.qc.ephys import ephys_qc
    from windl.qc.func import func_qc

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
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
