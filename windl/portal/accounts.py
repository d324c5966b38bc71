"""Portal accounts: registration with e-mail confirmation, invitations, login and sessions.

Roles: ``external`` (anyone who registers and confirms their address), ``member`` (an
address listed in ``windl.toml`` ``[portal] members``, or invited as one) and ``operator``
(invited as one). Passwords are hashed with argon2 (argon2-cffi); only hashes of session
cookies, confirmation links and tokens are stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from windl.config import Site
from windl.errors import WindlError
from windl.portal import audit, mailer
from windl.portal.tables import ROLES, audit_log, sessions, users

EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
MIN_PASSWORD = 10
DEFAULT_SESSION_HOURS = 8
#: failed logins of one account from one address before its logins from there pause
DEFAULT_MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_LOCKOUT = timedelta(hours=24)
RATE_LIMITED = "rate limited"

_hasher = PasswordHasher()
# verified against when the address is unknown, so an unknown address costs as much time
# as a wrong password and the answer does not tell which addresses have accounts
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(WindlError):
    """A registration, confirmation, invitation or login that cannot be done."""


class LoginFailed(AccountError):
    """Wrong address or password (the message never says which)."""


class TooManyAttempts(AccountError):
    """Too many failed logins for this address or from this remote address recently."""


@dataclass(frozen=True)
class User:
    """An account as the portal sees it (role already resolved against ``windl.toml``)."""

    id: int
    email: str
    name: str
    role: str
    confirmed: bool


def digest(secret: str) -> str:
    """sha256 of a secret (session cookie, confirmation link, token): what the tables keep."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise AccountError(f"not an e-mail address: {email!r}")
    return email


def site_members(site: Site) -> set[str]:
    """The addresses ``windl.toml`` ``[portal] members`` lists."""
    return {str(m).strip().lower() for m in site.setting("portal", "members", [])}


def _resolve(site: Site, row: sa.Row) -> User:
    role = row.role
    if role == "external" and row.email in site_members(site):
        role = "member"
    return User(row.id, row.email, row.name, role, row.confirmed_at is not None)


def get_user(site: Site, engine: Engine, user_id: int) -> User | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(users).where(users.c.id == user_id)).first()
    return _resolve(site, row) if row else None


def find_user(site: Site, engine: Engine, email: str) -> User | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(users).where(users.c.email == email.strip().lower())
        ).first()
    return _resolve(site, row) if row else None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")


def register(
    site: Site, engine: Engine, email: str, name: str, password: str, base_url: str, remote: str
) -> None:
    """Create an unconfirmed account and mail its confirmation link.

    Registering an address that has an account already sends nothing and says nothing
    different, so the form cannot be used to find out who has an account.
    """
    email = normalise_email(email)
    _check_password(password)
    secret = secrets.token_urlsafe(32)
    # hashed whether or not the address is taken: the answer takes as long either way
    hashed = _hasher.hash(password)
    with engine.begin() as connection:
        taken = connection.execute(sa.select(users.c.id).where(users.c.email == email)).first()
        if not taken:
            connection.execute(
                users.insert().values(
                    email=email,
                    name=name.strip()[:200],
                    role="external",
                    password_hash=hashed,
                    confirm_hash=digest(secret),
                    created_at=audit.now(),
                )
            )
        audit.record(
            connection,
            "register",
            email,
            detail="address taken" if taken else "",
            remote_addr=remote,
        )
    if taken:
        # the owner learns of the attempt; the visitor sees the same page as for a new one
        mailer.send(
            site,
            email,
            "Registration with your address at the windl portal",
            "Somebody tried to register a new account with this address, which has an "
            "account already. If it was you, log in or ask the operators for a new "
            "password; otherwise ignore this message.\n",
        )
        return
    mailer.send(
        site,
        email,
        "Confirm your windl portal account",
        f"Hello {name.strip() or email},\n\nconfirm your account by opening this link:\n\n"
        f"{base_url.rstrip('/')}/confirm/{secret}\n\n"
        "If you did not register, ignore this message.\n",
    )


def invite(site: Site, engine: Engine, email: str, role: str, base_url: str) -> User:
    """Create (or re-invite) an account with ``role`` and mail a link to choose a password."""
    email = normalise_email(email)
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    secret = secrets.token_urlsafe(32)
    with engine.begin() as connection:
        row = connection.execute(sa.select(users).where(users.c.email == email)).first()
        if row:
            connection.execute(
                users.update()
                .where(users.c.id == row.id)
                .values(role=role, confirm_hash=digest(secret))
            )
        else:
            connection.execute(
                users.insert().values(
                    email=email,
                    role=role,
                    confirm_hash=digest(secret),
                    created_at=audit.now(),
                )
            )
        audit.record(connection, "invite", email, detail=f"role {role}")
    mailer.send(
        site,
        email,
        "Your invitation to the windl portal",
        f"You are invited to the windl portal as {role}.\n\nChoose your password here:\n\n"
        f"{base_url.rstrip('/')}/confirm/{secret}\n",
    )
    user = find_user(site, engine, email)
    assert user is not None
    return user


