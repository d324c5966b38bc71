"""``windl catalog index``: bring the catalog in step with the site's datasets, incrementally.

Every study dataset (``superdataset/studies/<study>``) and release dataset
(``superdataset/releases/<study>/<scope>``) is one catalog dataset. Its *fingerprint* is its
HEAD plus its version tags; only a dataset whose fingerprint changed is read again, and of
it only the commits not indexed yet (a published tag never moves, so its snapshot is kept).
Datasets and versions that disappeared are removed. The grantees of individuals releases
are refreshed on every run (a grant changes no commit of the release).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from windl import database, datasets
from windl.catalog.extract import Snapshot, snapshot
from windl.catalog.models import (
    datasets_t,
    entries_t,
    files_t,
    grants_t,
    meta_t,
    terms_t,
    termsets_t,
    versions_t,
)
from windl.clock import utc_stamp
from windl.config import Site
from windl.release.build import ReleaseRefused, parse_version
from windl.study import list_studies

Progress = Callable[[str, int, int], None]
SCOPES = ("individuals", "members", "external")
FILE_CHUNK = 20_000


@dataclass(frozen=True)
class Source:
    """A dataset on disk that the catalog indexes."""

    id: str
    kind: str
    study: str
    scope: str | None
    path: Path


@dataclass
class IndexResult:
    """What an index run did."""

    datasets: int = 0
    read: list[str] = field(default_factory=list)  # datasets whose commits changed
    versions_read: int = 0  # snapshots extracted from git (new commits)
    removed: list[str] = field(default_factory=list)
    grants_changed: list[str] = field(default_factory=list)
    files: int = 0  # file rows written

    @property
    def changed(self) -> bool:
        return bool(self.read or self.removed or self.grants_changed)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "changed": self.changed}


def site_sources(site: Site) -> list[Source]:
    """The study and release datasets of ``site`` (those with at least one commit)."""
    found = [
        Source(study.name, "study", study.name, None, study.root) for study in list_studies(site)
    ]
    if site.releases.is_dir():
        for study_dir in sorted(p for p in site.releases.iterdir() if p.is_dir()):
            for scope in SCOPES:
                ds = study_dir / scope
                if (ds / ".git").exists():
                    found.append(
                        Source(f"{study_dir.name}/{scope}", "release", study_dir.name, scope, ds)
                    )
    return [s for s in found if _has_commits(s.path)]


def _has_commits(ds: Path) -> bool:
    return bool(datasets.git(ds, "rev-parse", "--verify", "-q", "HEAD", check=False).strip())


def active_grantees(site: Site, source: Source) -> set[str]:
    """Account e-mails (lower case) with an active grant on an individuals release."""
    if source.scope != "individuals":
        return set()
    from windl.share.individuals import read_grants

    return {
        r["person"].strip().lower()
        for r in read_grants(site, source.study)
        if r.get("revoked", "n/a") == "n/a"
    }


def index_site(
    site: Site, engine: Engine | None = None, progress: Progress | None = None
) -> IndexResult:
    """Index ``site``'s datasets into its catalog (``engine``: the site's database by default).

    Parameters
    ----------
    site
        The site whose datasets are read.
    engine
        Where the catalog lives; migrated to the newest schema first.
    progress
        Called as ``progress(stage, done, total)`` after each dataset.

    Returns
    -------
    IndexResult
        Which datasets were read again, removed, or had their grants change.
    """
    engine = engine if engine is not None else database.engine(site)
    database.migrate(engine, "catalog")
    sources = site_sources(site)
    result = IndexResult(datasets=len(sources))
    with engine.connect() as connection:
        known = dict(connection.execute(sa.select(datasets_t.c.id, datasets_t.c.fingerprint)).all())
        grants: dict[str, set[str]] = {}
        for dataset_id, person in connection.execute(
            sa.select(grants_t.c.dataset_id, grants_t.c.person)
        ):
            grants.setdefault(dataset_id, set()).add(person)
        indexed_before = connection.execute(
            sa.select(meta_t.c.value).where(meta_t.c.key == "indexed_at")
        ).scalar()
    for done, source in enumerate(sources, 1):
        fingerprint, head, tags = _fingerprint(source.path)
        if known.get(source.id) != fingerprint:
            with engine.begin() as connection:
                read, files = _reindex(connection, site, source, fingerprint, head, tags)
                bump_generation(connection)
            result.read.append(source.id)
            result.versions_read += read
            result.files += files
        wanted = active_grantees(site, source)
        if wanted != grants.get(source.id, set()):
            with engine.begin() as connection:
                connection.execute(sa.delete(grants_t).where(grants_t.c.dataset_id == source.id))
                if wanted:
                    connection.execute(
                        sa.insert(grants_t),
                        [{"dataset_id": source.id, "person": p} for p in sorted(wanted)],
                    )
                bump_generation(connection)
            result.grants_changed.append(source.id)
        if progress is not None:
            progress("catalog index", done, len(sources))
    gone = sorted(set(known) - {s.id for s in sources})
    with engine.begin() as connection:
        if gone:
            _delete_versions(
                connection, sa.select(versions_t.c.id).where(versions_t.c.dataset_id.in_(gone))
            )
            connection.execute(sa.delete(grants_t).where(grants_t.c.dataset_id.in_(gone)))
            connection.execute(sa.delete(datasets_t).where(datasets_t.c.id.in_(gone)))
            bump_generation(connection)
        result.removed = gone
        if result.changed or indexed_before is None:
            _set_meta(connection, "indexed_at", utc_stamp())
        has_generation = connection.execute(
            sa.select(meta_t.c.value).where(meta_t.c.key == GENERATION)
        ).scalar()
        if has_generation is None:  # a catalog indexed before generations were counted
            bump_generation(connection)
    return result


def _delete_versions(connection: Connection, ids: Any) -> None:
    """Delete version rows (a list or a SELECT of ids) with their files, terms and entries.

    Children are deleted explicitly rather than by ON DELETE CASCADE: SQLite enforces
    foreign keys only on connections that switched them on.
    """
    for table in (files_t, terms_t, entries_t):
        connection.execute(sa.delete(table).where(table.c.version_id.in_(ids)))
    connection.execute(sa.delete(versions_t).where(versions_t.c.id.in_(ids)))


GENERATION = "generation"


def bump_generation(connection: Connection) -> None:
    """Count one more change of the catalog, in the transaction that makes it.

    Readers that keep answers (the portal's search cache) key them on this number, so
    they never serve an answer older than the data it was computed from.
    """
    current = connection.execute(
        sa.select(meta_t.c.value).where(meta_t.c.key == GENERATION)
    ).scalar()
    _set_meta(connection, GENERATION, str(int(current or 0) + 1))


def _set_meta(connection: Connection, key: str, value: str) -> None:
    connection.execute(sa.delete(meta_t).where(meta_t.c.key == key))
    connection.execute(sa.insert(meta_t).values(key=key, value=value))


def _fingerprint(ds: Path) -> tuple[str, str, list[tuple[str, str, str]]]:
    head = datasets.head(ds)
    tags = sorted(datasets.version_tags(ds))
    return " ".join([head, *(f"{t}={c}" for t, c, _ in tags)]), head, tags


def _version_key(tag: str) -> tuple[int, int, int] | None:
    try:
        return parse_version(tag)
    except ReleaseRefused:  # a tag v* that is not vX.Y.Z is not a windl version
        return None


def _reindex(
    connection: Connection,
    site: Site,
    source: Source,
    fingerprint: str,
    head: str,
    tags: list[tuple[str, str, str]],
) -> tuple[int, int]:
    """Bring one dataset's rows up to date; returns (snapshots read, file rows written)."""
    versions = sorted(
        ((key, tag, commit, date) for tag, commit, date in tags if (key := _version_key(tag))),
        key=lambda t: t[0],
    )
    # commit -> (tag, tag date); with two tags on one commit the higher version names it
    tagged = {commit: (tag, date) for _key, tag, commit, date in versions}
    latest_commit = versions[-1][2] if versions else None
    wanted = list(dict.fromkeys([c for _k, _t, c, _d in versions] + [head]))
    dates = datasets.commit_dates(source.path, wanted)
    first = datasets.first_commit_date(source.path, head)
    row = {
        "kind": source.kind,
        "study": source.study,
        "scope": source.scope,
        "path": str(source.path),
        "clone_url": _clone_url(site, source, bool(versions)),
        "fingerprint": fingerprint,
        "head_commit": head,
        "first_commit_date": first,
        "indexed_at": utc_stamp(),
    }
    exists = connection.execute(
        sa.select(datasets_t.c.id).where(datasets_t.c.id == source.id)
    ).scalar()
    if exists:
        connection.execute(sa.update(datasets_t).where(datasets_t.c.id == source.id).values(row))
    else:
        connection.execute(sa.insert(datasets_t).values(id=source.id, **row))
    rows = connection.execute(
        sa.select(versions_t.c.commit, versions_t.c.id, versions_t.c.is_head).where(
            versions_t.c.dataset_id == source.id
        )
    ).all()
    have = {commit: vid for commit, vid, _ in rows}
    stale = [commit for commit in have if commit not in wanted]
    # the HEAD the catalog holds, when an ancestor of the new one: its rows are brought
    # forward (only the files that changed), not read again (a study of thousands of
    # sessions changes by one session per ingest)
    previous = next(
        (c for c, _, is_head in rows if is_head and c in stale and head not in have), None
    )
    if previous is not None and not datasets.is_ancestor(source.path, previous, head):
        previous = None
    if stale:
        _delete_versions(connection, [have[c] for c in stale if c != previous])
    read = files = 0
    for commit in wanted:
        tag, tag_date = tagged.get(commit, (None, None))
        flags = {
            "tag": tag,
            "published": tag is not None,
            "is_head": commit == head,
            "latest_published": commit == latest_commit,
            "date": tag_date or dates[commit],
        }
        if commit in have:
            connection.execute(
                sa.update(versions_t).where(versions_t.c.id == have[commit]).values(flags)
            )
            connection.execute(
                sa.update(entries_t)
                .where(entries_t.c.version_id == have[commit])
                .values({k: v for k, v in flags.items() if k in entries_t.c})
            )
            continue
        snap = snapshot(source.path, commit)
        if commit == head and previous is not None:
            files += _bring_forward(
                connection, source, snap, flags, first, dates[commit], have[previous], previous
            )
        else:
            version_id = _insert_version(connection, source, snap, flags, first, dates[commit])
            files += _insert_files(connection, version_id, snap)
        read += 1
    return read, files


def _bring_forward(
    connection: Connection,
    source: Source,
    snap: Snapshot,
    flags: dict[str, Any],
    first: str,
    commit_date: str,
    version_id: int,
    previous: str,
) -> int:
    """Make version row ``version_id`` (of commit ``previous``) that of ``snap``'s commit.

    The version's own row is rewritten (its search document with it: the FTS triggers
    and generated columns follow an UPDATE), its terms and search entry replaced, and
    only the file rows of paths that differ between the two commits are deleted and
    written again. Returns the number of file rows written.
    """
    values = _version_values(source, snap, flags, first, commit_date)
    connection.execute(sa.update(versions_t).where(versions_t.c.id == version_id).values(values))
    for table in (terms_t, entries_t):
        connection.execute(sa.delete(table).where(table.c.version_id == version_id))
    _insert_terms_and_entry(connection, source, snap, flags, version_id)
    changed = sorted(datasets.changed_paths(source.path, previous, snap.commit))
    for start in range(0, len(changed), FILE_CHUNK):
        chunk = changed[start : start + FILE_CHUNK]
        connection.execute(
            sa.delete(files_t).where(files_t.c.version_id == version_id, files_t.c.path.in_(chunk))
        )
    changed_set = set(changed)
    rows = [{"version_id": version_id, **f.row()} for f in snap.files if f.path in changed_set]
    for start in range(0, len(rows), FILE_CHUNK):
        connection.execute(sa.insert(files_t), rows[start : start + FILE_CHUNK])
    return len(rows)


def _clone_url(site: Site, source: Source, published: bool) -> str | None:
    if source.kind == "study":
        return str(source.path)
    if not published or source.scope is None:
        return None
    from windl.share.publish import clone_url

    return clone_url(site, source.study, source.scope)


def search_document(source: Source, snap: Snapshot) -> str:
    """The text full-text search matches for one version."""
    parts: Iterable[str] = [
        snap.name,
        source.study,
        source.scope or "study",
        source.kind,
        snap.version or "",
        snap.license or "",
        snap.doi or "",
        " ".join(snap.authors),
        " ".join(snap.modalities),
        " ".join(snap.datatypes),
        " ".join(snap.suffixes),
        " ".join(snap.tasks),
        " ".join(snap.derivatives),
        snap.description,
    ]
    return "\n".join(p for p in parts if p)


def _version_values(
    source: Source, snap: Snapshot, flags: dict[str, Any], first: str, commit_date: str
) -> dict[str, Any]:
    """The ``catalog_versions`` row of a snapshot (without its id)."""
    return {
        "dataset_id": source.id,
        "commit": snap.commit,
        "version": snap.version,
        "name": snap.name,
        "description": snap.description,
        "authors": snap.authors,
        "license": snap.license,
        "doi": snap.doi,
        "modalities": snap.modalities,
        "datatypes": snap.datatypes,
        "suffixes": snap.suffixes,
        "tasks": snap.tasks,
        "derivatives": snap.derivatives,
        "n_participants": snap.n_participants,
        "n_sessions": snap.n_sessions,
        "participants": snap.participants,
        "qc": snap.qc,
        "has_qc": bool(snap.qc),
        "n_files": snap.n_files,
        "size": snap.size,
        "first_commit_date": first,
        "last_commit_date": commit_date,
        "changes": snap.changes,
        "search_doc": search_document(source, snap),
        **flags,
    }


def _insert_version(
    connection: Connection,
    source: Source,
    snap: Snapshot,
    flags: dict[str, Any],
    first: str,
    commit_date: str,
) -> int:
    inserted = connection.execute(
        sa.insert(versions_t).values(_version_values(source, snap, flags, first, commit_date))
    )
    version_id = int(inserted.inserted_primary_key[0])
    _insert_terms_and_entry(connection, source, snap, flags, version_id)
    return version_id


def _insert_terms_and_entry(
    connection: Connection,
    source: Source,
    snap: Snapshot,
    flags: dict[str, Any],
    version_id: int,
) -> None:
    terms = [
        {"version_id": version_id, "facet": facet, "value": value, "norm": value.lower()}
        for facet, values in facet_values(snap)
        for value in values
    ]
    if terms:
        connection.execute(sa.insert(terms_t), terms)
    packed = pack_terms(snap)
    key = terms_key(packed)
    known = connection.execute(sa.select(termsets_t.c.key).where(termsets_t.c.key == key))
    if known.scalar() is None:
        connection.execute(sa.insert(termsets_t).values(key=key, terms=packed))
    connection.execute(
        sa.insert(entries_t).values(
            version_id=version_id,
            dataset_id=source.id,
            kind=source.kind,
            scope=source.scope,
            published=flags["published"],
            is_head=flags["is_head"],
            latest_published=flags["latest_published"],
            license=snap.license,
            n_participants=snap.n_participants,
            has_qc=bool(snap.qc),
            terms=packed,
            terms_key=key,
        )
    )


def facet_values(snap: Snapshot) -> list[tuple[str, list[str]]]:
    """(facet, values) of the list facets of a snapshot."""
    return [
        ("modality", snap.modalities),
        ("datatype", snap.datatypes),
        ("suffix", snap.suffixes),
        ("task", snap.tasks),
    ]


def terms_key(packed: str) -> int:
    """A stable 63-bit key of a packed term set (its ``catalog_termsets`` row)."""
    return int.from_bytes(hashlib.sha256(packed.encode()).digest()[:8], "big") >> 1


def pack_terms(snap: Snapshot) -> str:
    """The facet values of a snapshot as ``facet<TAB>value`` lines (``catalog_entries.terms``)."""
    return "\n".join(
        f"{facet}\t{value}" for facet, values in facet_values(snap) for value in values
    )


def _insert_files(connection: Connection, version_id: int, snap: Snapshot) -> int:
    rows = [{"version_id": version_id, **f.row()} for f in snap.files]
    for start in range(0, len(rows), FILE_CHUNK):
        connection.execute(sa.insert(files_t), rows[start : start + FILE_CHUNK])
    return len(rows)
