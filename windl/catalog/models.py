"""Tables of the catalog (derived data: ``windl catalog index`` rebuilds them from the datasets).

One row per dataset (a study dataset or a release dataset), one row per indexed *version*
of it (every published tag ``vX.Y.Z`` of a release, plus its HEAD; the HEAD of a study
dataset), and per version its files and its facet terms (modality, datatype, suffix, task:
one row per value, so that filters and facet counts are plain indexed SQL).

Search filters, orders and counts facets on ``catalog_entries``, one narrow row per version.
Full-text search is dialect-specific and made by the migrations only: an FTS5 table
``catalog_fts`` kept in step with ``catalog_versions.search_doc`` by triggers (SQLite), or a
``tsvector`` column ``catalog_entries.search_tsv`` with a GIN index, filled by a trigger from
the version's name and ``search_doc`` (PostgreSQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Dataset(Base):
    """A study dataset (``id`` = study) or a release dataset (``id`` = ``study/scope``)."""

    __tablename__ = "catalog_datasets"

    id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10))  # "study" or "release"
    study: Mapped[str] = mapped_column(sa.String(100))
    # None for a study dataset; individuals, members or external for a release
    scope: Mapped[str | None] = mapped_column(sa.String(20))
    path: Mapped[str] = mapped_column(sa.Text)
    clone_url: Mapped[str | None] = mapped_column(sa.Text)
    # HEAD plus every version tag, as read: the index re-reads the dataset when it changes
    fingerprint: Mapped[str] = mapped_column(sa.Text)
    head_commit: Mapped[str] = mapped_column(sa.String(64))
    first_commit_date: Mapped[str | None] = mapped_column(sa.String(40))
    indexed_at: Mapped[str] = mapped_column(sa.String(40))


class Version(Base):
    """What a dataset holds at one commit: a published tag, or the HEAD."""

    __tablename__ = "catalog_versions"
    __table_args__ = (
        sa.UniqueConstraint("dataset_id", "commit", name="uq_catalog_versions_dataset_commit"),
        sa.Index("ix_catalog_versions_head", "is_head", "dataset_id"),
        sa.Index("ix_catalog_versions_latest", "latest_published", "dataset_id"),
        sa.Index("ix_catalog_versions_participants", "n_participants"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(
        sa.ForeignKey("catalog_datasets.id", ondelete="CASCADE"), index=True
    )
    commit: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[str | None] = mapped_column(sa.String(40))  # X.Y.Z of a release
    tag: Mapped[str | None] = mapped_column(sa.String(50))  # vX.Y.Z once published
    date: Mapped[str | None] = mapped_column(sa.String(40))  # tag date, else commit date
    published: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    is_head: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    latest_published: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    name: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    authors: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    license: Mapped[str | None] = mapped_column(sa.Text, index=True)
    doi: Mapped[str | None] = mapped_column(sa.Text)
    modalities: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    datatypes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    suffixes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    tasks: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    derivatives: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    n_participants: Mapped[int] = mapped_column(sa.Integer, default=0)
    n_sessions: Mapped[int] = mapped_column(sa.Integer, default=0)
    participants: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    qc: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    has_qc: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    n_files: Mapped[int] = mapped_column(sa.Integer, default=0)
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    first_commit_date: Mapped[str | None] = mapped_column(sa.String(40))
    last_commit_date: Mapped[str | None] = mapped_column(sa.String(40))
    changes: Mapped[str] = mapped_column(sa.Text, default="")
    # the text full-text search reads (FTS5 / tsvector are made from it by the migration)
    search_doc: Mapped[str] = mapped_column(sa.Text, default="")


class Term(Base):
    """One facet value of a version: facet modality/datatype/suffix/task, ``norm`` lower-case."""

    __tablename__ = "catalog_terms"
    __table_args__ = (
        sa.Index("ix_catalog_terms_lookup", "facet", "norm", "version_id"),
        sa.Index("ix_catalog_terms_version", "version_id", "facet", "value"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("catalog_versions.id", ondelete="CASCADE")
    )
    facet: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[str] = mapped_column(sa.Text)
    norm: Mapped[str] = mapped_column(sa.Text)


class File(Base):
    """One file of a version (annexed or in git), with its BIDS entities."""

    __tablename__ = "catalog_files"
    __table_args__ = (sa.Index("ix_catalog_files_version_path", "version_id", "path"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("catalog_versions.id", ondelete="CASCADE")
    )
    path: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    annexed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    subject: Mapped[str | None] = mapped_column(sa.Text)
    session: Mapped[str | None] = mapped_column(sa.Text)
    datatype: Mapped[str | None] = mapped_column(sa.Text)
    suffix: Mapped[str | None] = mapped_column(sa.Text)
    task: Mapped[str | None] = mapped_column(sa.Text)
    extension: Mapped[str | None] = mapped_column(sa.Text)


class Grant(Base):
    """An active grantee (account e-mail) of an individuals release (from its grants.tsv)."""

    __tablename__ = "catalog_grants"

    dataset_id: Mapped[str] = mapped_column(
        sa.ForeignKey("catalog_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    person: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class Meta(Base):
    """Key/value facts about the catalog itself (e.g. when it was last indexed)."""

    __tablename__ = "catalog_meta"

    key: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


datasets_t = Dataset.__table__
versions_t = Version.__table__
terms_t = Term.__table__
files_t = File.__table__
grants_t = Grant.__table__
meta_t = Meta.__table__


class Entry(Base):
    """The narrow search row of a version: what search filters, orders and facets on.

    Search reads only this table (plus full text) for all matching versions, so it stays
    small; ``terms`` packs the facet values as ``facet<TAB>value`` lines.
    """

    __tablename__ = "catalog_entries"

    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("catalog_versions.id", ondelete="CASCADE"), primary_key=True
    )
    dataset_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    scope: Mapped[str | None] = mapped_column(sa.String(20))
    published: Mapped[bool] = mapped_column(sa.Boolean)
    is_head: Mapped[bool] = mapped_column(sa.Boolean)
    latest_published: Mapped[bool] = mapped_column(sa.Boolean)
    license: Mapped[str | None] = mapped_column(sa.Text)
    n_participants: Mapped[int] = mapped_column(sa.Integer)
    has_qc: Mapped[bool] = mapped_column(sa.Boolean)
    terms: Mapped[str] = mapped_column(sa.Text)
    # catalog_termsets.key of ``terms``: facets are counted per distinct set in the database
    terms_key: Mapped[int | None] = mapped_column(sa.BigInteger)


class TermSet(Base):
    """One distinct packed set of facet values (many datasets share the same set)."""

    __tablename__ = "catalog_termsets"

    key: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    terms: Mapped[str] = mapped_column(sa.Text)


entries_t = Entry.__table__
termsets_t = TermSet.__table__
