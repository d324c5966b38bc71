"""Alembic environment of the catalog's tables (run through :func:`windl.database.migrate`)."""

from alembic import context

from windl.catalog.models import Base
from windl.database import run_migrations

run_migrations(context, Base.metadata)
