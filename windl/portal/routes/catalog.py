"""Search and dataset pages, and the HTTP API, on top of the catalog (:mod:`windl.catalog`).

What a visitor sees is decided by the catalog's access rule for their role
(:class:`windl.catalog.access.Viewer`): anonymous visitors and external users see published
external releases only; a dataset they may not see answers 404 exactly like one that does
not exist, on pages and in the API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from windl.catalog.access import Viewer
from windl.catalog.query import LIST_KEYS, Query, parse_query
from windl.catalog.search import CatalogNotIndexed, DatasetDetail, dataset_detail
from windl.errors import BadInput
from windl.portal import accounts, audit, dua, gitserve, rights, security
from windl.portal.context import Portal, PortalDep

PER_PAGE = 20
router = APIRouter()


def viewer_of(user: accounts.User | None) -> Viewer:
    """The catalog viewer an account (or nobody) is."""
    if user is None:
        return Viewer("anonymous")
    return Viewer(user.role, user.email)  # type: ignore[arg-type]


def _query(params: dict[str, str]) -> Query:
    """The query of a search form or API call: ``q`` in the query language plus filters."""
    filters: dict[str, Any] = {key: params[key] for key in LIST_KEYS if params.get(key, "").strip()}
    minimum = params.get("min_participants", "").strip()
    if minimum:
        if not (minimum.isascii() and minimum.isdigit()):
            raise BadInput(f"min_participants must be a whole number, not {minimum!r}")
        filters["min_participants"] = int(minimum)
    return parse_query(params.get("q", ""), **filters)


def _page_number(params: dict[str, str]) -> int:
    page = params.get("page", "1")
    if not (page.isascii() and page.isdigit()) or int(page) < 1:
        raise BadInput(f"page must be 1 or more, not {page!r}")
    return int(page)


def citation(detail: DatasetDetail, base_url: str) -> str:
    """A citation line: authors (year). name (version). DOI, else the dataset's page."""
    authors = ", ".join(detail.authors) or "windl"
    year = (detail.date or "")[:4]
    version = f" (version {detail.version})" if detail.version else ""
    where = f"https://doi.org/{detail.doi}" if detail.doi else f"{base_url}/datasets/{detail.id}"
    return f"{authors} ({year}). {detail.name}{version}. {where}"


def limit_anonymous(
    portal: Portal, request: Request, user: accounts.User | None, query: Query
) -> None:
    """Anonymous searches (not the bare home page) per address: ``[portal]`` sets how many."""
    if user is not None or not query.to_text():
        return
    if not portal.anonymous_searches.allow(portal.remote(request)):
        raise HTTPException(
            429,
            "too many searches from your address; wait a minute or log in",
            headers={"Retry-After": "60"},
        )


def run_search(portal: Portal, request: Request, user: accounts.User | None) -> tuple[Query, Any]:
    params = dict(request.query_params)
    query = _query(params)
    limit_anonymous(portal, request, user, query)
    page = portal.searches.search(
        portal.engine, query, viewer_of(user), page=_page_number(params), per_page=PER_PAGE
    )
    if query.to_text():
        _log_search(portal, request, user, query, f"{page.total} results")
    return query, page


def _log_view(
    portal: Portal,
    request: Request,
    user: accounts.User | None,
    detail: DatasetDetail,
    note: str = "",
) -> None:
    audit.record(
        portal.engine,
        "dataset-view",
        user.email if user else "",
        target=detail.id,
        version=detail.version or "",
        remote_addr=portal.remote(request),
        detail=note,
    )


def _log_search(
    portal: Portal, request: Request, user: accounts.User | None, query: Query, detail: str
) -> None:
    audit.record(
        portal.engine,
        "search",
        user.email if user else "",
        target=security.capped(query.to_text()),
        remote_addr=portal.remote(request),
        detail=detail,
    )


def facet_links(request: Request, facets: dict[str, dict[str, int]]) -> dict[str, list[Any]]:
    """Each facet value's count and the search link that adds (or removes) it."""
    params = {k: v for k, v in request.query_params.items() if k != "page"}
    links: dict[str, list[Any]] = {}
    for name, values in facets.items():
        entries = []
        for value, count in values.items():
            chosen = params.get(name) == value
            wanted = {**params}
            if chosen:
                wanted.pop(name)
            else:
                wanted[name] = value
            entries.append((value, count, "/search?" + urlencode(wanted), chosen))
        if entries:
            links[name] = entries
    return links


