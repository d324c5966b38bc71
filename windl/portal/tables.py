"""The portal's tables: accounts, sessions, DUA acceptances, access tokens and the audit log.

They are records that exist nowhere else (unlike the catalog, which is rebuilt from the
datasets), so they change only through migrations in ``windl/portal/migrations``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: roles an account can have; ``external`` self-registers, the others are given by the site
ROLES = ("external", "member", "operator")

users = sa.Table(
    "portal_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False),
    # argon2 hash; NULL until the person chose a password (an invitation not yet taken up)
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
    # sha256 of the e-mailed confirmation or invitation secret (the secret is never stored)
    sa.Column("confirm_hash", sa.String(64), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sessions = sa.Table(
    "portal_sessions",
    metadata,
    # sha256 of the cookie value: a stolen database does not give live sessions
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("portal_users.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

dua_acceptances = sa.Table(
    "portal_dua_acceptances",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("portal_users.id"), nullable=False),
    sa.Column("dua_version", sa.String(32), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("remote_addr", sa.String(64), nullable=False, server_default=""),
    sa.UniqueConstraint("user_id", "dua_version"),
)

tokens = sa.Table(
    "portal_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("portal_users.id"), nullable=False),
    sa.Column("label", sa.String(100), nullable=False, server_default=""),
    # the first characters of the token, to tell tokens apart in the list
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
)

audit_log = sa.Table(
    "portal_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("event", sa.String(32), nullable=False),
    # the account's e-mail, or "" for anonymous requests
    sa.Column("actor", sa.String(320), nullable=False, server_default=""),
    # what was acted on: a dataset id, a file, a query, a token prefix…
    sa.Column("target", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.String(64), nullable=False, server_default=""),
    sa.Column("remote_addr", sa.String(64), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)
