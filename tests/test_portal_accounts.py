"""Portal accounts, sessions, CSRF, the DUA and the audit log, on SQLite and PostgreSQL.

The application runs in-process through FastAPI's TestClient (real HTTP semantics, real
database); the clone/get and browser tests run a real server.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from windl import database
from windl.config import load_site
from windl.portal import accounts, audit, dua, rights, tokens
from windl.portal.app import create_app, portal_engine
from windl.portal.tables import sessions, users

from conftest import run_windl

PASSWORD = "correct horse battery"


def _portal_site(root: Path, database_url: str, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "windl.toml").write_text(
        f'[site]\nname = "test centre"\n\n[database]\nurl = "{database_url}"\n{extra}'
    )
    return root


@pytest.fixture
def portal_site(tmp_path: Path, database_url: str) -> Path:
    """A site folder with only windl.toml, its database on SQLite or PostgreSQL."""
    return _portal_site(tmp_path / "site", database_url)


def _client(root: Path) -> TestClient:
    return TestClient(
        create_app(load_site(root)), base_url="http://localhost", follow_redirects=False
    )


def _csrf(client: TestClient, page: str = "/login") -> str:
    html = client.get(page).text
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _confirm_link(root: Path, email: str) -> str:
    for mail in sorted((root / "portal" / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime):
        text = mail.read_text()
        if f"To: {email}" in text:
            link = re.search(r"http://\S+/confirm/\S+", text).group(0)
    return link


def _path_of(link: str) -> str:
    """The path of a mailed link (which names the portal's public address, not the client's)."""
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def _register_and_login(client: TestClient, root: Path, email: str) -> None:
    token = _csrf(client, "/register")
    page = client.post(
        "/register",
        data={"csrf_token": token, "email": email, "name": "Ext", "password": PASSWORD},
    )
    assert page.status_code == 200 and "Check your mail" in page.text
    path = _confirm_link(root, email).split("://", 1)[1].split("/", 1)[1]
    assert "confirmed" in client.get("/" + path).text
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text


def _audit(root: Path) -> list[audit.Entry]:
    return list(audit.entries(portal_engine(load_site(root))))


def test_portal_tables_migrate_once_and_the_database_refuses_to_change_the_audit_log(
    portal_site: Path,
) -> None:
    site = load_site(portal_site)
    engine = portal_engine(site)
    database.migrate(engine, "portal")  # again: nothing to do
    audit.record(engine, "login", "a@uni.org", remote_addr="10.0.0.1")
    names = set(sa.inspect(engine).get_table_names())
    assert {"portal_users", "portal_sessions", "portal_tokens", "portal_audit_log"} <= names
    assert "alembic_version_portal" in names
    for statement in (
        "UPDATE portal_audit_log SET actor = 'someone else'",
        "DELETE FROM portal_audit_log",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as c:
            c.execute(sa.text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as c:
            c.execute(sa.text("TRUNCATE portal_audit_log"))
    (entry,) = audit.entries(engine)
    assert (entry.event, entry.actor, entry.remote_addr) == ("login", "a@uni.org", "10.0.0.1")


def test_registration_is_confirmed_by_the_mailed_link_and_the_password_is_an_argon2_hash(
    portal_site: Path,
) -> None:
    client = _client(portal_site)
    token = _csrf(client, "/register")
    client.post(
        "/register",
        data={"csrf_token": token, "email": "Ext@Uni.org", "name": "E", "password": PASSWORD},
    )
    engine = portal_engine(load_site(portal_site))
    stored = accounts.password_hash(engine, "ext@uni.org")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # not confirmed yet: no login
    refused = client.post(
        "/login", data={"csrf_token": token, "email": "ext@uni.org", "password": PASSWORD}
    )
    assert refused.status_code == 401 and SESSION_COOKIE not in client.cookies
    link = _confirm_link(portal_site, "ext@uni.org")
    assert "Address confirmed" in client.get(_path_of(link)).text
    # a link works once
    assert client.get(_path_of(link)).status_code == 404
    response = client.post(
        "/login", data={"csrf_token": token, "email": "ext@uni.org", "password": PASSWORD}
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "windl_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "ext@uni.org (external)" in client.get("/account").text
    events = [e.event for e in _audit(portal_site)]
    assert events == ["register", "login-failed", "confirm", "login"]


SESSION_COOKIE = "windl_session"


@pytest.mark.parametrize("form_token", [None, "forged"])
def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
    portal_site: Path, form_token: str | None
) -> None:
    client = _client(portal_site)
    _csrf(client, "/register")  # the browser has a CSRF cookie: only the form lacks it
    data = {"email": "x@uni.org", "name": "X", "password": PASSWORD}
    if form_token:
        data["csrf_token"] = form_token
    assert client.post("/register", data=data).status_code == 403
    assert client.post("/login", data=data).status_code == 403
    assert not list((portal_site / "portal" / "outbox").glob("*.eml"))
    engine = portal_engine(load_site(portal_site))
    assert accounts.find_user(load_site(portal_site), engine, "x@uni.org") is None


def test_an_expired_session_is_logged_out(portal_site: Path) -> None:
    client = _client(portal_site)
    _register_and_login(client, portal_site, "ext@uni.org")
    assert client.get("/account").status_code == 200
    engine = portal_engine(load_site(portal_site))
    with engine.begin() as connection:
        connection.execute(sessions.update().values(expires_at=audit.now() - timedelta(seconds=1)))
    response = client.get("/account")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 0


def test_a_session_lasts_as_long_as_the_site_says(tmp_path: Path, database_url: str) -> None:
    root = _portal_site(tmp_path / "site", database_url, "\n[portal]\nsession_hours = 2\n")
    client = _client(root)
    _register_and_login(client, root, "ext@uni.org")
    engine = portal_engine(load_site(root))
    with engine.connect() as connection:
        row = connection.execute(sa.select(sessions)).one()
    lifetime = audit.as_utc(row.expires_at) - audit.as_utc(row.created_at)
    assert lifetime == timedelta(hours=2)


def test_repeated_failed_logins_pause_logins_for_that_address(portal_site: Path) -> None:
    client = _client(portal_site)
    _register_and_login(client, portal_site, "ext@uni.org")
    client.cookies.delete(SESSION_COOKIE)
    token = _csrf(client)
    for _ in range(accounts.DEFAULT_MAX_FAILURES):
        wrong = client.post(
            "/login", data={"csrf_token": token, "email": "ext@uni.org", "password": "nope" * 3}
        )
        assert wrong.status_code == 401
    right = client.post(
        "/login", data={"csrf_token": token, "email": "ext@uni.org", "password": PASSWORD}
    )
    assert right.status_code == 429 and "too many failed logins" in right.text
    failed = [e for e in _audit(portal_site) if e.event == "login-failed"]
    assert len(failed) == accounts.DEFAULT_MAX_FAILURES + 1
    assert failed[-1].detail == "rate limited"


def test_a_new_dua_version_needs_a_new_acceptance(tmp_path: Path, database_url: str) -> None:
    duas = tmp_path / "dua"
    duas.mkdir()
    (duas / "1.0.md").write_text("# DUA 1.0\n\nBe **nice** <script>x</script>.\n")
    root = _portal_site(tmp_path / "site", database_url, f'\n[portal]\ndua_dir = "{duas}"\n')
    client = _client(root)
    _register_and_login(client, root, "ext@uni.org")
    page = client.get("/dua").text
    assert "<h1>DUA 1.0</h1>" in page and "Be <strong>nice</strong>" in page
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    client.post("/dua/accept", data={"csrf_token": _csrf(client, "/dua"), "version": "1.0"})
    assert "You accepted version 1.0" in client.get("/dua").text
    site = load_site(root)
    engine = portal_engine(site)
    user = accounts.find_user(site, engine, "ext@uni.org")
    secret = tokens.create(engine, user, "laptop", "127.0.0.1")
    header = f"Bearer {secret}"
    assert rights.release_access(site, engine, "external", header).status == 200
    (duas / "1.1.md").write_text("# DUA 1.1\nBe nicer.\n")
    assert dua.current(site).version == "1.1"
    decision = rights.release_access(site, engine, "external", header)
    assert (decision.status, decision.reason) == (403, "DUA 1.1 not accepted")
    account = client.get("/account").text
    assert "Data Usage Agreement 1.1" in account and "not accepted" in account
    # a form from the old page does not accept the new text
    client.post("/dua/accept", data={"csrf_token": _csrf(client, "/dua"), "version": "1.0"})
    assert dua.accepted_at(engine, user.id, "1.1") is None
    client.post("/dua/accept", data={"csrf_token": _csrf(client, "/dua"), "version": "1.1"})
    assert rights.release_access(site, engine, "external", header).status == 200
    accepted = [(e.event, e.version) for e in audit.entries(engine) if e.event == "dua-accept"]
    assert accepted == [("dua-accept", "1.0"), ("dua-accept", "1.1")]


def test_a_token_is_shown_once_stored_as_a_hash_and_can_be_revoked(portal_site: Path) -> None:
    client = _client(portal_site)
    _register_and_login(client, portal_site, "ext@uni.org")
    page = client.post(
        "/account/tokens", data={"csrf_token": _csrf(client, "/account"), "label": "laptop"}
    )
    secret = re.search(r'<code id="new-token">([^<]+)</code>', page.text).group(1)
    assert secret not in client.get("/account").text  # shown once
    site = load_site(portal_site)
    engine = portal_engine(site)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT token_hash FROM portal_tokens")).scalar()
    assert stored == accounts.digest(secret) and secret not in stored
    assert rights.token_user(site, engine, f"Bearer {secret}").email == "ext@uni.org"
    (token,) = tokens.list_tokens(engine, accounts.find_user(site, engine, "ext@uni.org"))
    client.post(
        f"/account/tokens/{token.id}/revoke", data={"csrf_token": _csrf(client, "/account")}
    )
    assert rights.token_user(site, engine, f"Bearer {secret}") is None
    assert "revoked" in client.get("/account").text
    events = [e.event for e in audit.entries(engine)]
    assert events[-2:] == ["token-create", "token-revoke"]


def test_members_come_from_windl_toml_or_an_invitation(tmp_path: Path, database_url: str) -> None:
    root = _portal_site(
        tmp_path / "site", database_url, '\n[portal]\nmembers = ["Lab@Centre.org"]\n'
    )
    client = _client(root)
    _register_and_login(client, root, "lab@centre.org")
    assert "lab@centre.org (member)" in client.get("/account").text
    out = run_windl("portal", "invite", "op@centre.org", "--role", "operator", "--site", root)
    assert "invited op@centre.org as operator" in out.stdout
    link = _confirm_link(root, "op@centre.org")
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    invited = _client(root)
    assert "Choose a password" in invited.get(path).text
    token = _csrf(invited, path)
    done = invited.post(path, data={"csrf_token": token, "password": PASSWORD})
    assert "op@centre.org is ready (operator)" in done.text
    response = invited.post(
        "/login", data={"csrf_token": token, "email": "op@centre.org", "password": PASSWORD}
    )
    assert response.status_code == 303
    site = load_site(root)
    with portal_engine(site).connect() as connection:
        roles = dict(connection.execute(sa.select(users.c.email, users.c.role)).all())
    # the table keeps what was given; the toml list makes lab@ a member when it is read
    assert roles == {"lab@centre.org": "external", "op@centre.org": "operator"}


def test_audit_log_exports_csv_through_the_cli(portal_site: Path, tmp_path: Path) -> None:
    client = _client(portal_site)
    _register_and_login(client, portal_site, "ext@uni.org")
    out = tmp_path / "audit.csv"
    proc = run_windl("audit-log", "--csv", out, "--site", portal_site)
    assert "3 entries written" in proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["event"] for r in rows] == ["register", "confirm", "login"]
    assert rows[-1]["actor"] == "ext@uni.org" and rows[-1]["remote_addr"] == "testclient"
    later = run_windl("audit-log", "--since", "2999-01-01", "--site", portal_site).stdout
    assert later.splitlines() == [",".join(audit.CSV_COLUMNS)]
    bad = run_windl("audit-log", "--since", "yesterday", "--site", portal_site, check=False)
    assert bad.returncode != 0 and "%Y-%m-%d" in bad.stderr


def test_mail_goes_through_smtp_when_windl_toml_names_a_server(
    tmp_path: Path, database_url: str
) -> None:
    import threading
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
        import smtpd  # Python 3.11's own SMTP server

    received: list[tuple[str, list[str], str]] = []

    class Server(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):  # type: ignore[override]
            received.append((mailfrom, rcpttos, data.decode() if isinstance(data, bytes) else data))

    server = Server(("127.0.0.1", 0), None)
    port = server.socket.getsockname()[1]
    loop = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.1}, daemon=True)
    loop.start()
    try:
        root = _portal_site(
            tmp_path / "site",
            database_url,
            f'\n[portal]\nurl = "http://data.example.org"\n\n[portal.smtp]\n'
            f'host = "127.0.0.1"\nport = {port}\nsender = "portal@example.org"\n',
        )
        client = _client(root)
        client.post(
            "/register",
            data={
                "csrf_token": _csrf(client, "/register"),
                "email": "ext@uni.org",
                "name": "E",
                "password": PASSWORD,
            },
        )
    finally:
        server.close()
        loop.join(timeout=5)
    ((sender, recipients, body),) = received
    assert (sender, recipients) == ("portal@example.org", ["ext@uni.org"])
    assert re.search(r"http://data\.example\.org/confirm/\S+", body)
    assert not (root / "portal" / "outbox").exists()


def test_cookies_are_secure_when_the_portal_is_served_over_https(
    tmp_path: Path, database_url: str
) -> None:
    root = _portal_site(
        tmp_path / "site", database_url, '\n[portal]\nurl = "https://data.example.org"\n'
    )
    cookie = _client(root).get("/login").headers["set-cookie"]
    assert cookie.startswith("windl_csrf=") and "Secure" in cookie and "HttpOnly" in cookie
    plain = _client(_portal_site(tmp_path / "plain", database_url)).get("/login")
    assert "Secure" not in plain.headers["set-cookie"]


def test_logout_ends_the_session_on_the_server(portal_site: Path) -> None:
    client = _client(portal_site)
    _register_and_login(client, portal_site, "ext@uni.org")
    cookie = client.cookies.get(SESSION_COOKIE)
    response = client.post("/logout", data={"csrf_token": _csrf(client, "/account")})
    assert response.status_code == 303
    # the old cookie, sent again, opens nothing: the session is gone from the database
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/account").status_code == 303
    assert [e.event for e in _audit(portal_site)][-1] == "logout"