def pending_confirmation(engine: Engine, secret: str) -> tuple[str, bool] | None:
    """The address a confirmation/invitation link is for, and whether it needs a password."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(users.c.email, users.c.password_hash).where(
                users.c.confirm_hash == digest(secret)
            )
        ).first()
    return (row.email, row.password_hash is None) if row else None


def confirm(
    site: Site, engine: Engine, secret: str, remote: str, password: str | None = None
) -> User:
    """Confirm the address behind a link (an invitation also sets the password)."""
    with engine.begin() as connection:
        row = connection.execute(
            sa.select(users).where(users.c.confirm_hash == digest(secret))
        ).first()
        if row is None:
            raise AccountError("this confirmation link is not valid (used already?)")
        values: dict[str, object] = {"confirm_hash": None, "confirmed_at": audit.now()}
        if row.password_hash is None:
            if password is None:
                raise AccountError("choose a password")
            _check_password(password)
            values["password_hash"] = _hasher.hash(password)
        connection.execute(users.update().where(users.c.id == row.id).values(**values))
        audit.record(connection, "confirm", row.email, remote_addr=remote)
    user = get_user(site, engine, row.id)
    assert user is not None
    return user


def _failures(engine: Engine, email: str, remote: str) -> list[datetime]:
    """When logins of this account from this address failed lately (not counting refusals)."""
    since = audit.now() - MAX_LOCKOUT
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(audit_log.c.at)
            .where(
                audit_log.c.event == "login-failed",
                audit_log.c.at >= since,
                audit_log.c.actor == email,
                audit_log.c.remote_addr == remote,
                audit_log.c.detail != RATE_LIMITED,
            )
            .order_by(audit_log.c.id)
        ).scalars()
        return [audit.as_utc(at) for at in rows]


def locked_until(failures: list[datetime], limit: int) -> datetime | None:
    """The end of the lock these failures earn: none below ``limit``, then doubling.

    The ``limit``-th failure locks for :data:`LOCKOUT`, each one after it (possible only
    once a lock has run out) for twice as long as the one before, up to
    :data:`MAX_LOCKOUT`. Failures older than the lock they earned no longer count, so an
    account that is left alone is free again.
    """
    recent = [at for at in failures if at > audit.now() - MAX_LOCKOUT]
    if len(recent) < limit:
        return None
    extra = len(recent) - limit
    lock = min(LOCKOUT * (2**extra) if extra < 16 else MAX_LOCKOUT, MAX_LOCKOUT)
    return recent[-1] + lock


def authenticate(site: Site, engine: Engine, email: str, password: str, remote: str) -> User:
    """The confirmed account with this address and password.

    Raises
    ------
    TooManyAttempts
        After ``[portal] max_failed_logins`` (default 5) failures of this account from this
        remote address: logins of that pair pause for 15 minutes, doubling with each
        further failure (the password is not even checked meanwhile). Refused attempts do
        not lengthen the lock, and other addresses (other people behind the same proxy, or
        the owner elsewhere) are not locked out.
    LoginFailed
        Unknown address, wrong password or unconfirmed account (one message for all).
    """
    email = email.strip().lower()
    limit = int(site.setting("portal", "max_failed_logins", DEFAULT_MAX_FAILURES))
    until = locked_until(_failures(engine, email, remote), limit)
    if until is not None and until > audit.now():
        audit.record(engine, "login-failed", email, remote_addr=remote, detail=RATE_LIMITED)
        minutes = max(1, round((until - audit.now()).total_seconds() / 60))
        raise TooManyAttempts(f"too many failed logins; try again in {minutes} minutes")
    with engine.connect() as connection:
        row = connection.execute(sa.select(users).where(users.c.email == email)).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password) and stored is not _DUMMY_HASH
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or row.confirmed_at is None:
        audit.record(engine, "login-failed", email, remote_addr=remote)
        raise LoginFailed("wrong e-mail address or password, or the address is not confirmed")
    if _hasher.check_needs_rehash(stored):
        with engine.begin() as connection:
            connection.execute(
                users.update()
                .where(users.c.id == row.id)
                .values(password_hash=_hasher.hash(password))
            )
    return _resolve(site, row)


# ----------------------------------------------------------------------------- sessions
def session_lifetime(site: Site) -> timedelta:
    return timedelta(hours=float(site.setting("portal", "session_hours", DEFAULT_SESSION_HOURS)))


def start_session(site: Site, engine: Engine, user: User, remote: str) -> str:
    """A new session for ``user``; returns the cookie value (only its hash is stored)."""
    secret = secrets.token_urlsafe(32)
    start = audit.now()
    with engine.begin() as connection:
        connection.execute(
            sessions.insert().values(
                id_hash=digest(secret),
                user_id=user.id,
                created_at=start,
                expires_at=start + session_lifetime(site),
            )
        )
        audit.record(connection, "login", user.email, remote_addr=remote)
    return secret


def session_user(site: Site, engine: Engine, secret: str | None) -> User | None:
    """The account of a live session; an expired session is deleted and gives None."""
    if not secret:
        return None
    key = digest(secret)
    with engine.connect() as connection:
        row = connection.execute(sa.select(sessions).where(sessions.c.id_hash == key)).first()
    if row is None:
        return None
    if audit.as_utc(row.expires_at) <= audit.now():
        end_session(engine, secret)
        return None
    return get_user(site, engine, row.user_id)


def end_session(engine: Engine, secret: str, actor: str = "", remote: str = "") -> None:
    with engine.begin() as connection:
        connection.execute(sessions.delete().where(sessions.c.id_hash == digest(secret)))
        if actor:
            audit.record(connection, "logout", actor, remote_addr=remote)


def password_hash(engine: Engine, email: str) -> str | None:
    """The stored hash of an account's password (for checks of the hashing scheme)."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(users.c.password_hash).where(users.c.email == email.strip().lower())
        ).scalar()
