"""Search the catalog and show one dataset: the interface of the CLI, HTTP API and portal.

Everything a viewer may not see, and everything the query excludes, is filtered in SQL
(:mod:`windl.catalog.access`) over the narrow ``catalog_entries`` rows; the total, the
page and the facet counts (grouped per distinct term set) are all taken under exactly the
same conditions, so an invisible dataset can never show up in any of them. Only the shown
page's summaries are then read from the wide version rows. Full-text matching is the only
dialect-specific part: FTS5 ``MATCH`` ranked by ``bm25`` on SQLite, ``@@`` on
``catalog_entries.search_tsv`` ranked by ``ts_rank`` on PostgreSQL (name words weigh most);
both match every word as a prefix.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from windl import database
from windl.catalog.access import Viewer, representative, version_visible
from windl.catalog.models import (
    datasets_t,
    entries_t,
    files_t,
    meta_t,
    termsets_t,
    versions_t,
)
from windl.catalog.query import Query
from windl.config import Site
from windl.errors import BadInput, WindlError
from windl.lru import LRU

FACETS = ("modality", "datatype", "suffix", "task", "scope", "license")
MAX_PER_PAGE = 200
#: the last page asked for (its offset must fit the database's integers)
MAX_PAGE = 1_000_000
SUMMARY_CHARS = 300
NOT_INDEXED = "this site's catalog was never indexed: run 'windl catalog index'"


class CatalogNotIndexed(WindlError):
    """The site's catalog was never built."""


@dataclass
class DatasetSummary:
    """One search result: a dataset as the viewer sees it (its newest visible version)."""

    id: str
    kind: str
    study: str
    scope: str | None
    name: str
    description: str
    authors: list[str]
    license: str | None
    doi: str | None
    version: str | None
    tag: str | None
    published: bool
    date: str | None
    modalities: list[str]
    datatypes: list[str]
    suffixes: list[str]
    tasks: list[str]
    n_participants: int
    n_sessions: int
    n_files: int
    size: int
    has_qc: bool
    derivatives: list[str]
    first_commit_date: str | None
    last_commit_date: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class VersionInfo:
    """One version of a dataset (a published tag, or the unpublished HEAD)."""

    version: str | None
    tag: str | None
    commit: str
    date: str | None
    doi: str | None
    published: bool
    head: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FilePage:
    """A page of the files of one version."""

    version: str | None
    commit: str
    total: int
    page: int
    per_page: int
    files: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DatasetDetail(DatasetSummary):
    """A dataset page: the summary plus versions, participants, QC, how to clone, files."""

    commit: str = ""
    changes: str = ""
    versions: list[VersionInfo] = field(default_factory=list)
    participants: dict[str, Any] = field(default_factory=dict)
    qc: dict[str, Any] = field(default_factory=dict)
    clone: dict[str, str] = field(default_factory=dict)
    files: FilePage | None = None


@dataclass
class SearchPage:
    """One page of results, the total, and facet counts over *all* matching datasets."""

    total: int
    page: int
    per_page: int
    results: list[DatasetSummary]
    facets: dict[str, dict[str, int]]
    query: Query | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "query": self.query.to_dict() if self.query else None,
            "results": [r.to_dict() for r in self.results],
            "facets": self.facets,
        }


_SUMMARY_COLUMNS = (
    datasets_t.c.id,
    datasets_t.c.kind,
    datasets_t.c.study,
    datasets_t.c.scope,
    versions_t.c.name,
    versions_t.c.description,
    versions_t.c.authors,
    versions_t.c.license,
    versions_t.c.doi,
    versions_t.c.version,
    versions_t.c.tag,
    versions_t.c.published,
    versions_t.c.date,
    versions_t.c.modalities,
    versions_t.c.datatypes,
    versions_t.c.suffixes,
    versions_t.c.tasks,
    versions_t.c.n_participants,
    versions_t.c.n_sessions,
    versions_t.c.n_files,
    versions_t.c.size,
    versions_t.c.has_qc,
    versions_t.c.derivatives,
    versions_t.c.first_commit_date,
    versions_t.c.last_commit_date,
)


