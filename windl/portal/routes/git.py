"""``datalad clone`` and ``datalad get`` over HTTP: the token gate in front of
:mod:`windl.portal.gitserve` (smart HTTP, annex config and objects)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from windl.portal import audit, gitserve, rights
from windl.portal.context import Portal, PortalDep

router = APIRouter()
#: git's negotiation (wants and haves) of a clone or fetch is far smaller than this
MAX_UPLOAD_PACK_REQUEST = 16 * 1024 * 1024
CHALLENGE = {"WWW-Authenticate": 'Basic realm="windl", charset="UTF-8"'}


def gate(
    portal: Portal, request: Request, study: str, scope: str, event: str, target: str
) -> tuple[Path, rights.Decision]:
    decision = rights.release_access(
        portal.site, portal.engine, scope, request.headers.get("authorization")
    )
    repo = gitserve.published_repo(portal.site, study, scope)
    if decision.status == 200 and repo is None:
        decision = rights.Decision(404, decision.user, "not published")
    if decision.status != 200:
        if decision.status != 401 or request.headers.get("authorization"):
            # a first anonymous probe (before git asks for credentials) is not logged
            audit.record(
                portal.engine,
                f"{event}-refused",
                decision.user.email if decision.user else "",
                target=target,
                remote_addr=portal.remote(request),
                detail=f"{decision.status} {decision.reason}",
            )
        if decision.status == 401:
            raise HTTPException(401, "a personal token is needed", headers=CHALLENGE)
        if decision.status == 403:
            raise HTTPException(
                403,
                f"{decision.reason}: accept it at {portal.url}/dua",
            )
        raise HTTPException(404, "no such dataset")
    assert repo is not None
    return repo, decision


@router.get("/git/{study}/{scope}/config")
def annex_config(portal: PortalDep, request: Request, study: str, scope: str) -> Response:
    repo, _ = gate(portal, request, study, scope, "clone", f"{study}/{scope}")
    return Response(gitserve.served_config(repo), media_type="text/plain")


@router.api_route(
    "/git/{study}/{scope}/annex/objects/{first}/{second}/{key}/{name}", methods=["GET", "HEAD"]
)
def annex_get(
    portal: PortalDep,
    request: Request,
    study: str,
    scope: str,
    first: str,
    second: str,
    key: str,
    name: str,
) -> Response:
    repo, decision = gate(portal, request, study, scope, "download", f"{study}/{scope}:{key}")
    path = gitserve.annex_object(repo, first, second, key) if name == key else None
    if path is None:
        raise HTTPException(404, "no such object")
    if request.method == "GET":
        assert decision.user is not None
        audit.record(
            portal.engine,
            "download",
            decision.user.email,
            target=f"{study}/{scope}",
            remote_addr=portal.remote(request),
            detail=key,
        )
    if portal.accel_prefix:
        # the proxy sends the file itself (sendfile): no byte passes through Python
        served = gitserve.store_relative(portal.site, scope, path)
        return Response(
            media_type="application/octet-stream",
            headers={"X-Accel-Redirect": f"{portal.accel_prefix}/{scope}/{served}"},
        )
    return FileResponse(path, media_type="application/octet-stream")


@router.api_route("/git/{study}/{scope}/{path:path}", methods=["GET", "POST"])
async def git_backend(
    portal: PortalDep, request: Request, study: str, scope: str, path: str
) -> Response:
    service = request.query_params.get("service", "")
    allowed = (
        request.method == "GET" and path == "info/refs" and service == "git-upload-pack"
    ) or (request.method == "POST" and path == "git-upload-pack")
    if not allowed:
        # dumb HTTP, pushing and anything else: not offered (checked after the token,
        # so that nothing is learnt without one)
        await run_in_threadpool(gate, portal, request, study, scope, "clone", f"{study}/{scope}")
        raise HTTPException(404, "not offered")
    # the database and git work of the gate runs beside the event loop, not in it
    repo, decision = await run_in_threadpool(
        gate, portal, request, study, scope, "clone", f"{study}/{scope}"
    )
    assert decision.user is not None
    if request.method == "GET":
        # one advertisement of git-upload-pack per clone or fetch
        await run_in_threadpool(
            _record_clone, portal, repo, decision.user.email, f"{study}/{scope}", request
        )
        status, headers, advert = await gitserve.advertisement(
            repo,
            {k.lower(): v for k, v in request.headers.items()},
            decision.user.email,
            portal.remote(request),
        )
        return Response(advert, status_code=status, headers=dict(headers))
    status, headers, body = await gitserve.run_backend(
        repo,
        request.method,
        path,
        request.url.query,
        {k.lower(): v for k, v in request.headers.items()},
        await _capped_body(request, MAX_UPLOAD_PACK_REQUEST),
        decision.user.email,
        portal.remote(request),
    )
    return StreamingResponse(body, status_code=status, headers=dict(headers))


def _record_clone(portal: Portal, repo: Path, actor: str, target: str, request: Request) -> None:
    audit.record(
        portal.engine,
        "clone",
        actor,
        target=target,
        version=gitserve.newest_version(repo),
        remote_addr=portal.remote(request),
        detail="git-upload-pack",
    )


async def _capped_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body over {limit} bytes")
    return bytes(body)
