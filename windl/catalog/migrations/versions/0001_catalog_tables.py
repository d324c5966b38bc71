"""catalog: datasets, versions, facet terms, files, grants; full-text search per dialect

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_datasets",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("study", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(20), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("clone_url", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("head_commit", sa.String(64), nullable=False),
        sa.Column("first_commit_date", sa.String(40), nullable=True),
        sa.Column("indexed_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_datasets"),
    )
    op.create_table(
        "catalog_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(200), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("version", sa.String(40), nullable=True),
        sa.Column("tag", sa.String(50), nullable=True),
        sa.Column("date", sa.String(40), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("is_head", sa.Boolean(), nullable=False),
        sa.Column("latest_published", sa.Boolean(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("license", sa.String(100), nullable=True),
        sa.Column("doi", sa.String(200), nullable=True),
        sa.Column("modalities", sa.JSON(), nullable=False),
        sa.Column("datatypes", sa.JSON(), nullable=False),
        sa.Column("suffixes", sa.JSON(), nullable=False),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("derivatives", sa.JSON(), nullable=False),
        sa.Column("n_participants", sa.Integer(), nullable=False),
        sa.Column("n_sessions", sa.Integer(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("qc", sa.JSON(), nullable=False),
        sa.Column("has_qc", sa.Boolean(), nullable=False),
        sa.Column("n_files", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("first_commit_date", sa.String(40), nullable=True),
        sa.Column("last_commit_date", sa.String(40), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("search_doc", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["catalog_datasets.id"],
            name="fk_catalog_versions_dataset_id_catalog_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_versions"),
        sa.UniqueConstraint("dataset_id", "commit", name="uq_catalog_versions_dataset_commit"),
    )
    op.create_index("ix_catalog_versions_dataset_id", "catalog_versions", ["dataset_id"])
    op.create_index("ix_catalog_versions_license", "catalog_versions", ["license"])
    op.create_index("ix_catalog_versions_head", "catalog_versions", ["is_head", "dataset_id"])
    op.create_index(
        "ix_catalog_versions_latest", "catalog_versions", ["latest_published", "dataset_id"]
    )
    op.create_index("ix_catalog_versions_participants", "catalog_versions", ["n_participants"])
    op.create_table(
        "catalog_terms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("facet", sa.String(20), nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.Column("norm", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["catalog_versions.id"],
            name="fk_catalog_terms_version_id_catalog_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_terms"),
    )
    op.create_index("ix_catalog_terms_lookup", "catalog_terms", ["facet", "norm", "version_id"])
    op.create_index("ix_catalog_terms_version", "catalog_terms", ["version_id", "facet", "value"])
    op.create_table(
        "catalog_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("annexed", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(100), nullable=True),
        sa.Column("session", sa.String(100), nullable=True),
        sa.Column("datatype", sa.String(20), nullable=True),
        sa.Column("suffix", sa.String(50), nullable=True),
        sa.Column("task", sa.String(100), nullable=True),
        sa.Column("extension", sa.String(30), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["catalog_versions.id"],
            name="fk_catalog_files_version_id_catalog_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_files"),
    )
    op.create_index("ix_catalog_files_version_path", "catalog_files", ["version_id", "path"])
    op.create_table(
        "catalog_grants",
        sa.Column("dataset_id", sa.String(200), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["catalog_datasets.id"],
            name="fk_catalog_grants_dataset_id_catalog_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "person", name="pk_catalog_grants"),
    )
    op.create_table(
        "catalog_meta",
        sa.Column("key", sa.String(50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_catalog_meta"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # an external-content FTS5 index over search_doc, kept in step by triggers, so that
        # the index code writes plain rows on both backends
        op.execute(
            "CREATE VIRTUAL TABLE catalog_fts USING fts5(search_doc, "
            "content='catalog_versions', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER catalog_fts_insert AFTER INSERT ON catalog_versions BEGIN "
            "INSERT INTO catalog_fts(rowid, search_doc) VALUES (new.id, new.search_doc); END"
        )
        op.execute(
            "CREATE TRIGGER catalog_fts_delete AFTER DELETE ON catalog_versions BEGIN "
            "INSERT INTO catalog_fts(catalog_fts, rowid, search_doc) "
            "VALUES ('delete', old.id, old.search_doc); END"
        )
        op.execute(
            "CREATE TRIGGER catalog_fts_update AFTER UPDATE OF search_doc ON catalog_versions "
            "BEGIN "
            "INSERT INTO catalog_fts(catalog_fts, rowid, search_doc) "
            "VALUES ('delete', old.id, old.search_doc); "
            "INSERT INTO catalog_fts(rowid, search_doc) VALUES (new.id, new.search_doc); END"
        )
    elif dialect == "postgresql":
        # 'simple': no stemming or stop words, the same matching as FTS5's unicode61
        op.execute(
            "ALTER TABLE catalog_versions ADD COLUMN search_tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', search_doc)) STORED"
        )
        op.execute(
            "CREATE INDEX ix_catalog_versions_search_tsv ON catalog_versions USING gin (search_tsv)"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("catalog_fts_insert", "catalog_fts_delete", "catalog_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS catalog_fts")
    for table in (
        "catalog_meta",
        "catalog_grants",
        "catalog_files",
        "catalog_terms",
        "catalog_versions",
        "catalog_datasets",
    ):
        op.drop_table(table)
