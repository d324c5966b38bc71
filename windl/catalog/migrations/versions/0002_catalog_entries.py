"""catalog: narrow search rows (catalog_entries, with the PostgreSQL text vector); text columns

Values read from datasets (license, DOI, BIDS entities, facet values) are unbounded text:
PostgreSQL enforces VARCHAR lengths, SQLite does not. The catalog is derived data: its rows
are emptied here and the next ``windl catalog index`` reads every dataset again (until then
search says to run it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TEXT_COLUMNS = (
    ("catalog_versions", "license"),
    ("catalog_versions", "doi"),
    ("catalog_terms", "value"),
    ("catalog_terms", "norm"),
    ("catalog_files", "subject"),
    ("catalog_files", "session"),
    ("catalog_files", "datatype"),
    ("catalog_files", "suffix"),
    ("catalog_files", "task"),
    ("catalog_files", "extension"),
)


def upgrade() -> None:
    op.create_table(
        "catalog_entries",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(20), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("is_head", sa.Boolean(), nullable=False),
        sa.Column("latest_published", sa.Boolean(), nullable=False),
        sa.Column("license", sa.Text(), nullable=True),
        sa.Column("n_participants", sa.Integer(), nullable=False),
        sa.Column("has_qc", sa.Boolean(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["catalog_versions.id"],
            name="fk_catalog_entries_version_id_catalog_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", name="pk_catalog_entries"),
    )
    op.create_index("ix_catalog_entries_dataset_id", "catalog_entries", ["dataset_id"])
    if op.get_bind().dialect.name == "postgresql":
        # (on SQLite VARCHAR(n) is TEXT already; a batch rebuild would drop the FTS triggers)
        for table, column in TEXT_COLUMNS:
            op.alter_column(table, column, type_=sa.Text())
        # the text vector moves to the narrow search rows: there it stays inline (no TOAST
        # decompression per row) and is read by the same scan that applies the filters.
        # Positions are stripped (only the name keeps them, weighted A for ranking), which
        # halves its size.
        op.execute("DROP INDEX ix_catalog_versions_search_tsv")
        op.execute("ALTER TABLE catalog_versions DROP COLUMN search_tsv")
        op.execute("ALTER TABLE catalog_entries ADD COLUMN search_tsv tsvector")
        op.execute(
            "CREATE INDEX ix_catalog_entries_search_tsv ON catalog_entries USING gin (search_tsv)"
        )
        # a version's search_doc never changes after its insert (only flags are updated):
        # the vector is made once, when its search row is inserted after the version row
        op.execute(
            """
            CREATE FUNCTION catalog_entries_search_tsv() RETURNS trigger AS $$
            BEGIN
                SELECT setweight(to_tsvector('simple', v.name), 'A')
                       || strip(to_tsvector('simple', v.search_doc))
                INTO NEW.search_tsv
                FROM catalog_versions v WHERE v.id = NEW.version_id;
                RETURN NEW;
            END
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER catalog_entries_search_tsv BEFORE INSERT ON catalog_entries "
            "FOR EACH ROW EXECUTE FUNCTION catalog_entries_search_tsv()"
        )
    for table in (
        "catalog_files",
        "catalog_terms",
        "catalog_versions",
        "catalog_grants",
        "catalog_datasets",
        "catalog_meta",
    ):
        op.execute(f"DELETE FROM {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER catalog_entries_search_tsv ON catalog_entries")
        op.execute("DROP FUNCTION catalog_entries_search_tsv()")
        op.execute(
            "ALTER TABLE catalog_versions ADD COLUMN search_tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', search_doc)) STORED"
        )
        op.execute(
            "CREATE INDEX ix_catalog_versions_search_tsv ON catalog_versions USING gin (search_tsv)"
        )
    op.drop_index("ix_catalog_entries_dataset_id", table_name="catalog_entries")
    op.drop_table("catalog_entries")
