"""Benchmark windl ingest + convert against the bare tools it wraps.

What is measured
----------------
Wall-clock time (:func:`time.perf_counter`) of turning the two DICOM sessions of the
``dcm_qa_nih`` test data (GE: 4 fMRI series, 600 files; Siemens: 4 EPI mosaics, 8 files)
into version-controlled, annexed NIfTI, in two ways on the same machine in one run:

windl path
    ``windl ingest`` of the GE folder (session ``ge``) and of the Siemens folder
    (session ``si``), then ``windl convert`` of the study. Site and study creation are
    setup and are not timed. The CLI runs as ``python -m windl``, exactly as a user would.
bare-tools path
    ``git init`` + ``git annex init`` with ``* annex.backend=MD5E`` (setup, not timed);
    then, timed: copy both input folders into the repository, ``git annex add .``,
    ``git commit``; one ``dcm2niix -b y -z y -f %p_%s`` call per session into ``bids/``
    inside the repository, ``git annex add .``, ``git commit``.

Why the comparison is fair
--------------------------
Both paths do the same essential work: both put the raw DICOM under git-annex with the
same backend (MD5E, as DataLad and windl use), both run the same ``dcm2niix`` binary with
gzipped output and JSON sidecars, both annex the NIfTI output, and both commit twice
(raw, converted). Both run on the same files, the same filesystem (one temporary root)
and the same machine, alternating windl/bare in every repetition so that cache warm-up
and background load affect both alike. What windl adds on top (DICOM header scan and
series layout, atomic commits in a scratch worktree, heudiconv, ``datalad run``
provenance, subdataset bookkeeping, the Python start-up of each CLI call) is exactly the
overhead this benchmark exposes. The project's goal is ``windl_total / bare_total <= 1.3``.

Each repetition checks its own output before its times are used: the windl study must hold
8 ``*_bold.nii.gz`` files under ``sub-01/ses-*/func/`` and the bare repository 8
``.nii.gz`` files, and every command must exit 0; otherwise the script stops with a
non-zero exit status and says why, so a failure is never reported as a speed.

Usage
-----
``python benchmarks/bench_ingest_convert.py [--repeat N] [--data DIR] [--tmpdir DIR]``

Prints a table (median over the repetitions) and writes
``benchmarks/results/ingest_convert.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ingest_convert.json"
DEFAULT_DATA = Path("/work/shared/data/dcm_qa_nih/In")
SESSIONS = {"ge": "20180918GE", "si": "20180918Si"}
EXPECTED_NIFTI = 8

WINDL_STEPS = ("windl ingest ge", "windl ingest si", "windl convert")
BARE_STEPS = (
    "copy raw",
    "annex add raw",
    "commit raw",
    "dcm2niix ge",
    "dcm2niix si",
    "annex add bids",
    "commit bids",
)
# steps grouped by the work they do, for a like-for-like view in the table
PHASES = {
    "ingest (raw DICOM -> annex, commit)": (
        ("windl ingest ge", "windl ingest si"),
        ("copy raw", "annex add raw", "commit raw"),
    ),
    "convert (DICOM -> NIfTI -> annex, commit)": (
        ("windl convert",),
        ("dcm2niix ge", "dcm2niix si", "annex add bids", "commit bids"),
    ),
}

#: reference steps: timed in the bare run but not part of its total. heudiconv is what
#: windl must wrap (the issue asks for heudiconv + dcm2niix); timing it bare separates
#: the cost of heudiconv itself from windl's own overhead.
REFERENCE_STEPS = ("ref: bare heudiconv ge", "ref: bare heudiconv si")
HEURISTIC = HERE.parent / "windl" / "convert" / "heuristic.py"

Timings = dict[str, float]


class BenchmarkError(RuntimeError):
    """A command failed or produced the wrong output: its times must not be reported."""


def tool_env() -> dict[str, str]:
    """Environment for child processes: the interpreter's bin folder first on PATH."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env.pop("WINDL_SITE", None)
    return env


def run(cmd: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str]) -> None:
    """Run ``cmd``; raise :class:`BenchmarkError` with its output if it fails."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BenchmarkError(
            f"command failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout.rstrip()}\n--- stderr ---\n{proc.stderr.rstrip()}"
        )


def timed(timings: Timings, step: str, action: Callable[[], object]) -> None:
    """Run ``action`` and store its wall-clock duration under ``step``."""
    start = time.perf_counter()
    action()
    timings[step] = time.perf_counter() - start


def nifti_under(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` below ``root``, outside any ``.git`` folder."""
    return sorted(p for p in root.glob(pattern) if ".git" not in p.relative_to(root).parts)


