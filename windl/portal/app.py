"""The web portal: server-rendered pages, the HTTP API and token-gated git/annex access.

:func:`create_app` builds the FastAPI application for one site (tests use it directly) from
the routers in :mod:`windl.portal.routes`; :func:`serve` runs it with uvicorn
(``windl serve``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from windl.config import Site
from windl.errors import ConfigError
from windl.portal import security
from windl.portal.context import LISTEN_URL_ENV, PACKAGE, SITE_ENV, Portal, portal_engine
from windl.portal.routes import accounts as account_routes
from windl.portal.routes import catalog as catalog_routes
from windl.portal.routes import git as git_routes

__all__ = ["create_app", "portal_engine", "serve", "worker_app"]


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
    for routes in (account_routes, git_routes, catalog_routes):
        app.include_router(routes.router)

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
