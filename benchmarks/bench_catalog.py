"""Benchmark catalog search on a synthetic catalog of 10,000 datasets and 1,000,000 files.

What is measured
----------------
Wall-clock latency (:func:`time.perf_counter`) of :func:`windl.catalog.search.search` — the
call the CLI, the HTTP API and the portal make: total, one page of results and all facet
counts — over a realistic mix of queries, on SQLite (the site default) and on a real
PostgreSQL server (a throwaway cluster of Debian's binaries, started as the tests start it).
Also timed: :func:`~windl.catalog.search.dataset_detail` with one page of a version's files.

How the catalog is made
-----------------------
From real metadata: every BIDS example of ``/work/shared/data/bids_examples`` (7T test-retest
MRI, OMEGA MEG, MNE sample MEG, ds114, EEG matching pennies, the synthetic dataset) and
``mne_bids_tiny_bids`` is committed to a scratch git repository and read by the catalog's
own extractor (:func:`windl.catalog.extract.snapshot`: names, descriptions, authors,
licenses, datatypes, suffixes, tasks, participants, files with their BIDS entities). These
snapshots are then multiplied into ``--datasets`` catalog datasets under new names (a study
dataset and its individuals, members and external releases, in turn), each with
``--files / --datasets`` of its template's files (cycled when the template has fewer), and
inserted in bulk through the catalog's migrated schema (full-text index included). The
participant count of each copy is the template's times 1 to 5, so that ``participants>=N`` has
something to select; one release in ten has an unpublished HEAD only (visible to members).

Each query's answer is checked before its time is used (e.g. an external viewer must see
only published external releases, text queries must find something), so a broken search is
never reported as a fast one.

Usage
-----
``python benchmarks/bench_catalog.py [--datasets N] [--files N] [--repeat N]
[--backend sqlite --backend postgresql] [--tmpdir DIR] [--output FILE]``

Prints p50/p95 per backend and per kind of query, and writes
``benchmarks/results/catalog.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from windl import database, datasets  # noqa: E402
from windl.catalog.access import Viewer  # noqa: E402
from windl.catalog.extract import Snapshot, snapshot  # noqa: E402
from windl.catalog.index import Source, pack_terms, search_document, terms_key  # noqa: E402
from windl.catalog.models import (  # noqa: E402
    datasets_t,
    entries_t,
    files_t,
    terms_t,
    termsets_t,
    versions_t,
)
from windl.catalog.query import parse_query  # noqa: E402
from windl.catalog.search import dataset_detail, search  # noqa: E402

RESULTS = HERE / "results" / "catalog.json"
DATA = Path("/work/shared/data")
SCOPES = (None, "individuals", "members", "external")  # a study, then its three releases
CHUNK = 20_000
GOAL_P95_MS = 50.0


@dataclass
class Template:
    key: str
    snap: Snapshot


def real_templates(data: Path, scratch: Path) -> list[Template]:
    """Snapshots of the real BIDS examples, each committed to a scratch git repository."""
    folders = sorted(p for p in (data / "bids_examples").iterdir() if p.is_dir())
    folders.append(data / "mne_bids_tiny_bids" / "tiny_bids")
    templates = []
    for folder in folders:
        if not (folder / "dataset_description.json").is_file():
            continue
        repo = scratch / "templates" / folder.name
        shutil.copytree(folder, repo)
        datasets.git(repo, "init", "-q")
        datasets.git(repo, "add", "-A")
        datasets.git(
            repo,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-q",
            "-m",
            "bids example",
        )
        templates.append(Template(folder.name, snapshot(repo, datasets.head(repo))))
    if not templates:
        raise SystemExit(f"no BIDS examples found under {data}")
    return templates


def fill(engine: sa.Engine, templates: list[Template], n_datasets: int, n_files: int) -> None:
    """Insert the synthetic catalog in bulk (the schema made by the real migration)."""
    database.migrate(engine, "catalog")
    per_dataset = max(1, n_files // n_datasets)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    dataset_rows, version_rows, entry_rows, term_rows, file_rows = [], [], [], [], []
    file_id = term_id = 0
    termsets: dict[int, str] = {}
    for i in range(n_datasets):
        template = templates[(i // len(SCOPES)) % len(templates)]
        snap = template.snap
        study = f"{template.key.replace('_', '-')}-{i // len(SCOPES):05d}"
        scope = SCOPES[i % len(SCOPES)]
        kind = "study" if scope is None else "release"
        dataset_id = study if scope is None else f"{study}/{scope}"
        published = kind == "release" and i % 10 != 3  # one release in ten: unpublished HEAD
        commit = f"{i:040x}"
        participants = snap.n_participants * (1 + i % 5)
        source = Source(dataset_id, kind, study, scope, Path("/nonexistent") / dataset_id)
        dataset_rows.append(
            {
                "id": dataset_id,
                "kind": kind,
                "study": study,
                "scope": scope,
                "path": str(source.path),
                "clone_url": None,
                "fingerprint": commit,
                "head_commit": commit,
                "first_commit_date": now,
                "indexed_at": now,
            }
        )
        version_id = i + 1
        version_rows.append(
            {
                "id": version_id,
                "dataset_id": dataset_id,
                "commit": commit,
                "version": "1.0.0" if kind == "release" else None,
                "tag": "v1.0.0" if published else None,
                "date": now,
                "published": published,
                "is_head": True,
                "latest_published": published,
                "name": snap.name,
                "description": snap.description,
                "authors": snap.authors,
                "license": snap.license,
                "doi": None,
                "modalities": snap.modalities,
                "datatypes": snap.datatypes,
                "suffixes": snap.suffixes,
                "tasks": snap.tasks,
                "derivatives": snap.derivatives,
                "n_participants": participants,
                "n_sessions": snap.n_sessions * (1 + i % 5),
                "participants": {**snap.participants, "count": participants},
                "qc": {},
                "has_qc": False,
                "n_files": per_dataset,
                "size": snap.size,
                "first_commit_date": now,
                "last_commit_date": now,
                "changes": snap.changes,
                "search_doc": search_document(source, snap),
            }
        )
        entry_rows.append(
            {
                "version_id": version_id,
                "dataset_id": dataset_id,
                "kind": kind,
                "scope": scope,
                "published": published,
                "is_head": True,
                "latest_published": published,
                "license": snap.license,
                "n_participants": participants,
                "has_qc": False,
                "terms": pack_terms(snap),
                "terms_key": terms_key(pack_terms(snap)),
            }
        )
        termsets[terms_key(pack_terms(snap))] = pack_terms(snap)
        for facet, values in (
            ("modality", snap.modalities),
            ("datatype", snap.datatypes),
            ("suffix", snap.suffixes),
            ("task", snap.tasks),
        ):
            for value in values:
                term_id += 1
                term_rows.append(
                    {
                        "id": term_id,
                        "version_id": version_id,
                        "facet": facet,
                        "value": value,
                        "norm": value.lower(),
                    }
                )
        for k in range(per_dataset):
            f = snap.files[(i * 37 + k) % len(snap.files)]
            copy = (i * 37 + k) // len(snap.files) - (i * 37) // len(snap.files)
            file_id += 1
            file_rows.append(
                {
                    **f.row(),
                    "id": file_id,
                    "version_id": version_id,
                    "path": f.path if copy == 0 else f"copy-{copy}/{f.path}",
                }
            )
    with engine.begin() as connection:
        for table, rows in (
            (datasets_t, dataset_rows),
            (versions_t, version_rows),
            (entries_t, entry_rows),
            (termsets_t, [{"key": k, "terms": t} for k, t in termsets.items()]),
            (terms_t, term_rows),
            (files_t, file_rows),
        ):
            for start in range(0, len(rows), CHUNK):
                connection.execute(sa.insert(table), rows[start : start + CHUNK])
        if engine.dialect.name == "postgresql":
            # ids were given explicitly: move the sequences past them
            for table in ("catalog_versions", "catalog_terms", "catalog_files"):
                connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    # statistics for the planner, and on PostgreSQL the GIN index's pending list merged:
    # what autovacuum does shortly after any large `windl catalog index`
    maintenance = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text(maintenance))


@dataclass(frozen=True)
class Case:
    kind: str
    text: str
    viewer: Viewer
    page: int = 1


MEMBER = Viewer("member", "someone@example.org")
EXTERNAL = Viewer("external")
OPERATOR = Viewer("operator")
CASES = (
    Case("free text", "rest", EXTERNAL),
    Case("free text", "visual", MEMBER),
    Case("free text", "matching pennies", OPERATOR),
    Case("free text", "mne sample", EXTERNAL),
    Case("free text", "tiny", MEMBER),
    Case("facet", "modality:eeg", EXTERNAL),
    Case("facet", "suffix:T1w", MEMBER),
    Case("facet", "datatype:func", OPERATOR),
    Case("facet", "task:rest", EXTERNAL),
    Case("facet", "participants>=20", MEMBER),
    Case("facet", "", EXTERNAL),
    Case("combined", "rest modality:meg", EXTERNAL),
    Case("combined", "suffix:bold participants>=10 scope:members", MEMBER),
    Case("combined", "sample modality:meg suffix:meg license:cc0", OPERATOR),
    Case("combined", "modality:mri,eeg task:rest participants>=5", EXTERNAL),
    Case("page 2", "", MEMBER, 2),
    Case("page 2", "modality:mri", EXTERNAL, 2),
    Case("page 2", "rest", OPERATOR, 2),
)


def check(engine: sa.Engine, case: Case, found: Any) -> None:
    """A query's answer must be right before its time counts."""
    if case.viewer.role == "external":
        bad = [r.id for r in found.results if r.scope != "external" or not r.published]
        if bad:
            raise SystemExit(f"external viewer saw {bad[0]} for {case.text!r}")
    if case.text and found.total == 0:
        raise SystemExit(f"{case.text!r} found nothing: the synthetic catalog is broken")
    if case.page > 1 and found.total > found.per_page and not found.results:
        raise SystemExit(f"page {case.page} of {case.text!r} is empty")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(engine: sa.Engine, repeat: int) -> dict[str, Any]:
    """Run every case ``repeat`` times (after one checked warm-up); latencies in ms."""
    times: dict[str, list[float]] = {}
    cpu: list[float] = []  # this process's CPU per search: all of SQLite's work, no waiting
    for case in CASES:
        found = search(engine, parse_query(case.text), case.viewer, page=case.page)
        check(engine, case, found)
    some = search(engine, parse_query(""), OPERATOR).results[0].id
    for _ in range(repeat):
        for case in CASES:
            query = parse_query(case.text)
            start, start_cpu = time.perf_counter(), time.process_time()
            search(engine, query, case.viewer, page=case.page)
            times.setdefault(case.kind, []).append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        start = time.perf_counter()
        detail = dataset_detail(engine, some, OPERATOR, files_page=2, files_per_page=50)
        times.setdefault("dataset page + files", []).append((time.perf_counter() - start) * 1000)
        if detail is None or detail.files is None or not detail.files.files:
            raise SystemExit(f"dataset_detail({some!r}) gave no files")
    searches = [t for kind, ts in times.items() if kind != "dataset page + files" for t in ts]
    summary = {
        kind: {"n": len(ts), "p50_ms": percentile(ts, 0.5), "p95_ms": percentile(ts, 0.95)}
        for kind, ts in times.items()
    }
    summary["all searches"] = {
        "n": len(searches),
        "p50_ms": percentile(searches, 0.5),
        "p95_ms": percentile(searches, 0.95),
    }
    summary["all searches, client CPU"] = {
        "n": len(cpu),
        "p50_ms": percentile(cpu, 0.5),
        "p95_ms": percentile(cpu, 0.95),
    }
    return summary


