"""Alembic environment of the portal's tables (run through :func:`windl.database.migrate`)."""

from alembic import context

from windl.database import run_migrations
from windl.portal.tables import metadata

run_migrations(context, metadata)