def _summary(row: Any, short: bool = True) -> dict[str, Any]:
    data = dict(row._mapping)
    if short and len(data["description"]) > SUMMARY_CHARS:
        data["description"] = data["description"][:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"
    data["published"] = bool(data["published"])
    data["has_qc"] = bool(data["has_qc"])
    return data


# --------------------------------------------------------------------------- full text
def _fts5_matches(words: list[str]) -> sa.Subquery:
    """SQLite: (version_id, rank) of the versions whose FTS5 row has every word as a prefix."""
    # every word quoted, so no FTS5 syntax ever comes from a user
    match = " ".join(f'"{w}"*' for w in words)
    fts = sa.table("catalog_fts", sa.column("rowid"), sa.column("rank"))
    return (
        sa.select(fts.c.rowid.label("version_id"), fts.c.rank.label("rank"))
        .where(sa.literal_column("catalog_fts").op("MATCH")(match))
        .subquery("fts")
    )


def _tsvector_match(words: list[str]) -> tuple[sa.ColumnElement[bool], Any]:
    """PostgreSQL: (condition, rank where smaller is better) on ``catalog_entries.search_tsv``."""
    tsquery = sa.func.to_tsquery("simple", " & ".join(f"{w}:*" for w in words))
    vector = sa.literal_column("catalog_entries.search_tsv")
    return vector.op("@@")(tsquery), -sa.func.ts_rank(vector, tsquery)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(query: Query) -> list[sa.ColumnElement[bool]]:
    e = entries_t.c
    conditions: list[sa.ColumnElement[bool]] = []
    # facet filters select term sets (few, and each stands for many datasets): a set
    # qualifies when, per facet asked, it holds one of the values asked (whole lines of the
    # packed "facet<TAB>value" text, case-insensitively)
    lines = sa.func.lower(sa.literal("\n") + termsets_t.c.terms + sa.literal("\n"))
    wanted = [
        sa.or_(
            *(
                lines.like(f"%\n{facet}\t{_like_escaped(value.lower())}\n%", escape="\\")
                for value in values
            )
        )
        for facet, values in (
            ("modality", query.modality),
            ("datatype", query.datatype),
            ("suffix", query.suffix),
            ("task", query.task),
        )
        if values
    ]
    if wanted:
        conditions.append(e.terms_key.in_(sa.select(termsets_t.c.key).where(*wanted)))
    if query.scope:
        conditions.append(e.scope.in_([s.lower() for s in query.scope]))
    if query.license:
        conditions.append(sa.func.lower(e.license).in_([x.lower() for x in query.license]))
    if query.min_participants is not None:
        conditions.append(e.n_participants >= query.min_participants)
    if query.has_qc is not None:
        conditions.append(e.has_qc.is_(query.has_qc))
    return conditions


def require_indexed(connection: Connection) -> None:
    """Raise :class:`CatalogNotIndexed` unless ``windl catalog index`` ran on this database."""
    indexed = sa.inspect(connection).has_table(meta_t.name) and (
        connection.execute(sa.select(meta_t.c.value).where(meta_t.c.key == "indexed_at")).scalar()
    )
    if not indexed:
        raise CatalogNotIndexed(NOT_INDEXED)


def search(
    engine: Engine, query: Query, viewer: Viewer, page: int = 1, per_page: int = 20
) -> SearchPage:
    """Datasets matching ``query`` that ``viewer`` may see, one page, with facet counts.

    Parameters
    ----------
    engine
        The site's database (catalog indexed).
    query
        Free text and filters (:func:`windl.catalog.query.parse_query`).
    viewer
        Who is asking; nothing else is ever counted or shown.
    page, per_page
        1-based page and its size (at most 200).

    Returns
    -------
    SearchPage
        Ranked by text relevance when there is text, else by dataset id.
    """
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise BadInput(f"page must be 1..{MAX_PAGE} and per_page 1..{MAX_PER_PAGE}")
    e = entries_t.c
    # the narrow search rows of every version the viewer may see that matches; the total,
    # order and page come from their ids, the facets from one grouped row per distinct
    # (term set, scope, license) of the same rows
    source: Any = entries_t
    conditions = [representative(viewer), *_filters(query)]
    rank: Any = sa.literal(0)
    if query.words and engine.dialect.name == "sqlite":
        fts = _fts5_matches(query.words)
        source = entries_t.join(fts, fts.c.version_id == e.version_id)
        rank = fts.c.rank
    elif query.words:
        condition, rank = _tsvector_match(query.words)
        conditions.append(condition)
    # one pass over the matching rows (a broad free-text match is a sequential scan that
    # evaluates the text condition on every row): the page and the facet groups are both
    # read from one materialised set, in one statement
    matches = (
        sa.select(e.version_id, e.dataset_id, e.terms_key, e.scope, e.license, rank.label("rank"))
        .select_from(source)
        .where(*conditions)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    m = matches.c
    # ties broken by the code-point order of ids on both backends: PostgreSQL's default
    # collation follows the locale, so the id is compared as "C" there
    dataset_order = (
        m.dataset_id.collate("C") if engine.dialect.name == "postgresql" else m.dataset_id
    )
    order = [*([m.rank] if query.words else []), dataset_order]
    shown_rows = (
        sa.select(m.version_id, sa.func.row_number().over(order_by=order).label("position"))
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
        .subquery("shown")
    )
    grouped = (
        sa.select(m.terms_key, m.scope, m.license, sa.func.count().label("n"))
        .group_by(m.terms_key, m.scope, m.license)
        .subquery("grouped")
    )
    both = sa.union_all(
        sa.select(
            sa.literal("group").label("part"),
            sa.cast(sa.null(), sa.Integer).label("version_id"),
            termsets_t.c.terms,
            grouped.c.scope,
            grouped.c.license,
            grouped.c.n,
        )
        .select_from(grouped)
        .outerjoin(termsets_t, termsets_t.c.key == grouped.c.terms_key),
        sa.select(
            sa.literal("page").label("part"),
            shown_rows.c.version_id,
            sa.cast(sa.null(), sa.Text).label("terms"),
            sa.cast(sa.null(), sa.Text).label("scope"),
            sa.cast(sa.null(), sa.Text).label("license"),
            shown_rows.c.position,
        ),
    )
    with engine.connect() as connection:
        try:
            rows = connection.execute(both).all()
        except sa.exc.DatabaseError:
            connection.rollback()  # PostgreSQL refuses anything else in a failed transaction
            if not sa.inspect(connection).has_table(entries_t.name):
                raise CatalogNotIndexed(NOT_INDEXED) from None
            raise
        groups = [(r.terms, r.scope, r.license, r.n) for r in rows if r.part == "group"]
        # a union keeps no order: the page rows carry their position (in column n)
        shown = [
            r.version_id for r in sorted((r for r in rows if r.part == "page"), key=lambda r: r.n)
        ]
        summaries = {
            r.version_id: _to_summary(r)
            for r in connection.execute(
                sa.select(versions_t.c.id.label("version_id"), *_SUMMARY_COLUMNS)
                .select_from(
                    versions_t.join(datasets_t, datasets_t.c.id == versions_t.c.dataset_id)
                )
                .where(versions_t.c.id.in_(shown))
            )
        }
    facets = _facets([(terms or "", scope, lic, n) for terms, scope, lic, n in groups])
    return SearchPage(
        total=sum(n for *_, n in groups),  # the groups partition the matching rows
        page=page,
        per_page=per_page,
        results=[summaries[vid] for vid in shown],
        facets=facets,
        query=query,
    )


def _to_summary(row: Any) -> DatasetSummary:
    data = _summary(row)
    names = {f.name for f in dataclasses.fields(DatasetSummary)}
    return DatasetSummary(**{k: v for k, v in data.items() if k in names})


def _facets(groups: list[tuple[str, str | None, str | None, int]]) -> dict[str, dict[str, int]]:
    """Facet counts from (packed terms, scope, license, number of matching datasets)."""
    facets: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    terms: Counter[str] = Counter()
    for packed, scope, license_, count in groups:
        for line in packed.split("\n") if packed else ():
            terms[line] += count
        if scope:
            facets["scope"][scope] = facets["scope"].get(scope, 0) + count
        if license_:
            facets["license"][license_] = facets["license"].get(license_, 0) + count
    for line, count in terms.items():
        facet, _, value = line.partition("\t")
        facets[facet][value] = count
    return {
        name: dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0].lower())))
        for name, values in facets.items()
    }


