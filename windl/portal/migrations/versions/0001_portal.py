"""portal: accounts, sessions, DUA acceptances, tokens and the append-only audit log

Revision ID: 0001_portal
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_portal"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# The audit log is append-only in the database itself, not only in windl's code: a trigger
# refuses every UPDATE and DELETE (and TRUNCATE on PostgreSQL), whoever connects.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER portal_audit_log_no_{what.lower()} BEFORE {what} ON portal_audit_log
    BEGIN SELECT RAISE(ABORT, 'portal_audit_log is append-only'); END"""
    for what in ("UPDATE", "DELETE")
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION portal_audit_log_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'portal_audit_log is append-only'; END
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER portal_audit_log_no_change BEFORE UPDATE OR DELETE ON portal_audit_log
    FOR EACH ROW EXECUTE FUNCTION portal_audit_log_append_only()""",
    """CREATE TRIGGER portal_audit_log_no_truncate BEFORE TRUNCATE ON portal_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION portal_audit_log_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "portal_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("confirmed_at", TZ, nullable=True),
        sa.Column("confirm_hash", sa.String(64), nullable=True, index=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("portal_users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_table(
        "portal_dua_acceptances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("portal_users.id"), nullable=False),
        sa.Column("dua_version", sa.String(32), nullable=False),
        sa.Column("accepted_at", TZ, nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False, server_default=""),
        sa.UniqueConstraint("user_id", "dua_version"),
    )
    op.create_table(
        "portal_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("portal_users.id"), nullable=False),
        sa.Column("label", sa.String(100), nullable=False, server_default=""),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("last_used_at", TZ, nullable=True),
    )
    op.create_table(
        "portal_audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TZ, nullable=False, index=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False, server_default=""),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.String(64), nullable=False, server_default=""),
        sa.Column("remote_addr", sa.String(64), nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS portal_audit_log_append_only() CASCADE")
    for table in (
        "portal_audit_log",
        "portal_tokens",
        "portal_dua_acceptances",
        "portal_sessions",
        "portal_users",
    ):
        op.drop_table(table)