@contextmanager
def backend(name: str, scratch: Path) -> Iterator[sa.Engine]:
    if name == "sqlite":
        yield database.engine_for_url(f"sqlite:///{scratch / 'catalog.sqlite'}")
        return
    from conftest import throwaway_postgres

    with throwaway_postgres() as server:
        admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text('CREATE DATABASE "bench"'))
        admin.dispose()
        engine = database.engine_for_url(f"{server}/bench")
        try:
            yield engine
        finally:
            engine.dispose()


def timed(label: str, func: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    value = func()
    print(f"  {label}: {time.perf_counter() - start:.1f} s", flush=True)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    backends = args.backend or ["sqlite", "postgresql"]
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "datasets": args.datasets,
        "files": args.files,
        "repeat": args.repeat,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="windl-bench-catalog-", dir=args.tmpdir) as tmp:
        scratch = Path(tmp)
        templates = real_templates(args.data, scratch)
        print(f"{len(templates)} real templates: {', '.join(t.key for t in templates)}")
        for name in backends:
            print(f"== {name}: {args.datasets} datasets, {args.files} files")
            with backend(name, scratch) as engine:
                timed("bulk insert", lambda e=engine: fill(e, templates, args.datasets, args.files))
                with engine.connect() as connection:
                    counts = {
                        t.name: connection.execute(
                            sa.select(sa.func.count()).select_from(t)
                        ).scalar_one()
                        for t in (datasets_t, files_t)
                    }
                print(f"  rows: {counts}")
                load_before = os.getloadavg()[0]
                results = measure(engine, args.repeat)
                load = (load_before, os.getloadavg()[0])
                report["backends"][name] = {"rows": counts, "latency": results, "load": load}
                print(f"  load average (1 min) before/after: {load[0]:.1f} / {load[1]:.1f}")
                for kind, r in results.items():
                    print(
                        f"  {kind:22} p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms"
                        f"  (n={r['n']})"
                    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    worst = max(r["latency"]["all searches"]["p95_ms"] for r in report["backends"].values())
    verdict = "met" if worst <= GOAL_P95_MS else "MISSED"
    print(f"goal p95 <= {GOAL_P95_MS:.0f} ms: {verdict} (worst p95 {worst:.1f} ms)")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
