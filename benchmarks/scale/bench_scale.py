"""Scale benchmark: what one more session costs in a study of 10, 100 and 1,000 sessions.

How the study is built
----------------------
One site, one study, grown incrementally (10, then to 100, then to 1,000 sessions: each
session is ingested once) through windl's library API (:func:`windl.ingest.ingest`, real
DataLad and git-annex). Every session is a synthetic copy of one real DICOM series
(:mod:`synthetic`: new UIDs, PatientID and PatientName per copy, pixel data unchanged);
subjects have ``--sessions-per-subject`` sessions (default 2: 1,000 sessions = 500
subjects).

The BIDS side is real windl output multiplied: one synthetic session is converted with
:func:`windl.convert.convert` in a scratch site, and its files (NIfTI, JSON sidecars,
``scans.tsv``) are renamed for every session of the study and committed with
:func:`windl.datasets.commit_files` (windl's atomic commit, the one ``windl import`` uses),
one commit per growth step, with ``participants.tsv`` extended by windl's own
``add_participant`` rule. So at size N the study has N sessions in ``sourcedata`` and N
converted sessions at the top level.

What is measured at each size N
-------------------------------
In this order, each ``--repeat`` times, wall clock (and the CPU time of the child
processes):

* ``datalad status`` and ``datalad status -r`` in the study (the DataLad CLI);
* a full catalog re-index: the site's catalog database removed, then
  ``windl catalog index`` (the CLI);
* ``windl ingest`` (the CLI, ``python -m windl ingest``, as a user runs it) of a new
  subject's first session, then ``windl catalog index`` (incremental: one session more),
  then ``windl ingest`` of that subject's second session, then ``windl catalog index``
  again. The study grows by ``sessions-per-subject`` sessions per repeat (at most 2 ingests
  are timed per repeat); these sessions count towards the next size.

Also recorded: ``git count-objects -v`` and the number of files in the git index of every
dataset (the superdataset, the study, ``sourcedata``, ``restricted`` and any dataset under
``sourcedata/``, found on the filesystem so that the benchmark does not depend on the
raw-data layout), and the files each timed ingest changed in each dataset
(``git diff --name-only`` between the heads before and after).

Usage
-----
``PYTHONPATH=. .venv/bin/python benchmarks/scale/bench_scale.py [--sizes 10 100 1000]
[--repeat 3] [--sessions-per-subject 2] [--source DIR] [--seed 0] [--tmpdir DIR]
[--keep] [--output FILE]``

Prints a table and the ratio ingest(largest)/ingest(smallest) against the goal 1.5, and
writes ``benchmarks/results/scale.json`` (gitignored).
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]

import pydicom  # noqa: E402
from synthetic import (  # noqa: E402
    BidsTemplate,
    SessionSpec,
    SyntheticSource,
    bids_template,
    participants_with,
    replicate_bids,
    session_spec,
)

from windl import datasets  # noqa: E402
from windl.config import Site  # noqa: E402
from windl.convert import convert, raise_for_failures  # noqa: E402
from windl.ingest import ingest  # noqa: E402
from windl.site import init_site  # noqa: E402
from windl.study import create_study  # noqa: E402

DEFAULT_SOURCE = (
    Path(os.environ.get("WINDL_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
    / "dcm_qa_nih"
    / "In"
    / "20180918Si"
)
STUDY = "scale"
GOAL = 1.5
#: what is timed at each size (keys of the report's ``median_wall_s``)
MEASURES = (
    "datalad_status",
    "datalad_status_r",
    "catalog_full",
    "ingest_new_subject",
    "ingest_next_session",
    "catalog_incremental",
)


# --------------------------------------------------------------------------- helpers
def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    """Environment of the timed CLI calls: this checkout's windl, the venv's tools first."""
    env = datasets.tool_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@dataclass
class Timed:
    """One timed child process."""

    wall: float
    cpu: float
    stdout: str


def timed(args: Sequence[str | Path], cwd: Path | None = None) -> Timed:
    """Run ``args`` to completion; wall time and the CPU time of it and its children.

    Raises on a non-zero exit, so a failing command is never reported as a fast one.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=child_env(), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, proc.stdout)


def windl_cli(site: Site, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "windl", *map(str, args), "--site", str(site.root)]