# --------------------------------------------------------------------------- one dataset
def dataset_detail(
    engine: Engine,
    dataset_id: str,
    viewer: Viewer,
    version: str | None = None,
    files_page: int = 1,
    files_per_page: int = 100,
) -> DatasetDetail | None:
    """The dataset page of ``dataset_id`` (``<study>`` or ``<study>/<scope>``), or ``None``.

    ``None`` when the dataset does not exist *or* ``viewer`` may not see it (the two are
    never told apart). ``version`` (``X.Y.Z``, ``vX.Y.Z`` or ``HEAD``) picks the version
    shown and whose files are listed; by default the one search shows.
    """
    if files_page < 1 or not 1 <= files_per_page <= 1000:
        raise BadInput("files_page must be 1 or more and files_per_page 1..1000")
    joined = versions_t.join(datasets_t, datasets_t.c.id == versions_t.c.dataset_id)
    with engine.connect() as connection:
        visible = connection.execute(
            sa.select(
                versions_t.c.id,
                versions_t.c.version,
                versions_t.c.tag,
                versions_t.c.commit,
                versions_t.c.date,
                versions_t.c.doi,
                versions_t.c.published,
                versions_t.c.is_head,
                versions_t.c.latest_published,
            )
            .select_from(joined)
            .where(datasets_t.c.id == dataset_id, version_visible(viewer))
        ).all()
        if not visible:
            return None
        chosen = _choose(visible, viewer, version)
        if chosen is None:
            return None
        row = connection.execute(
            sa.select(
                *_SUMMARY_COLUMNS,
                datasets_t.c.clone_url,
                datasets_t.c.path,
                versions_t.c.commit,
                versions_t.c.changes,
                versions_t.c.participants,
                versions_t.c.qc,
            )
            .select_from(joined)
            .where(versions_t.c.id == chosen)
        ).one()
        files = _files(connection, chosen, row.version, row.commit, files_page, files_per_page)
    data = _summary(row, short=False)
    names = {f.name for f in dataclasses.fields(DatasetSummary)}
    versions = sorted(
        (
            VersionInfo(
                version=v.version,
                tag=v.tag,
                commit=v.commit,
                date=v.date,
                doi=v.doi,
                published=bool(v.published),
                head=bool(v.is_head),
            )
            for v in visible
        ),
        key=lambda v: (v.published, v.date or ""),
        reverse=True,
    )
    return DatasetDetail(
        **{k: v for k, v in data.items() if k in names},
        commit=row.commit,
        changes=row.changes,
        versions=versions,
        participants=row.participants or {},
        qc=row.qc or {},
        clone=_clone(row, viewer),
        files=files,
    )


