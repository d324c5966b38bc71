"""Benchmark a release build against storing the same files with bare git-annex.

What is measured
----------------
On a demo site (``windl demo``, built first unless ``--site`` names one):

windl build
    ``windl release build demo --scope individuals --version 1.0.0`` from nothing: consent
    filter, re-keying, DICOM de-identification of every raw file, sidecar/TSV/NIfTI/EEG/MEG
    scrubbing, defacing, description files, ``datalad run`` + save. The study's settings
    are switched to release raw DICOM to ``individuals`` too and everyone consents, so this
    release has the same content as the demo's members release (about 700 files).
windl rebuild
    ``--version 1.0.1`` right after: nothing changed, every file is reused.
bare git-annex
    The same release files, copied into a fresh repository and stored with
    ``git annex add`` + ``git commit``: what storing the result costs without windl.
windl audit
    ``windl audit`` of the built release (every file read, face check, validator).

windl build --jobs N (with ``--jobs 1 2 ...``)
    Version 1.0.1 built again for each N after removing the release's cache, so every file
    is made again (defacing, every DICOM de-identified, ...) by N worker processes; the
    files are the same whatever N, so the build finds the release unchanged (checked), and
    the timings compare N = 1 with N = 2 on the same work.

Usage: ``python benchmarks/bench_release.py [--site DIR] [--jobs 1 2]``; prints a table and
writes ``benchmarks/results/release.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from windl.datasets import save

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "release.json"
WINDL = [sys.executable, "-m", "windl"]


def _windl(*args: str | Path, site: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [*WINDL, *map(str, args), "--site", str(site)], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _bare_annex(release: Path, scratch: Path) -> tuple[float, int]:
    files = [
        p
        for p in release.rglob("*")
        if (p.is_file() or p.is_symlink())
        and ".git" not in p.relative_to(release).parts
        and ".datalad" not in p.relative_to(release).parts
    ]
    repo = scratch / "bare"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    _git("annex", "init", "-q", "bench", cwd=repo)
    shutil.copyfile(release / ".gitattributes", repo / ".gitattributes")
    start = time.perf_counter()
    for path in files:
        target = repo / path.relative_to(release)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path.resolve(), target)
    _git("annex", "add", "-q", ".", cwd=repo)
    _git("commit", "-q", "-m", "bare", cwd=repo)
    return time.perf_counter() - start, len(files)


def _by_jobs(site: Path, release: Path, jobs: Sequence[int]) -> dict[str, Any]:
    """Rebuild version 1.0.1 without the cache once per N; the release must stay unchanged."""
    if not jobs:
        return {}
    rows: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"load_average_before": os.getloadavg()[0], "jobs": rows}
    head = subprocess.run(
        ["git", "-C", str(release), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    for n in jobs:
        (release / ".git" / "windl" / "release-cache.json").unlink(missing_ok=True)
        cpu = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(
            [*WINDL, "release", "build", "demo", "--scope", "individuals", "--version", "1.0.1",
             "--jobs", str(n), "--json", "--site", str(site)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        stats = json.loads(proc.stdout)
        if stats["changed"]:
            raise SystemExit(f"--jobs {n} changed the release: outputs differ")
        rows[str(n)] = {
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(_children_cpu() - cpu, 2),
            "made": stats["made"],
        }
    after = subprocess.run(
        ["git", "-C", str(release), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    if after != head:
        raise SystemExit("the release changed while rebuilding it with --jobs")
    out["load_average_after"] = os.getloadavg()[0]
    first = rows[str(jobs[0])]["wall_seconds"]
    out["speedup"] = {str(n): round(first / rows[str(n)]["wall_seconds"], 2) for n in jobs[1:]}
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--site", type=Path, default=None, help="an existing demo site")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=None, help="also rebuild, all files, per N"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="windl-bench-release-") as tmp:
        scratch = Path(tmp)
        site = args.site or scratch / "demo"
        if args.site is None:
            subprocess.run([*WINDL, "demo", str(site)], check=True, capture_output=True)
        study = site / "superdataset" / "studies" / "demo"
        settings = study / "code" / "study.toml"
        text = settings.read_text()
        if '"individuals"' not in text:
            settings.write_text(
                text.replace(
                    'include_dicom = ["members"]', 'include_dicom = ["members", "individuals"]'
                )
            )
            save(study, ["code/study.toml"], "bench: raw DICOM for individuals too")
        for subject in ("01", "02", "03", "04", "05", "06", "07", "08", "09"):
            _windl(
                "consent",
                "set",
                "demo",
                subject,
                "--scope",
                "members",
                "--scope",
                "individuals",
                site=site,
            )
        build = _windl(
            "release", "build", "demo", "--scope", "individuals", "--version", "1.0.0", site=site
        )
        rebuild = _windl(
            "release", "build", "demo", "--scope", "individuals", "--version", "1.0.1", site=site
        )
        release = site / "superdataset" / "releases" / "demo" / "individuals"
        audit = _windl("audit", release, site=site)
        bare, n_files = _bare_annex(release, scratch)
        by_jobs = _by_jobs(site, release, args.jobs or [])
    result = {
        "date": dt.date.today().isoformat(),
        "files": n_files,
        "seconds": {
            "windl_build": round(build, 2),
            "windl_rebuild_unchanged": round(rebuild, 2),
            "windl_audit": round(audit, 2),
            "bare_copy_annex_add_commit": round(bare, 2),
        },
        "ratio_build_to_bare": round(build / bare, 2),
    }
    if by_jobs:
        result["build_without_cache_by_jobs"] = by_jobs
    print(f"release of {n_files} files")
    for name, seconds in result["seconds"].items():
        print(f"  {name:28s} {seconds:8.2f} s")
    print(f"  build / bare git-annex:      {result['ratio_build_to_bare']:8.2f}x")
    for n, row in by_jobs.get("jobs", {}).items():
        print(
            f"  rebuild, all files made, --jobs {n}: {row['wall_seconds']:6.2f} s wall "
            f"{row['cpu_seconds']:6.2f} s CPU ({row['made']} made)"
        )
    if by_jobs:
        print(
            f"  load average {by_jobs['load_average_before']:.1f} -> "
            f"{by_jobs['load_average_after']:.1f} on {os.cpu_count()} cores"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
