"""Who may clone and get which release over HTTP.

* no token, an unknown or a revoked token: 401 (git then asks the credential helpers);
* ``external`` releases: the token's account must have accepted the *current* DUA
  version, else 403;
* ``members`` releases: the token's account must be a member or operator; for anybody
  else the release does not exist (404, as for a release that was never published), so a
  members-only study stays invisible by direct URL too.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from windl.config import Site
from windl.portal import accounts, dua, tokens

MEMBER_ROLES = ("member", "operator")


@dataclass(frozen=True)
class Decision:
    """The answer to one request: HTTP status (200 = allowed), the account and why."""

    status: int
    user: accounts.User | None
    reason: str


def basic_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization: Basic`` header (the password; else the user name)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return password or username or None


def token_user(site: Site, engine: Engine, authorization: str | None) -> accounts.User | None:
    """The confirmed account whose unrevoked token the request carries, or None."""
    secret = basic_token(authorization)
    if secret is None:
        return None
    user_id = tokens.owner(engine, secret)
    user = accounts.get_user(site, engine, user_id) if user_id is not None else None
    return user if user is not None and user.confirmed else None


def release_access(site: Site, engine: Engine, scope: str, authorization: str | None) -> Decision:
    """May the bearer of ``authorization`` read a ``scope`` release?"""
    user = token_user(site, engine, authorization)
    if user is None:
        return Decision(401, None, "no valid token")
    if scope == "members":
        if user.role not in MEMBER_ROLES:
            return Decision(404, user, "members only")
        return Decision(200, user, "member")
    version = dua.current(site).version
    if dua.accepted_at(engine, user.id, version) is None:
        return Decision(403, user, f"DUA {version} not accepted")
    return Decision(200, user, f"DUA {version} accepted")
