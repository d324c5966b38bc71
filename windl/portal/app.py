"""The web portal: server-rendered pages, the HTTP API and token-gated git/annex access.

:func:`create_app` builds the FastAPI application for one site (tests use it directly);
:func:`serve` runs it with uvicorn (``windl serve``).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from windl import database
from windl.config import Site
from windl.errors import ConfigError
from windl.portal import accounts, audit, dua, gitserve, markdown, rights, security, tokens

PACKAGE = Path(__file__).resolve().parent
SESSION_COOKIE = "windl_session"
CSRF_COOKIE = "windl_csrf"
CSRF_FIELD = "csrf_token"
#: set by ``windl serve`` for its workers: the site folder and the address it listens on
SITE_ENV = "WINDL_PORTAL_SITE"
LISTEN_URL_ENV = "WINDL_PORTAL_LISTEN_URL"
#: git's negotiation (wants and haves) of a clone or fetch is far smaller than this
MAX_UPLOAD_PACK_REQUEST = 16 * 1024 * 1024
DEFAULT_ANONYMOUS_SEARCHES = 120


def portal_engine(site: Site) -> Engine:
    """The site's database with the portal's tables migrated to the newest version."""
    engine = database.engine(site)
    database.migrate(engine, "portal")
    return engine


class Portal:
    """What every request handler needs: the site, its database and the page templates."""

    def __init__(self, site: Site, engine: Engine) -> None:
        self.site = site
        self.engine = engine
        self.templates = Environment(
            loader=FileSystemLoader(PACKAGE / "templates"),
            autoescape=select_autoescape(["html"]),
            auto_reload=False,  # the templates are windl's own: no stat() per page
        )
        self.templates.filters["markdown"] = markdown.to_html
        self.proxies = security.trusted_proxies(site)
        self.hosts = security.allowed_hosts(site)
        self.url = security.portal_url(site) or os.environ.get(
            LISTEN_URL_ENV, "http://localhost:8080"
        ).rstrip("/")
        #: nginx's internal location of the stores (``[portal] x_accel_redirect``)
        self.accel_prefix = str(site.setting("portal", "x_accel_redirect", "")).rstrip("/")
        self.anonymous_searches = security.RateLimiter(
            int(site.setting("portal", "anonymous_searches_per_minute", DEFAULT_ANONYMOUS_SEARCHES))
        )

    # ------------------------------------------------------------------ request helpers
    def remote(self, request: Request) -> str:
        """The client's address (``X-Forwarded-For`` counts only from a trusted proxy)."""
        peer = request.client.host if request.client else ""
        return security.client_address(peer, request.headers.get("x-forwarded-for"), self.proxies)

    def base_url(self, request: Request | None = None) -> str:
        """The portal's public address: ``[portal] url``, else the address it listens on.

        Never taken from the request: a mailed link must not point wherever a ``Host``
        header says (host-header poisoning).
        """
        return self.url

    def secure(self, request: Request) -> bool:
        """Whether cookies get ``Secure``: served over HTTPS, or behind a proxy that is."""
        return request.url.scheme == "https" or self.url.startswith("https://")

    def user(self, request: Request) -> accounts.User | None:
        """The account of the request's session cookie (None: anonymous or expired)."""
        return accounts.session_user(self.site, self.engine, request.cookies.get(SESSION_COOKIE))

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page, with the CSRF cookie set when the browser has none yet."""
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        if "user" not in context:
            context["user"] = self.user(request)
        html = self.templates.get_template(name).render(
            request=request,
            csrf=csrf,
            site_name=self.site.setting("site", "name", "windl"),
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(
                CSRF_COOKIE,
                csrf,
                httponly=True,
                samesite="lax",
                secure=self.secure(request),
            )
        return response

    async def form(self, request: Request) -> dict[str, str]:
        """The POSTed form, after checking its CSRF token against the cookie (else 403)."""
        form = await request.form()
        sent = str(form.get(CSRF_FIELD, ""))
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and retry")
        return {k: str(v) for k, v in form.items()}

    def require_user(self, request: Request) -> accounts.User:
        user = self.user(request)
        if user is None:
            raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"})
        return user


def create_app(site: Site, engine: Engine | None = None) -> FastAPI:
    """The portal application for ``site`` (its database is migrated first)."""
    portal = Portal(site, engine if engine is not None else portal_engine(site))
    app = FastAPI(title="windl portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = portal
    app.add_middleware(
        security.HardeningMiddleware,
        hosts=portal.hosts,
        https=portal.url.startswith("https://"),
    )
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    _account_routes(app, portal)
    _git_routes(app, portal)
    from windl.portal import pages  # the catalog's pages build on Portal

    pages.install(app, portal)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (301, 302, 303, 307):
            return RedirectResponse(exc.headers["Location"], status_code=exc.status_code)
        if request.url.path.startswith(("/api/", "/git/")):
            return PlainTextResponse(
                str(exc.detail), status_code=exc.status_code, headers=exc.headers
            )
        return portal.render(
            request,
            "message.html",
            status_code=exc.status_code,
            title="Error",
            message=str(exc.detail),
        )

    return app


# ----------------------------------------------------------------------------- accounts
def _account_routes(app: FastAPI, portal: Portal) -> None:
    site, engine = portal.site, portal.engine

    @app.get("/register", response_class=HTMLResponse)
    def register_page(request: Request) -> Response:
        return portal.render(request, "register.html")

    @app.post("/register", response_class=HTMLResponse)
    async def register(request: Request) -> Response:
        form = await portal.form(request)
        try:
            accounts.register(
                site,
                engine,
                form.get("email", ""),
                form.get("name", ""),
                form.get("password", ""),
                portal.base_url(request),
                portal.remote(request),
            )
        except accounts.AccountError as exc:
            return portal.render(
                request, "register.html", status_code=400, error=exc.message, form=form
            )
        return portal.render(
            request,
            "message.html",
            title="Check your mail",
            message="We sent a confirmation link to the address you gave. "
            "Open it to activate your account.",
        )

    @app.get("/confirm/{secret}", response_class=HTMLResponse)
    def confirm_page(request: Request, secret: str) -> Response:
        pending = accounts.pending_confirmation(engine, secret)
        if pending is None:
            raise HTTPException(404, "this confirmation link is not valid (used already?)")
        email, needs_password = pending
        if needs_password:
            return portal.render(request, "confirm.html", email=email, secret=secret)
        accounts.confirm(site, engine, secret, portal.remote(request))
        return portal.render(
            request,
            "message.html",
            title="Address confirmed",
            message=f"{email} is confirmed. You can log in now.",
            link=("/login", "Log in"),
        )

    @app.post("/confirm/{secret}", response_class=HTMLResponse)
    async def confirm_invitation(request: Request, secret: str) -> Response:
        form = await portal.form(request)
        try:
            user = accounts.confirm(
                site, engine, secret, portal.remote(request), form.get("password", "")
            )
        except accounts.AccountError as exc:
            pending = accounts.pending_confirmation(engine, secret)
            if pending is None:
                raise HTTPException(404, exc.message) from None
            return portal.render(
                request,
                "confirm.html",
                status_code=400,
                email=pending[0],
                secret=secret,
                error=exc.message,
            )
        return portal.render(
            request,
            "message.html",
            title="Welcome",
            message=f"{user.email} is ready ({user.role}). You can log in now.",
            link=("/login", "Log in"),
        )

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/account") -> Response:
        return portal.render(request, "login.html", next=_local(next))

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await portal.form(request)
        remote = portal.remote(request)
        target = _local(form.get("next", "/account"))
        try:
            user = accounts.authenticate(
                site, engine, form.get("email", ""), form.get("password", ""), remote
            )
        except accounts.TooManyAttempts as exc:
            return portal.render(
                request, "login.html", status_code=429, error=exc.message, next=target
            )
        except accounts.LoginFailed as exc:
            return portal.render(
                request, "login.html", status_code=401, error=exc.message, next=target
            )
        secret = accounts.start_session(site, engine, user, remote)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            secret,
            max_age=int(accounts.session_lifetime(site).total_seconds()),
            httponly=True,
            samesite="lax",
            secure=portal.secure(request),
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await portal.form(request)
        user = portal.user(request)
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            accounts.end_session(engine, secret, user.email if user else "", portal.remote(request))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request) -> Response:
        return _account_page(portal, request)

    @app.post("/account/tokens", response_class=HTMLResponse)
    async def token_create(request: Request) -> Response:
        form = await portal.form(request)
        user = portal.require_user(request)
        secret = tokens.create(engine, user, form.get("label", ""), portal.remote(request))
        return _account_page(portal, request, new_token=secret)

    @app.post("/account/tokens/{token_id}/revoke")
    async def token_revoke(request: Request, token_id: int) -> Response:
        await portal.form(request)
        user = portal.require_user(request)
        try:
            tokens.revoke(engine, user, token_id, portal.remote(request))
        except accounts.AccountError as exc:
            raise HTTPException(404, exc.message) from None
        return RedirectResponse("/account", status_code=303)

    @app.get("/dua", response_class=HTMLResponse)
    def dua_page(request: Request) -> Response:
        user = portal.user(request)
        agreement = dua.current(site)
        accepted = dua.accepted_at(engine, user.id, agreement.version) if user else None
        return portal.render(
            request,
            "dua.html",
            agreement=agreement,
            accepted=accepted,
            user=user,
            next=_local(request.query_params.get("next", "/account")),
        )

    @app.post("/dua/accept")
    async def dua_accept(request: Request) -> Response:
        form = await portal.form(request)
        user = portal.require_user(request)
        agreement = dua.current(site)
        if form.get("version") != agreement.version:
            # the page showed an older text: show the current one again
            return RedirectResponse("/dua", status_code=303)
        dua.accept(engine, user.id, user.email, agreement.version, portal.remote(request))
        return RedirectResponse(_local(form.get("next", "/account")), status_code=303)


def _local(target: str) -> str:
    """Only paths on this site are followed after login (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/account"


def _account_page(portal: Portal, request: Request, new_token: str | None = None) -> Response:
    user = portal.require_user(request)
    agreement = dua.current(portal.site)
    return portal.render(
        request,
        "account.html",
        user=user,
        tokens=tokens.list_tokens(portal.engine, user),
        new_token=new_token,
        dua_version=agreement.version,
        dua_accepted=dua.accepted_at(portal.engine, user.id, agreement.version),
        base_url=portal.base_url(request),
    )


# ----------------------------------------------------------------------------- git + annex
def _git_routes(app: FastAPI, portal: Portal) -> None:
    site, engine = portal.site, portal.engine
    challenge = {"WWW-Authenticate": 'Basic realm="windl", charset="UTF-8"'}

    def gate(
        request: Request, study: str, scope: str, event: str, target: str
    ) -> tuple[Path, rights.Decision]:
        decision = rights.release_access(site, engine, scope, request.headers.get("authorization"))
        repo = gitserve.published_repo(site, study, scope)
        if decision.status == 200 and repo is None:
            decision = rights.Decision(404, decision.user, "not published")
        if decision.status != 200:
            if decision.status != 401 or request.headers.get("authorization"):
                # a first anonymous probe (before git asks for credentials) is not logged
                audit.record(
                    engine,
                    f"{event}-refused",
                    decision.user.email if decision.user else "",
                    target=target,
                    remote_addr=portal.remote(request),
                    detail=f"{decision.status} {decision.reason}",
                )
            if decision.status == 401:
                raise HTTPException(401, "a personal token is needed", headers=challenge)
            if decision.status == 403:
                raise HTTPException(
                    403,
                    f"{decision.reason}: accept it at {portal.base_url(request)}/dua",
                )
            raise HTTPException(404, "no such dataset")
        assert repo is not None
        return repo, decision

    @app.get("/git/{study}/{scope}/config")
    def annex_config(request: Request, study: str, scope: str) -> Response:
        repo, _ = gate(request, study, scope, "clone", f"{study}/{scope}")
        return Response(gitserve.served_config(repo), media_type="text/plain")

    @app.api_route(
        "/git/{study}/{scope}/annex/objects/{first}/{second}/{key}/{name}", methods=["GET", "HEAD"]
    )
    def annex_get(
        request: Request, study: str, scope: str, first: str, second: str, key: str, name: str
    ) -> Response:
        repo, decision = gate(request, study, scope, "download", f"{study}/{scope}:{key}")
        path = gitserve.annex_object(repo, first, second, key) if name == key else None
        if path is None:
            raise HTTPException(404, "no such object")
        if request.method == "GET":
            assert decision.user is not None
            audit.record(
                engine,
                "download",
                decision.user.email,
                target=f"{study}/{scope}",
                remote_addr=portal.remote(request),
                detail=key,
            )
        if portal.accel_prefix:
            # the proxy sends the file itself (sendfile): no byte passes through Python
            served = gitserve.store_relative(site, scope, path)
            return Response(
                media_type="application/octet-stream",
                headers={"X-Accel-Redirect": f"{portal.accel_prefix}/{scope}/{served}"},
            )
        return FileResponse(path, media_type="application/octet-stream")

    @app.api_route("/git/{study}/{scope}/{path:path}", methods=["GET", "POST"])
    async def git_backend(request: Request, study: str, scope: str, path: str) -> Response:
        service = request.query_params.get("service", "")
        allowed = (
            request.method == "GET" and path == "info/refs" and service == "git-upload-pack"
        ) or (request.method == "POST" and path == "git-upload-pack")
        if not allowed:
            # dumb HTTP, pushing and anything else: not offered (checked after the token,
            # so that nothing is learnt without one)
            await run_in_threadpool(gate, request, study, scope, "clone", f"{study}/{scope}")
            raise HTTPException(404, "not offered")
        # the database and git work of the gate runs beside the event loop, not in it
        repo, decision = await run_in_threadpool(
            gate, request, study, scope, "clone", f"{study}/{scope}"
        )
        assert decision.user is not None
        if request.method == "GET":
            # one advertisement of git-upload-pack per clone or fetch
            await run_in_threadpool(
                audit.record,
                engine,
                "clone",
                decision.user.email,
                target=f"{study}/{scope}",
                version=gitserve.newest_version(repo),
                remote_addr=portal.remote(request),
                detail="git-upload-pack",
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


def worker_app() -> FastAPI:
    """The application of one ``windl serve --workers N`` worker (the site from the env)."""
    from windl.config import load_site

    return create_app(load_site(Path(os.environ[SITE_ENV])))


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(site: Site, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Run the portal with uvicorn (``workers`` processes) until interrupted.

    Listening beyond this machine needs ``[portal] url``: the address mailed links and
    clone commands name, and the one host name (with ``allowed_hosts``) requests may use.
    """
    import uvicorn

    if host not in LOOPBACK and not security.portal_url(site):
        raise ConfigError(
            f"windl serve --host {host} needs [portal] url in windl.toml (the public "
            "address mailed links use; see docs/guide-maintainer.md#the-portal)",
            site.root / "windl.toml",
        )
    shown = f"[{host}]" if ":" in host else host
    os.environ[LISTEN_URL_ENV] = f"http://{shown}:{port}"
    os.environ[SITE_ENV] = str(site.root)
    portal_engine(site).dispose()  # migrate once, before the workers start
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,  # the audit log records what matters, once
        "proxy_headers": False,  # X-Forwarded-For is read only from trusted proxies
        "server_header": False,
    }
    if workers > 1:
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(site), **options)
