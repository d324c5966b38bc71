"""catalog: distinct facet-term sets, so that a broad search counts facets per set

Search then reads only ids for the matching datasets and one grouped row per distinct
(term set, scope, license). The catalog is derived data: its rows are emptied and the next
``windl catalog index`` reads every dataset again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_termsets",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_catalog_termsets"),
    )
    op.add_column("catalog_entries", sa.Column("terms_key", sa.BigInteger(), nullable=True))
    for table in (
        "catalog_files",
        "catalog_terms",
        "catalog_entries",
        "catalog_versions",
        "catalog_grants",
        "catalog_datasets",
        "catalog_meta",
    ):
        op.execute(f"DELETE FROM {table}")


def downgrade() -> None:
    with op.batch_alter_table("catalog_entries") as batch:
        batch.drop_column("terms_key")
    op.drop_table("catalog_termsets")