def page_link(request: Request, page: int) -> str:
    return "/search?" + urlencode({**dict(request.query_params), "page": str(page)})


@router.get("/", response_class=HTMLResponse)
def home(portal: PortalDep, request: Request) -> Response:
    return results_page(portal, request, "home.html")


@router.get("/search", response_class=HTMLResponse)
def search_page(portal: PortalDep, request: Request) -> Response:
    return results_page(portal, request, "results.html")


def results_page(portal: Portal, request: Request, template: str) -> Response:
    user = portal.user(request)
    try:
        query, page = run_search(portal, request, user)
    except CatalogNotIndexed as exc:
        return portal.render(
            request, "message.html", status_code=503, title="No catalog yet", message=str(exc)
        )
    except BadInput as exc:
        return portal.render(
            request, "message.html", status_code=400, title="Search", message=exc.message
        )
    return portal.render(
        request,
        template,
        user=user,
        query=query,
        q=request.query_params.get("q", ""),
        page=page,
        facets=facet_links(request, page.facets),
        previous=page_link(request, page.page - 1) if page.page > 1 else None,
        next=page_link(request, page.page + 1) if page.page < page.pages else None,
    )


@router.get("/datasets/{dataset_id:path}", response_class=HTMLResponse)
def dataset_page(portal: PortalDep, request: Request, dataset_id: str) -> Response:
    user = portal.user(request)
    version = request.query_params.get("version")
    try:
        detail = dataset_detail(portal.engine, dataset_id, viewer_of(user), version=version)
    except CatalogNotIndexed as exc:
        raise HTTPException(503, str(exc)) from None
    if detail is None:
        raise HTTPException(404, "no such dataset")
    _log_view(portal, request, user, detail)
    repo = (
        gitserve.published_repo(portal.site, detail.study, detail.scope)
        if detail.scope and detail.published
        else None
    )
    methods = gitserve.published_text(repo, detail.tag, "methods.md") if repo else None
    agreement = dua.current(portal.site)
    accepted = dua.accepted_at(portal.engine, user.id, agreement.version) if user else None
    base = portal.url
    return portal.render(
        request,
        "dataset.html",
        user=user,
        d=detail,
        citation=citation(detail, base),
        methods=methods,
        clone_url=f"{base}/git/{detail.study}/{detail.scope}" if repo else None,
        base_url=base,
        dua_version=agreement.version,
        dua_accepted=accepted,
        size=_size(detail.size),
    )


# ------------------------------------------------------------------------- HTTP API
def api_user(portal: Portal, request: Request) -> accounts.User | None:
    if request.headers.get("authorization"):
        user = rights.token_user(portal.site, portal.engine, request.headers.get("authorization"))
        if user is None:
            raise HTTPException(
                401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        return user
    return portal.user(request)


@router.get("/api/search")
def api_search(portal: PortalDep, request: Request) -> Response:
    user = api_user(portal, request)
    params = dict(request.query_params)
    try:
        per_page = int(params.get("per_page", PER_PAGE))
        query = _query(params)
        limit_anonymous(portal, request, user, query)
        page = portal.searches.search(
            portal.engine, query, viewer_of(user), page=_page_number(params), per_page=per_page
        )
    except CatalogNotIndexed as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    except (BadInput, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    _log_search(portal, request, user, query, f"api, {page.total} results")
    return JSONResponse(page.to_dict())


@router.get("/api/datasets/{dataset_id:path}")
def api_dataset(portal: PortalDep, request: Request, dataset_id: str) -> Response:
    user = api_user(portal, request)
    try:
        detail = dataset_detail(
            portal.engine, dataset_id, viewer_of(user), version=request.query_params.get("version")
        )
    except CatalogNotIndexed as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    if detail is None:
        return JSONResponse({"error": "no such dataset"}, status_code=404)
    _log_view(portal, request, user, detail, "api")
    data = detail.to_dict()
    repo = gitserve.published_repo(portal.site, detail.study, detail.scope or "")
    if repo is not None and detail.published:
        data["clone"] = {
            **data.get("clone", {}),
            "http": f"{portal.url}/git/{detail.study}/{detail.scope}",
        }
    return JSONResponse(data)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
