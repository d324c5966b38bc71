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

Usage: ``python benchmarks/bench_release.py [--site DIR]``; prints a table and writes
``benchmarks/results/release.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--site", type=Path, default=None, help="an existing demo site")
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
    print(f"release of {n_files} files")
    for name, seconds in result["seconds"].items():
        print(f"  {name:28s} {seconds:8.2f} s")
    print(f"  build / bare git-annex:      {result['ratio_build_to_bare']:8.2f}x")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