def check_count(found: list[Path], what: str, where: Path) -> None:
    if len(found) != EXPECTED_NIFTI:
        listing = "\n".join(f"  {p.relative_to(where)}" for p in found) or "  (none)"
        raise BenchmarkError(
            f"{what}: expected {EXPECTED_NIFTI} NIfTI files under {where}, found "
            f"{len(found)}:\n{listing}"
        )


def windl_path(data: Path, work: Path, env: dict[str, str]) -> Timings:
    """Site + study setup (untimed), then timed ingest of both sessions and convert."""
    windl = [sys.executable, "-m", "windl"]
    site = work / "SITE"
    run([*windl, "site", "init", site], work, env)
    run([*windl, "study", "create", "bench", "--site", site], work, env)
    timings: Timings = {}
    for ses, folder in SESSIONS.items():
        cmd = [*windl, "ingest", "bench", data / folder, "--subject", "01"]
        cmd += ["--session", ses, "--site", site]
        timed(timings, f"windl ingest {ses}", lambda cmd=cmd: run(cmd, work, env))
    convert = [*windl, "convert", "bench", "--site", site]
    timed(timings, "windl convert", lambda: run(convert, work, env))
    study = site / "superdataset" / "studies" / "bench"
    check_count(nifti_under(study, "sub-01/ses-*/func/*_bold.nii.gz"), "windl path", study)
    return timings


def bare_path(data: Path, work: Path, env: dict[str, str]) -> Timings:
    """git/git-annex setup (untimed), then timed copy, annex, dcm2niix, annex, commits."""
    repo = work / "bare"
    repo.mkdir()
    run(["git", "init", "--quiet"], repo, env)
    run(["git", "annex", "init", "--quiet", "bench"], repo, env)
    (repo / ".gitattributes").write_text("* annex.backend=MD5E\n")
    run(["git", "add", ".gitattributes"], repo, env)
    run(["git", "commit", "--quiet", "-m", "setup"], repo, env)

    def copy_raw() -> None:
        for ses, folder in SESSIONS.items():
            shutil.copytree(data / folder, repo / "sourcedata" / "sub-01" / f"ses-{ses}")

    timings: Timings = {}
    timed(timings, "copy raw", copy_raw)
    timed(timings, "annex add raw", lambda: run(["git", "annex", "add", "--quiet", "."], repo, env))
    timed(timings, "commit raw", lambda: run(["git", "commit", "--quiet", "-m", "raw"], repo, env))
    for ses, folder in SESSIONS.items():
        out = repo / "bids" / "sub-01" / f"ses-{ses}" / "func"
        out.mkdir(parents=True)
        cmd = ["dcm2niix", "-b", "y", "-z", "y", "-f", "%p_%s", "-o", out, data / folder]
        timed(timings, f"dcm2niix {ses}", lambda cmd=cmd: run(cmd, repo, env))
    timed(
        timings, "annex add bids", lambda: run(["git", "annex", "add", "--quiet", "."], repo, env)
    )
    timed(
        timings,
        "commit bids",
        lambda: run(["git", "commit", "--quiet", "-m", "converted"], repo, env),
    )
    check_count(nifti_under(repo / "bids", "**/*.nii.gz"), "bare path", repo / "bids")
    for ses, folder in SESSIONS.items():
        cmd = [
            "heudiconv", "--files", data / folder, "-s", "01", "-ss", ses, "-f", HEURISTIC,
            "-c", "dcm2niix", "-b", "notop", "--minmeta", "--overwrite", "-g", "all",
            "-o", work / "heudiconv-info", "--conv-outdir", work / "heudiconv-bids",
        ]  # fmt: skip
        timed(timings, f"ref: bare heudiconv {ses}", lambda cmd=cmd: run(cmd, work, env))
    return timings


