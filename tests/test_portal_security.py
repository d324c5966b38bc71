"""A checklist in the spirit of OWASP ASVS level 2, each item against a running ``windl serve``.

Authentication (V2), session management (V3), access control (V4), input validation (V5),
logging and data at rest (V7/V8), HTTP security headers (V14). The portal runs as in
production: its own process, real HTTP on loopback, the published demo-like site.
"""

from __future__ import annotations

import base64
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from windl.config import load_site
from windl.portal import accounts, audit
from windl.portal.app import portal_engine
from windl.portal.routes.git import MAX_UPLOAD_PACK_REQUEST
from windl.portal.security import AUDIT_TEXT_LIMIT, CONTENT_SECURITY_POLICY

from conftest import (
    MEMBERS_ONLY_STUDY,
    PORTAL_PASSWORD,
    WINDL,
    copy_site,
    portal_account,
    portal_server,
)

PROXY = "127.0.0.1"  # the tests' own client stands in for the site's reverse proxy


def _portal_settings(root: Path, **values: object) -> None:
    """Set keys of windl.toml's ``[portal]`` table (replacing what the template says)."""
    config = root / "windl.toml"
    lines = config.read_text().splitlines()
    start = lines.index("[portal]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    kept = [line for line in lines[start + 1 : end] if line.split("=", 1)[0].strip() not in values]
    rendered = [f"{key} = {_toml(value)}" for key, value in values.items()]
    config.write_text("\n".join([*lines[: start + 1], *rendered, *kept, *lines[end:]]) + "\n")


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.fixture(scope="module")
def secured(
    published_site_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """The published site behind a configured public address, a trusted proxy and low limits."""
    root = copy_site(published_site_template, tmp_path_factory.mktemp("secured") / "site")
    _portal_settings(
        root,
        url="https://data.example.org",
        trusted_proxies=[PROXY],
        anonymous_searches_per_minute=5,
        max_failed_logins=3,
    )
    with portal_server(root) as url:
        yield root, url


@pytest.fixture(scope="module")
def unset(
    published_site_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """The published site without ``[portal] url``: it listens on loopback only."""
    root = copy_site(published_site_template, tmp_path_factory.mktemp("unset") / "site")
    with portal_server(root) as url:
        yield root, url


#: the double-submit CSRF token a browser would hold (cookie and form field agree)
CSRF = "c" * 43


def _client(url: str, client_ip: str = "192.0.2.10", session: str = "") -> httpx.Client:
    """A browser at ``client_ip`` reaching the portal through the (trusted) proxy.

    The portal's cookies are ``Secure`` (its address is https), so they are sent by hand:
    httpx, like a browser, keeps them from plain-http loopback.
    """
    cookies = f"windl_csrf={CSRF}" + (f"; windl_session={session}" if session else "")
    return httpx.Client(
        base_url=url,
        headers={"Host": "data.example.org", "X-Forwarded-For": client_ip, "Cookie": cookies},
        follow_redirects=False,
        timeout=60,
    )


def _csrf(client: httpx.Client, page: str = "/login") -> str:
    client.get(page)
    return CSRF


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    token = _csrf(client)
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def _register(client: httpx.Client, email: str, password: str = PORTAL_PASSWORD) -> httpx.Response:
    token = _csrf(client, "/register")
    return client.post(
        "/register",
        data={"csrf_token": token, "email": email, "name": "R", "password": password},
    )


def _log(root: Path) -> list[audit.Entry]:
    return list(audit.entries(portal_engine(load_site(root))))


def _mails_to(root: Path, email: str) -> list[str]:
    outbox = root / "portal" / "outbox"
    return [m.read_text() for m in sorted(outbox.glob("*.eml")) if f"To: {email}" in m.read_text()]


# ----------------------------------------------------------------------- V2 authentication
def test_v2_passwords_are_argon2id_hashes_and_short_ones_are_refused(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    with _client(url) as client:
        short = _register(client, "short@uni.org", "tooshort")
        assert short.status_code == 400 and "at least 10 characters" in short.text
        assert _register(client, "long@uni.org").status_code == 200
    stored = accounts.password_hash(portal_engine(load_site(root)), "long@uni.org")
    assert stored.startswith("$argon2id$") and PORTAL_PASSWORD not in stored


def test_v2_registering_a_taken_address_looks_the_same_and_tells_its_owner(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    portal_account(root, "owner@uni.org")
    with _client(url) as client:
        new = _register(client, "newcomer@uni.org")
        taken = _register(client, "owner@uni.org")
    assert new.status_code == taken.status_code == 200
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", new.text) == strip.sub("", taken.text)
    (confirmation,) = _mails_to(root, "newcomer@uni.org")
    assert "/confirm/" in confirmation
    to_owner = _mails_to(root, "owner@uni.org")
    assert sum("Subject: Registration with your address" in m for m in to_owner) == 1
    assert sum("/confirm/" in m for m in to_owner) == 1  # the invitation, no new link


def test_v2_lockout_is_per_account_and_address_and_refusals_do_not_extend_it(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    portal_account(root, "target@uni.org")
    with _client(url, "198.51.100.7") as attacker:
        for _ in range(3):
            assert _login(attacker, "target@uni.org", "wrong password!").status_code == 401
        locked = _login(attacker, "target@uni.org", PORTAL_PASSWORD)
        assert locked.status_code == 429 and "try again in 15 minutes" in locked.text
        for _ in range(3):  # still 15 minutes: refused attempts are not failures
            again = _login(attacker, "target@uni.org", "wrong password!")
            assert "try again in 15 minutes" in again.text
    # the owner, behind the same proxy but at another address, logs in
    with _client(url, "203.0.113.5") as owner:
        assert _login(owner, "target@uni.org", PORTAL_PASSWORD).status_code == 303
    failed = [e for e in _log(root) if e.event == "login-failed" and e.actor == "target@uni.org"]
    assert {e.remote_addr for e in failed} == {"198.51.100.7"}  # the forwarded address


def test_v2_each_failure_after_a_lock_doubles_the_next_lock() -> None:
    now = audit.now()
    from datetime import timedelta

    assert accounts.locked_until([now] * 2, 3) is None
    assert accounts.locked_until([now] * 3, 3) == now + accounts.LOCKOUT
    assert accounts.locked_until([now] * 4, 3) == now + 2 * accounts.LOCKOUT
    assert accounts.locked_until([now] * 5, 3) == now + 4 * accounts.LOCKOUT
    assert accounts.locked_until([now] * 40, 3) == now + accounts.MAX_LOCKOUT
    old = now - accounts.MAX_LOCKOUT - timedelta(minutes=1)
    assert accounts.locked_until([old] * 10, 3) is None


def test_v2_mailed_links_name_the_configured_address_whatever_the_host_header(
    secured: tuple[Path, str], unset: tuple[Path, str]
) -> None:
    root, url = secured
    with _client(url) as client:
        token = _csrf(client, "/register")
        poisoned = client.post(
            "/register",
            headers={"Host": "evil.example"},
            data={"csrf_token": token, "email": "p@uni.org", "name": "P", "password": "x" * 12},
        )
    assert poisoned.status_code == 400 and not _mails_to(root, "p@uni.org")
    with _client(url) as client:
        assert _register(client, "q@uni.org").status_code == 200
    (mail,) = _mails_to(root, "q@uni.org")
    assert re.search(r"https://data\.example\.org/confirm/\S+", mail)
    # without [portal] url: the address windl serve listens on, never the Host header
    root2, url2 = unset
    with httpx.Client(base_url=url2, headers={"Host": "evil.example"}) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/register").text)[1]
        client.post(
            "/register",
            data={"csrf_token": token, "email": "r@uni.org", "name": "R", "password": "y" * 12},
        )
    (mail,) = _mails_to(root2, "r@uni.org")
    assert "evil.example" not in mail and f"{url2}/confirm/" in mail


def test_v2_serving_beyond_loopback_needs_the_portal_url(unset: tuple[Path, str]) -> None:
    root, _ = unset
    proc = subprocess.run(
        [*WINDL, "serve", "--host", "0.0.0.0", "--port", "1", "--site", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("windl: error:") and "[portal] url" in line


# -------------------------------------------------------------------- V3 session management
def test_v3_session_cookie_is_httponly_samesite_secure_and_ends_at_logout(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    portal_account(root, "sess@uni.org")
    with _client(url, "192.0.2.33") as client:
        response = _login(client, "sess@uni.org", PORTAL_PASSWORD)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    session = re.search(r"windl_session=([^;]+)", cookie)[1]
    with _client(url, "192.0.2.33", session) as browser:
        assert "sess@uni.org" in browser.get("/account").text
        browser.post("/logout", data={"csrf_token": CSRF})
        after = browser.get("/account")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")


def test_v3_a_post_without_the_csrf_token_is_refused(secured: tuple[Path, str]) -> None:
    _, url = secured
    with _client(url) as client:
        missing = client.post("/login", data={"email": "a@b.org", "password": "whatever12"})
        wrong = client.post(
            "/login", data={"csrf_token": "x" * 43, "email": "a@b.org", "password": "whatever12"}
        )
    assert missing.status_code == wrong.status_code == 403


# ------------------------------------------------------------------------ V4 access control
def test_v4_git_access_needs_a_token_and_members_releases_do_not_exist_for_others(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    external = portal_account(root, "outside@uni.org")
    refs = f"/git/{MEMBERS_ONLY_STUDY}/members/info/refs?service=git-upload-pack"
    with _client(url) as client:
        assert client.get(refs).status_code == 401
        auth = "Basic " + base64.b64encode(f"x:{external}".encode()).decode()
        assert client.get(refs, headers={"Authorization": auth}).status_code == 404
        assert client.get(f"/datasets/{MEMBERS_ONLY_STUDY}").status_code == 404
        # after login only paths of this site are followed (no open redirect)
        assert 'value="/account"' in client.get("/login?next=//evil.example/x").text


# ----------------------------------------------------------------------- V5 input validation
OUT_OF_RANGE = [
    "/search?q=participants>=99999999999999999999999",
    "/search?q=rest&page=99999999999999999999",
    "/search?min_participants=99999999999999999999999",
    "/search?q=" + "+".join(f"task:t{i}" for i in range(500)),
    "/api/search?q=participants>=99999999999999999999999",
    "/api/search?q=rest&per_page=99999999999999999999",
    "/api/search?q=" + "+".join(f"task:t{i}" for i in range(500)),
]


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)))
def test_v5_out_of_range_searches_are_400_with_the_reason(
    secured: tuple[Path, str], case: int
) -> None:
    _, url = secured
    with _client(url, f"192.0.2.{150 + case}") as client:  # an address each: under the limit
        response = client.get(OUT_OF_RANGE[case])
    assert response.status_code == 400, response.text
    assert response.text.strip()


def test_v5_a_clone_request_body_over_the_limit_is_refused_unread(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    token = portal_account(root, "bigbody@uni.org")
    auth = "Basic " + base64.b64encode(f"x:{token}".encode()).decode()
    with _client(url) as client:
        response = client.post(
            "/git/study1/external/git-upload-pack",
            headers={
                "Authorization": auth,
                "Content-Type": "application/x-git-upload-pack-request",
            },
            content=b"0" * (MAX_UPLOAD_PACK_REQUEST + 1),
        )
    assert response.status_code == 413


# --------------------------------------------------------------------- V7/V8 logs and storage
def test_v7_anonymous_searches_are_rate_limited_and_logged_capped(
    secured: tuple[Path, str],
) -> None:
    root, url = secured
    long_query = "rest " + "x" * 1500  # within the parser's 2,000 characters
    with _client(url, "192.0.2.99") as client:
        answers = [client.get("/search", params={"q": long_query}).status_code for _ in range(7)]
    assert answers[:5] == [200] * 5 and answers[5:] == [429, 429]
    logged = [e for e in _log(root) if e.event == "search" and e.remote_addr == "192.0.2.99"]
    assert len(logged) == 5
    assert all(len(e.target) <= AUDIT_TEXT_LIMIT + 40 for e in logged)
    assert "characters)" in logged[0].target


def test_v8_the_site_database_is_readable_by_its_owner_only(secured: tuple[Path, str]) -> None:
    root, _ = secured
    for path in (root / "db").glob("windl.sqlite*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


# ----------------------------------------------------------------------- V14 HTTP headers
@pytest.mark.parametrize(
    "path", ["/", "/login", "/api/search?q=rest", "/no/such/page", "/static/style.css"]
)
def test_v14_every_response_carries_the_security_headers(
    secured: tuple[Path, str], path: str
) -> None:
    _, url = secured
    with _client(url, f"192.0.2.{len(path)}") as client:
        response = client.get(path)
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["strict-transport-security"].startswith("max-age=")


def test_v14_no_hsts_over_plain_http_and_no_inline_script_in_pages(
    unset: tuple[Path, str],
) -> None:
    _, url = unset
    with httpx.Client(base_url=url) as client:
        response = client.get("/")
    assert "strict-transport-security" not in response.headers
    assert "content-security-policy" in response.headers
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)
    assert not re.search(r"\son[a-z]+=", response.text)