def _choose(visible: list[Any], viewer: Viewer, version: str | None) -> int | None:
    if version is None:
        flag = "is_head" if viewer.sees_unpublished else "latest_published"
        picked = [v.id for v in visible if getattr(v, flag)]
        return picked[0] if picked else None
    wanted = version.strip()
    for v in visible:
        if wanted.upper() == "HEAD" and v.is_head:
            return v.id
        named = wanted in (v.tag, v.version) or f"v{wanted}" == v.tag
        if named and (v.tag or viewer.sees_unpublished):
            return v.id
    return None


def _clone(row: Any, viewer: Viewer) -> dict[str, str]:
    """How to get the data: the site-local command, for the site's operator only."""
    if viewer.role != "operator" or not row.clone_url:
        return {}
    url = row.clone_url
    if row.tag and url.startswith("ria+"):
        url += f"@{row.tag}"  # a RIA URL names a version; plain repositories do not
    return {"local": f"datalad clone '{url}'"}


def _files(
    connection: Connection,
    version_id: int,
    version: str | None,
    commit: str,
    page: int,
    per_page: int,
) -> FilePage:
    total = connection.execute(
        sa.select(sa.func.count()).where(files_t.c.version_id == version_id)
    ).scalar_one()
    rows = connection.execute(
        sa.select(
            files_t.c.path,
            files_t.c.size,
            files_t.c.annexed,
            files_t.c.subject,
            files_t.c.session,
            files_t.c.datatype,
            files_t.c.suffix,
            files_t.c.task,
            files_t.c.extension,
        )
        .where(files_t.c.version_id == version_id)
        .order_by(files_t.c.path)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return FilePage(
        version=version,
        commit=commit,
        total=total,
        page=page,
        per_page=per_page,
        files=[{**r._mapping, "annexed": bool(r.annexed)} for r in rows],
    )


class SearchCache:
    """Answers of :func:`search`, kept while the catalog's generation is unchanged.

    Many people ask the same few searches (the portal's home page is one); one small
    query for the generation replaces the search's and the facets' queries. Each process
    (portal worker) keeps its own.
    """

    def __init__(self, size: int = 1024) -> None:
        self._answers = LRU(size)

    def search(
        self, engine: Engine, query: Query, viewer: Viewer, page: int = 1, per_page: int = 20
    ) -> SearchPage:
        """:func:`search`, from the cache when the catalog has not changed since."""
        try:
            with engine.connect() as connection:
                generation = connection.execute(
                    sa.select(meta_t.c.value).where(meta_t.c.key == "generation")
                ).scalar()
        except sa.exc.DBAPIError:
            generation = None  # no catalog tables yet: search() says so
        if generation is None:
            return search(engine, query, viewer, page=page, per_page=per_page)
        key = (str(engine.url), generation, query, viewer, page, per_page)
        hit, found = self._answers.get(key)
        if hit:
            return found  # type: ignore[no-any-return]
        answer = search(engine, query, viewer, page=page, per_page=per_page)
        self._answers.put(key, answer)
        return answer


def search_site(
    site: Site, query: Query, viewer: Viewer, page: int = 1, per_page: int = 20
) -> SearchPage:
    """:func:`search` in ``site``'s database; :class:`CatalogNotIndexed` if it has no catalog."""
    engine = database.engine(site)
    with engine.connect() as connection:
        require_indexed(connection)
    return search(engine, query, viewer, page=page, per_page=per_page)
