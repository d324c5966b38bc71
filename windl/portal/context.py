"""What every route of the portal works with: the :class:`Portal` of one site.

The application keeps its :class:`Portal` in ``app.state``; routes receive it as a
FastAPI dependency (:data:`PortalDep`), so no module needs the application itself.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine

from windl import database
from windl.catalog.search import SearchCache
from windl.config import Site
from windl.portal import accounts, markdown, security

PACKAGE = Path(__file__).resolve().parent
SESSION_COOKIE = "windl_session"
CSRF_COOKIE = "windl_csrf"
CSRF_FIELD = "csrf_token"
#: set by ``windl serve`` for its workers: the site folder and the address it listens on
SITE_ENV = "WINDL_PORTAL_SITE"
LISTEN_URL_ENV = "WINDL_PORTAL_LISTEN_URL"
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
        #: the public address: ``[portal] url``, else the address ``windl serve`` listens
        #: on — never a request's ``Host`` (mailed links must not point where it says)
        self.url = security.portal_url(site) or os.environ.get(
            LISTEN_URL_ENV, "http://localhost:8080"
        ).rstrip("/")
        #: nginx's internal location of the stores (``[portal] x_accel_redirect``)
        self.accel_prefix = str(site.setting("portal", "x_accel_redirect", "")).rstrip("/")
        self.searches = SearchCache()
        self.anonymous_searches = security.RateLimiter(
            int(site.setting("portal", "anonymous_searches_per_minute", DEFAULT_ANONYMOUS_SEARCHES))
        )

    # ------------------------------------------------------------------ request helpers
    def remote(self, request: Request) -> str:
        """The client's address (``X-Forwarded-For`` counts only from a trusted proxy)."""
        peer = request.client.host if request.client else ""
        return security.client_address(peer, request.headers.get("x-forwarded-for"), self.proxies)

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


async def get_portal(request: Request) -> Portal:
    """The portal of the application serving ``request`` (a dependency of every route).

    Asynchronous so that FastAPI calls it on the event loop instead of a worker thread.
    """
    return request.app.state.portal  # type: ignore[no-any-return]


PortalDep = Annotated[Portal, Depends(get_portal)]


def local(target: str) -> str:
    """Only paths on this site are followed after login (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/account"