def git_out(ds: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def study_root(site: Site) -> Path:
    return site.studies / STUDY


def all_datasets(site: Site) -> dict[str, Path]:
    """Every dataset of the benchmark site, by site-relative name.

    Datasets below ``sourcedata`` are found on the filesystem (a ``.git`` in a folder),
    so this works whether raw data is one dataset or one per subject.
    """
    study = study_root(site)
    found = {
        "superdataset": site.superdataset,
        "study": study,
        "sourcedata": study / "sourcedata",
        "restricted": study / "restricted",
    }
    for git_entry in sorted((study / "sourcedata").glob("*/.git")):
        found[f"sourcedata/{git_entry.parent.name}"] = git_entry.parent
    return found


def heads(site: Site) -> dict[str, str]:
    return {name: datasets.head(ds) for name, ds in all_datasets(site).items()}


def touched_files(site: Site, before: dict[str, str]) -> dict[str, int]:
    """Files an operation changed per dataset (a new dataset: every file of its tree)."""
    touched: dict[str, int] = {}
    for name, ds in all_datasets(site).items():
        now = datasets.head(ds)
        if name not in before:
            touched[name] = len(git_out(ds, "ls-files", "-z").split("\0")) - 1
        elif before[name] != now:
            out = git_out(ds, "diff", "--name-only", "-z", "--no-renames", before[name], now)
            touched[name] = len(out.split("\0")) - 1
    return touched


def count_objects(ds: Path) -> dict[str, int]:
    fields = dict(line.split(": ", 1) for line in git_out(ds, "count-objects", "-v").splitlines())
    return {key.replace("-", "_"): int(value) for key, value in fields.items()}


def dataset_counts(site: Site) -> dict[str, Any]:
    """Index size and object counts; datasets below ``sourcedata/`` summed into one entry."""
    per: dict[str, Any] = {}
    subjects = {"datasets": 0, "index_files": 0, "count": 0, "size": 0, "in_pack": 0}
    for name, ds in all_datasets(site).items():
        index_files = len(git_out(ds, "ls-files", "-z").split("\0")) - 1
        objects = count_objects(ds)
        if name.startswith("sourcedata/"):
            subjects["datasets"] += 1
            subjects["index_files"] += index_files
            for key in ("count", "size", "in_pack"):
                subjects[key] += objects.get(key, 0)
        else:
            per[name] = {"index_files": index_files, **objects}
    if subjects["datasets"]:
        per["sourcedata/* (summed)"] = subjects
    return per


def sessions_on_disk(site: Site) -> tuple[int, int]:
    """(raw sessions in ``sourcedata``, converted sessions at the study's top level)."""
    study = study_root(site)
    raw = sum(1 for p in (study / "sourcedata").glob("sub-*/ses-*") if p.is_dir())
    bids = sum(1 for p in study.glob("sub-*/ses-*") if p.is_dir())
    return raw, bids


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


class Progress:
    """Sessions/s and ETA on stderr, at most once a second."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < 1.0 and done != self.total:
            return
        self.last = now
        rate = done / (now - self.start) if now > self.start else 0.0
        eta = (self.total - done) / rate if rate else float("inf")
        log(f"  {self.label}: {done}/{self.total} sessions, {rate:.2f}/s, ETA {eta:.0f} s")


# --------------------------------------------------------------------------- building
@dataclass
class Builder:
    """Grows the benchmark study session by session and keeps its BIDS side in step."""

    site: Site
    synthetic: SyntheticSource
    template: BidsTemplate
    participant: dict[str, str | None]
    sessions_per_subject: int
    scratch: Path
    ingested: int = 0  # sessions in sourcedata (spec indexes 0 .. ingested-1)
    converted: int = 0  # sessions with BIDS files

    def next_spec(self) -> SessionSpec:
        return session_spec(self.ingested, self.sessions_per_subject)

    def source_for(self, spec: SessionSpec) -> Path:
        folder = self.scratch / "sources" / f"sub-{spec.subject}_ses-{spec.session}"
        shutil.rmtree(folder, ignore_errors=True)
        return self.synthetic.write_session(spec, folder)

    def ingest_with_library(self, count: int) -> None:
        """Ingest ``count`` more sessions through :func:`windl.ingest.ingest`."""
        progress = Progress("ingest (library)", count)
        for done in range(1, count + 1):
            spec = self.next_spec()
            source = self.source_for(spec)
            result = ingest(self.site, STUDY, source, spec.subject, spec.session)
            if result.added != len(self.synthetic.files):
                raise RuntimeError(f"ingest of {spec} added {result.added} files")
            shutil.rmtree(source)
            self.ingested += 1
            progress(done)

    def ingest_with_cli(self) -> tuple[SessionSpec, Timed, dict[str, int]]:
        """Ingest the next session with the ``windl ingest`` CLI, timed."""
        spec = self.next_spec()
        source = self.source_for(spec)
        before = heads(self.site)
        labels = ("--subject", spec.subject, "--session", spec.session)
        run = timed(windl_cli(self.site, "ingest", STUDY, source, *labels, "--json"))
        if json.loads(run.stdout)["added"] != len(self.synthetic.files):
            raise RuntimeError(f"windl ingest of {spec} did not add every file: {run.stdout}")
        shutil.rmtree(source)
        self.ingested += 1
        return spec, run, touched_files(self.site, before)

    def convert_pending(self) -> int:
        """Commit the BIDS files of every ingested session that has none yet (one commit)."""
        specs = [
            session_spec(i, self.sessions_per_subject) for i in range(self.converted, self.ingested)
        ]
        if not specs:
            return 0
        study = study_root(self.site)
        scratch = self.scratch / "bids"
        shutil.rmtree(scratch, ignore_errors=True)
        files: dict[str, Path] = {}
        for spec in specs:
            files.update(replicate_bids(self.template, spec, scratch / "sessions"))
        current = datasets.read_blobs(study, "HEAD", ["participants.tsv"])["participants.tsv"]
        files["participants.tsv"] = participants_with(
            current or b"",
            dict.fromkeys(s.subject for s in specs),
            self.participant,
            scratch / "participants",
        )
        message = f"scale benchmark: BIDS files of {len(specs)} synthetic sessions"
        datasets.commit_files(study, files, message)
        datasets.record_subdataset_state(self.site.superdataset, study, message)
        shutil.rmtree(scratch)
        self.converted = self.ingested
        return len(specs)

    def grow_to(self, size: int) -> float:
        """Ingest and convert until the study has ``size`` sessions; returns the seconds."""
        start = time.perf_counter()
        if self.ingested < size:
            log(f"growing the study from {self.ingested} to {size} sessions")
            self.ingest_with_library(size - self.ingested)
        added = self.convert_pending()
        log(f"  BIDS files of {added} sessions committed")
        return time.perf_counter() - start


def make_bids_template(synthetic: SyntheticSource, scratch: Path) -> BidsTemplate:
    """Convert one synthetic session for real, in a site of its own, and keep its files."""
    log("converting one synthetic session with windl convert (template of the BIDS side)")
    site = init_site(scratch / "template-site")
    create_study(site, STUDY)
    spec = session_spec(0, 1)
    source = synthetic.write_session(spec, scratch / "template-source")
    ingest(site, STUDY, source, spec.subject, spec.session)
    results = convert(site, STUDY)
    raise_for_failures(results)
    template = bids_template(
        site.studies / STUDY, spec.subject, spec.session, scratch / "template-bids"
    )
    if not any(rel.endswith(".nii.gz") for rel in template.files):
        raise RuntimeError("the template conversion wrote no NIfTI")
    shutil.rmtree(scratch / "template-site")
    shutil.rmtree(source)
    return template


# --------------------------------------------------------------------------- measuring
def catalog_database(site: Site) -> list[Path]:
    return sorted((site.root / "db").glob("windl.sqlite*"))


def measure(builder: Builder, size: int, repeat: int, status_repeat: int) -> dict[str, Any]:
    """Everything measured at one size (the study has exactly ``size`` sessions on entry)."""
    site = builder.site
    study = study_root(site)
    raw, bids = sessions_on_disk(site)
    if (raw, bids) != (size, size):
        raise RuntimeError(f"expected {size} sessions, found {raw} raw and {bids} converted")
    load_before = os.getloadavg()
    datalad = str(Path(sys.executable).parent / "datalad")
    samples: dict[str, list[Timed]] = {key: [] for key in MEASURES}
    counts = dataset_counts(site)
    touched: dict[str, list[dict[str, int]]] = {"new_subject": [], "next_session": []}
    for round_ in range(1, status_repeat + 1):
        log(f"  size {size}: datalad status, round {round_}/{status_repeat}")
        samples["datalad_status"].append(timed([datalad, "status"], cwd=study))
        samples["datalad_status_r"].append(timed([datalad, "status", "-r"], cwd=study))
    for _ in range(repeat):
        for path in catalog_database(site):
            path.unlink()
        run = timed(windl_cli(site, "catalog", "index", "--json"))
        if json.loads(run.stdout)["files"] == 0:
            raise RuntimeError(f"a fresh catalog index wrote no files: {run.stdout}")
        samples["catalog_full"].append(run)
    for round_ in range(1, repeat + 1):
        # the timed ingests start a new subject; sessions needed to get there are not timed
        while not builder.next_spec().first_of_subject:
            builder.ingest_with_library(1)
        log(f"  size {size}: timed ingests, round {round_}/{repeat}")
        for kind in ("new_subject", "next_session"):
            if kind == "next_session" and builder.sessions_per_subject == 1:
                continue
            _spec, run, files = builder.ingest_with_cli()
            samples[f"ingest_{kind}"].append(run)
            touched[kind].append(files)
            run = timed(windl_cli(site, "catalog", "index", "--json"))
            if json.loads(run.stdout)["read"] != [STUDY]:
                raise RuntimeError(f"the incremental index did not read the study: {run.stdout}")
            samples["catalog_incremental"].append(run)
    load_after = os.getloadavg()
    return {
        "size": size,
        "subjects": -(-size // builder.sessions_per_subject),
        "load_before": load_before,
        "load_after": load_after,
        "median_wall_s": {k: median([t.wall for t in v]) for k, v in samples.items()},
        "median_cpu_s": {k: median([t.cpu for t in v]) for k, v in samples.items()},
        "wall_s": {k: [round(t.wall, 4) for t in v] for k, v in samples.items()},
        "files_touched_by_ingest": touched,
        "datasets": counts,
        "sessions_after_measuring": builder.ingested,
    }


# --------------------------------------------------------------------------- report
def versions() -> dict[str, str]:
    def first_line(args: Sequence[str]) -> str:
        proc = subprocess.run(args, capture_output=True, text=True, env=child_env())
        # a detached HEAD has no branch: empty output must not lose the whole report
        lines = (proc.stdout or proc.stderr).strip().splitlines()
        return lines[0] if proc.returncode == 0 and lines else ""

    import datalad

    return {
        "python": platform.python_version(),
        "git": first_line(["git", "--version"]),
        "git_annex": first_line(["git", "annex", "version", "--raw"]),
        "datalad": datalad.__version__,
        "pydicom": pydicom.__version__,
        "windl_commit": first_line(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "windl_branch": first_line(["git", "-C", str(REPO), "branch", "--show-current"]),
    }


def layout_of(site: Site) -> str:
    nested = [n for n in all_datasets(site) if n.startswith("sourcedata/")]
    return "dataset per subject under sourcedata/" if nested else "one sourcedata dataset"


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


COLUMNS = (
    ("ingest_new_subject", "ingest new subject"),
    ("ingest_next_session", "ingest 2nd session"),
    ("datalad_status", "datalad status"),
    ("datalad_status_r", "datalad status -r"),
    ("catalog_full", "catalog full"),
    ("catalog_incremental", "catalog incr."),
)


def table(results: list[dict[str, Any]], kind: str = "wall") -> str:
    """Markdown table of the medians (``kind``: ``wall`` or ``cpu`` seconds) per size."""
    lines = [
        f"| sessions ({kind} s) | " + " | ".join(label for _, label in COLUMNS)
        + " | files in git: study / sourcedata / subject datasets | load 1 min before→after |",
        "|---:|" + "---:|" * len(COLUMNS) + "---|---|",
    ]  # fmt: skip
    for r in results:
        medians = r[f"median_{kind}_s"]
        ds = r["datasets"]
        subject_ds = ds.get("sourcedata/* (summed)", {})
        files = (
            f"{ds['study']['index_files']} / {ds['sourcedata']['index_files']} / "
            f"{subject_ds.get('index_files', 0)} in {subject_ds.get('datasets', 0)}"
        )
        load = f"{r['load_before'][0]:.2f}→{r['load_after'][0]:.2f}"
        cells = " | ".join(fmt(medians.get(key)) for key, _ in COLUMNS)
        lines.append(f"| {r['size']} | {cells} | {files} | {load} |")
    return "\n".join(lines)


def touched_table(results: list[dict[str, Any]]) -> str:
    """Files one timed ingest changed in each dataset (the first timed ingest of each kind)."""
    lines = ["| sessions | ingest of | files changed per dataset |", "|---:|---|---|"]
    for r in results:
        for kind, samples in r["files_touched_by_ingest"].items():
            if samples:
                per = ", ".join(f"{name} {n}" for name, n in samples[0].items())
                lines.append(f"| {r['size']} | {kind.replace('_', ' ')} | {per} |")
    return "\n".join(lines)


def ratios(results: list[dict[str, Any]], kind: str = "wall") -> dict[str, float | None]:
    """ingest(largest size) / ingest(smallest size), per kind of ingest."""
    small, large = results[0][f"median_{kind}_s"], results[-1][f"median_{kind}_s"]
    out: dict[str, float | None] = {}
    for key in ("ingest_new_subject", "ingest_next_session"):
        out[key] = large[key] / small[key] if small[key] and large[key] else None
    return out


def print_report(report: dict[str, Any]) -> None:
    """The tables and ratios of a report (as written to the JSON file) on stdout."""
    results = report["results"]
    sizes = [r["size"] for r in results]
    print(
        f"scale benchmark, {report['layout']}, {report['date']}, windl "
        f"{report['versions']['windl_commit'][:10]}, median of {report['parameters']['repeat']}"
        + ("" if report.get("complete", True) else " (incomplete: stopped before the last size)")
    )
    print(table(results, "wall"))
    print()
    print(table(results, "cpu"))
    print()
    print(touched_table(results))
    print()
    for kind in ("wall", "cpu"):
        for key, ratio in ratios(results, kind).items():
            verdict = "n/a" if ratio is None else ("met" if ratio <= GOAL else "missed")
            shown = "n/a" if ratio is None else f"{ratio:.2f}"
            print(
                f"{key} ({kind}): {sizes[-1]} / {sizes[0]} sessions = {shown} "
                f"(goal <= {GOAL}: {verdict})"
            )


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sessions-per-subject", type=int, default=2)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the site afterwards")
    parser.add_argument(
        "--output", type=Path, default=REPO / "benchmarks" / "results" / "scale.json"
    )
    parser.add_argument(
        "--status-repeat",
        type=int,
        default=None,
        help="repeats of datalad status (default: --repeat)",
    )
    parser.add_argument(
        "--table", type=Path, default=None, help="only print the tables of this results file"
    )
    args = parser.parse_args(argv)
    if args.table is not None:
        print_report(json.loads(args.table.read_text(encoding="utf-8")))
        return 0
    sizes = sorted(set(args.sizes))
    os.environ.update(datasets.tool_env())

    workdir = Path(tempfile.mkdtemp(prefix="windl-scale-", dir=args.tmpdir))
    log(f"working in {workdir}")
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    try:
        synthetic = SyntheticSource(args.source, args.seed)
        first = pydicom.dcmread(synthetic.source / synthetic.files[0], stop_before_pixels=True)
        participant = {"age": first.get("PatientAge"), "sex": first.get("PatientSex")}
        template = make_bids_template(synthetic, workdir / "scratch")
        site = init_site(workdir / "site")
        create_study(site, STUDY)
        builder = Builder(
            site, synthetic, template, participant, args.sessions_per_subject, workdir / "scratch"
        )
        results: list[dict[str, Any]] = []
        report: dict[str, Any] = {}
        for size in sizes:
            if builder.ingested > size:
                raise SystemExit(f"size {size} is below the {builder.ingested} sessions built")
            build_s = builder.grow_to(size)
            result = measure(builder, size, args.repeat, args.status_repeat or args.repeat)
            result["build_s"] = build_s
            results.append(result)
            log(table(results, "wall"))
            # written after every size: a run stopped at 1,000 sessions keeps 10 and 100
            report = {
                "benchmark": "scale",
                "complete": size == sizes[-1],
                "date": started.isoformat(timespec="seconds"),
                "seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
                "machine": {
                    "nproc": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_start": load_start,
                    "load_end": os.getloadavg(),
                },
                "versions": versions(),
                "layout": layout_of(site),
                "parameters": {
                    "sizes": sizes,
                    "repeat": args.repeat,
                    "status_repeat": args.status_repeat or args.repeat,
                    "sessions_per_subject": args.sessions_per_subject,
                    "source": str(args.source),
                    "dicom_files_per_session": len(synthetic.files),
                    "bids_files_per_session": len(template.files),
                    "seed": args.seed,
                },
                "ratios": ratios(results, "wall"),
                "ratios_cpu": ratios(results, "cpu"),
                "goal_ratio": GOAL,
                "results": results,
            }
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    finally:
        if not args.keep:
            log(f"removing {workdir}")
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(report)
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
