"""Personal access tokens: what ``datalad clone``/``get`` (git and git-annex) send over HTTP.

A token is shown once when it is made; the table keeps its sha256 and its first characters
(to tell tokens apart). A revoked token stays listed, marked revoked, and opens nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from windl.portal import audit
from windl.portal.accounts import AccountError, User, digest
from windl.portal.tables import tokens

PREFIX = "wdl_"
#: how exactly a token's "last used" time is kept
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class Token:
    """A token as listed on the account page (never the secret itself)."""

    id: int
    label: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def create(engine: Engine, user: User, label: str, remote: str) -> str:
    """Make a token for ``user``; returns the secret (the only time it is available)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    prefix = secret[: len(PREFIX) + 6]
    with engine.begin() as connection:
        connection.execute(
            tokens.insert().values(
                user_id=user.id,
                label=label.strip()[:100],
                prefix=prefix,
                token_hash=digest(secret),
                created_at=audit.now(),
            )
        )
        audit.record(connection, "token-create", user.email, target=prefix, remote_addr=remote)
    return secret


def _token(row: sa.Row) -> Token:
    def utc(value: datetime | None) -> datetime | None:
        return audit.as_utc(value) if value is not None else None

    return Token(
        row.id,
        row.label,
        row.prefix,
        audit.as_utc(row.created_at),
        utc(row.revoked_at),
        utc(row.last_used_at),
    )


def list_tokens(engine: Engine, user: User) -> list[Token]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(tokens).where(tokens.c.user_id == user.id).order_by(tokens.c.id)
        )
        return [_token(row) for row in rows]


def revoke(engine: Engine, user: User, token_id: int, remote: str) -> None:
    """Revoke one of ``user``'s tokens (someone else's token id is refused as unknown)."""
    with engine.begin() as connection:
        row = connection.execute(
            sa.select(tokens).where(tokens.c.id == token_id, tokens.c.user_id == user.id)
        ).first()
        if row is None:
            raise AccountError(f"no token {token_id} on this account")
        if row.revoked_at is None:
            connection.execute(
                tokens.update().where(tokens.c.id == token_id).values(revoked_at=audit.now())
            )
            audit.record(
                connection, "token-revoke", user.email, target=row.prefix, remote_addr=remote
            )


def owner(engine: Engine, secret: str) -> int | None:
    """The account id an unrevoked token belongs to (None: unknown or revoked)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                tokens.c.id, tokens.c.user_id, tokens.c.revoked_at, tokens.c.last_used_at
            ).where(tokens.c.token_hash == digest(secret))
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    now = audit.now()
    if row.last_used_at is None or now - audit.as_utc(row.last_used_at) > LAST_USED_PRECISION:
        # "last used" to the minute: a clone's hundreds of requests write it once
        with engine.begin() as connection:
            connection.execute(
                tokens.update().where(tokens.c.id == row.id).values(last_used_at=now)
            )
    return row.user_id