def first_line(cmd: Sequence[str], env: dict[str, str]) -> str:
    """First output line of ``cmd`` (exit status ignored: ``dcm2niix --version`` is not 0)."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine_info(env: dict[str, str]) -> dict[str, object]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "dcm2niix": first_line(["dcm2niix", "--version"], env),
        "git_annex": first_line(["git", "annex", "version"], env),
        "git": first_line(["git", "--version"], env),
    }


def median(runs: list[Timings], step: str) -> float:
    return statistics.median(r[step] for r in runs)


def total(timings: Timings) -> float:
    return sum(v for k, v in timings.items() if not k.startswith("ref:"))


def median_total(runs: list[Timings]) -> float:
    return statistics.median(total(r) for r in runs)


def median_phase(runs: list[Timings], steps: Sequence[str]) -> float:
    return statistics.median(sum(r[s] for s in steps) for r in runs)


def table(windl_runs: list[Timings], bare_runs: list[Timings]) -> str:
    """Median seconds per step, per phase and in total, with the headline ratio."""
    rows: list[tuple[str, str, str]] = [("step", "windl s", "bare s")]
    rows += [(s, f"{median(windl_runs, s):.2f}", "") for s in WINDL_STEPS]
    rows += [(s, "", f"{median(bare_runs, s):.2f}") for s in BARE_STEPS + REFERENCE_STEPS]
    for phase, (w_steps, b_steps) in PHASES.items():
        w, b = median_phase(windl_runs, w_steps), median_phase(bare_runs, b_steps)
        rows.append((f"{phase} [{w / b:.2f}x]", f"{w:.2f}", f"{b:.2f}"))
    w_total, b_total = median_total(windl_runs), median_total(bare_runs)
    rows.append(("TOTAL (median of totals)", f"{w_total:.2f}", f"{b_total:.2f}"))
    width = max(len(r[0]) for r in rows)
    lines = [f"{a:<{width}}  {b:>8}  {c:>8}" for a, b, c in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    ratio = w_total / b_total
    verdict = "meets" if ratio <= 1.3 else "misses"
    lines.append(f"ratio windl_total / bare_total = {ratio:.2f}x ({verdict} the <= 1.3x goal)")
    heudiconv = median_phase(bare_runs, REFERENCE_STEPS)
    lines.append(
        f"windl convert / bare heudiconv (same heuristic, no DataLad) = "
        f"{median(windl_runs, 'windl convert') / heudiconv:.2f}x"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per path (3)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dcm_qa_nih/In folder")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where to build the repos")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = tool_env()
    for folder in SESSIONS.values():
        if not (args.data / folder).is_dir():
            print(f"error: input folder {args.data / folder} not found", file=sys.stderr)
            return 2
    missing = [t for t in ("dcm2niix", "git-annex") if shutil.which(t, path=env["PATH"]) is None]
    if missing:
        print(f"error: not on PATH: {', '.join(missing)}", file=sys.stderr)
        return 2

    windl_runs: list[Timings] = []
    bare_runs: list[Timings] = []
    for i in range(args.repeat):
        # alternate which path goes first, so neither always runs on a cold cache
        order = ("windl", "bare") if i % 2 == 0 else ("bare", "windl")
        for which in order:
            with tempfile.TemporaryDirectory(prefix=f"bench-{which}-", dir=args.tmpdir) as tmp:
                try:
                    if which == "windl":
                        timings = windl_path(args.data, Path(tmp), env)
                        windl_runs.append(timings)
                    else:
                        timings = bare_path(args.data, Path(tmp), env)
                        bare_runs.append(timings)
                except BenchmarkError as exc:
                    print(
                        f"error: {which} path, repetition {i + 1}: {exc}\n"
                        "no timings reported: the benchmark would measure a failure.",
                        file=sys.stderr,
                    )
                    return 1
            steps = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
            print(
                f"[{i + 1}/{args.repeat}] {which:5} total {total(timings):6.2f} s ({steps})",
                flush=True,
            )

    print()
    print(table(windl_runs, bare_runs))
    w_total, b_total = median_total(windl_runs), median_total(bare_runs)
    result = {
        "benchmark": "ingest_convert",
        "data": str(args.data),
        "sessions": SESSIONS,
        "repeat": args.repeat,
        "machine": machine_info(env),
        "windl": {
            "runs": windl_runs,
            "median": {s: median(windl_runs, s) for s in WINDL_STEPS},
            "median_total": w_total,
        },
        "bare": {
            "runs": bare_runs,
            "median": {s: median(bare_runs, s) for s in BARE_STEPS},
            "median_total": b_total,
        },
        "phases": {
            phase: {"windl": median_phase(windl_runs, w), "bare": median_phase(bare_runs, b)}
            for phase, (w, b) in PHASES.items()
        },
        "ratio": w_total / b_total,
        "goal": 1.3,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
