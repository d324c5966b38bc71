"""Accounts: registration, confirmation, login and logout, the account page with its
tokens, and the Data Usage Agreement."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from windl.portal import accounts, dua, tokens
from windl.portal.context import SESSION_COOKIE, Portal, PortalDep, local

router = APIRouter()


@router.get("/register", response_class=HTMLResponse)
def register_page(portal: PortalDep, request: Request) -> Response:
    return portal.render(request, "register.html")


@router.post("/register", response_class=HTMLResponse)
async def register(portal: PortalDep, request: Request) -> Response:
    form = await portal.form(request)
    try:
        accounts.register(
            portal.site,
            portal.engine,
            form.get("email", ""),
            form.get("name", ""),
            form.get("password", ""),
            portal.url,
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


@router.get("/confirm/{secret}", response_class=HTMLResponse)
def confirm_page(portal: PortalDep, request: Request, secret: str) -> Response:
    pending = accounts.pending_confirmation(portal.engine, secret)
    if pending is None:
        raise HTTPException(404, "this confirmation link is not valid (used already?)")
    email, needs_password = pending
    if needs_password:
        return portal.render(request, "confirm.html", email=email, secret=secret)
    accounts.confirm(portal.site, portal.engine, secret, portal.remote(request))
    return portal.render(
        request,
        "message.html",
        title="Address confirmed",
        message=f"{email} is confirmed. You can log in now.",
        link=("/login", "Log in"),
    )


@router.post("/confirm/{secret}", response_class=HTMLResponse)
async def confirm_invitation(portal: PortalDep, request: Request, secret: str) -> Response:
    form = await portal.form(request)
    try:
        user = accounts.confirm(
            portal.site, portal.engine, secret, portal.remote(request), form.get("password", "")
        )
    except accounts.AccountError as exc:
        pending = accounts.pending_confirmation(portal.engine, secret)
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


@router.get("/login", response_class=HTMLResponse)
def login_page(portal: PortalDep, request: Request, next: str = "/account") -> Response:
    return portal.render(request, "login.html", next=local(next))


@router.post("/login", response_class=HTMLResponse)
async def login(portal: PortalDep, request: Request) -> Response:
    form = await portal.form(request)
    remote = portal.remote(request)
    target = local(form.get("next", "/account"))
    try:
        user = accounts.authenticate(
            portal.site, portal.engine, form.get("email", ""), form.get("password", ""), remote
        )
    except accounts.TooManyAttempts as exc:
        return portal.render(request, "login.html", status_code=429, error=exc.message, next=target)
    except accounts.LoginFailed as exc:
        return portal.render(request, "login.html", status_code=401, error=exc.message, next=target)
    secret = accounts.start_session(portal.site, portal.engine, user, remote)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(accounts.session_lifetime(portal.site).total_seconds()),
        httponly=True,
        samesite="lax",
        secure=portal.secure(request),
    )
    return response


@router.post("/logout")
async def logout(portal: PortalDep, request: Request) -> Response:
    await portal.form(request)
    user = portal.user(request)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        accounts.end_session(
            portal.engine, secret, user.email if user else "", portal.remote(request)
        )
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(portal: PortalDep, request: Request) -> Response:
    return _account_page(portal, request)


@router.post("/account/tokens", response_class=HTMLResponse)
async def token_create(portal: PortalDep, request: Request) -> Response:
    form = await portal.form(request)
    user = portal.require_user(request)
    secret = tokens.create(portal.engine, user, form.get("label", ""), portal.remote(request))
    return _account_page(portal, request, new_token=secret)


@router.post("/account/tokens/{token_id}/revoke")
async def token_revoke(portal: PortalDep, request: Request, token_id: int) -> Response:
    await portal.form(request)
    user = portal.require_user(request)
    try:
        tokens.revoke(portal.engine, user, token_id, portal.remote(request))
    except accounts.AccountError as exc:
        raise HTTPException(404, exc.message) from None
    return RedirectResponse("/account", status_code=303)


@router.get("/dua", response_class=HTMLResponse)
def dua_page(portal: PortalDep, request: Request) -> Response:
    user = portal.user(request)
    agreement = dua.current(portal.site)
    accepted = dua.accepted_at(portal.engine, user.id, agreement.version) if user else None
    return portal.render(
        request,
        "dua.html",
        agreement=agreement,
        accepted=accepted,
        user=user,
        next=local(request.query_params.get("next", "/account")),
    )


@router.post("/dua/accept")
async def dua_accept(portal: PortalDep, request: Request) -> Response:
    form = await portal.form(request)
    user = portal.require_user(request)
    agreement = dua.current(portal.site)
    if form.get("version") != agreement.version:
        # the page showed an older text: show the current one again
        return RedirectResponse("/dua", status_code=303)
    dua.accept(portal.engine, user.id, user.email, agreement.version, portal.remote(request))
    return RedirectResponse(local(form.get("next", "/account")), status_code=303)


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
        base_url=portal.url,
    )
