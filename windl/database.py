"""The site's database: one SQLAlchemy engine, and Alembic migrations per part.

Two parts of windl keep tables in it, each with its own migration history and version table:

``catalog``
    the search index (:mod:`windl.catalog`). It is derived data: dropping it and running
    ``windl catalog index`` rebuilds it from the datasets.
``portal``
    accounts, Data Usage Agreement acceptances, access tokens and the audit log
    (:mod:`windl.portal`). These are records that exist nowhere else.

Keeping the histories apart lets either part migrate (or the catalog be rebuilt) without
touching the other. The database is SQLite at ``<site>/db/windl.sqlite`` unless
``windl.toml`` names another one::

    [database]
    url = "postgresql+psycopg://windl@db.example.org/windl"
    password_env = "WINDL_DB_PASSWORD"   # optional: the password is read from this variable
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from windl.config import Site
from windl.errors import ConfigError

MIGRATIONS_ROOT = Path(__file__).resolve().parent
PARTS = ("catalog", "portal")
_engines: dict[str, Engine] = {}


def database_url(site: Site) -> str:
    """The SQLAlchemy URL of ``site``'s database (password taken from the environment)."""
    url = site.setting("database", "url")
    if not url:
        return f"sqlite:///{site.root / 'db' / 'windl.sqlite'}"
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"[database] url is not a database URL: {exc}", site.root) from None
    password_env = site.setting("database", "password_env")
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(
                f"[database] password_env names ${password_env}, which is not set", site.root
            )
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


def engine_for_url(url: str) -> Engine:
    """One engine per URL per process; SQLite gets WAL, foreign keys and a busy timeout."""
    engine = _engines.get(url)
    if engine is not None:
        return engine
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        kwargs["connect_args"] = {"timeout": 30}
        # as many pooled connections as the portal has threads: no reconnects under load
        kwargs["pool_size"] = 40
        kwargs["max_overflow"] = 10
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    _engines[url] = engine
    return engine


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (SQLite gives its WAL the same mode).

    The database holds password hashes, token hashes and the audit log.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(0o600)


def engine(site: Site) -> Engine:
    """The engine of ``site``'s database."""
    return engine_for_url(database_url(site))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the portal reads while `catalog index` writes; concurrent readers never block
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL, NORMAL syncs at checkpoints, not at every commit: a crash of windl loses
    # nothing; a power cut can lose the last commits, never the database's consistency
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def version_table(part: str) -> str:
    return f"alembic_version_{part}"


def migrate(engine: Engine, part: str) -> None:
    """Bring ``part``'s tables to the newest migration (idempotent).

    Each part keeps its migrations in ``windl/<part>/migrations`` with an ``env.py`` that
    calls :func:`run_migrations`.
    """
    if part not in PARTS:
        raise ValueError(f"unknown database part {part!r}")
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ROOT / part / "migrations"))
    config.attributes["version_table"] = version_table(part)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def run_migrations(context: Any, target_metadata: sa.MetaData) -> None:
    """Body of every part's ``env.py``: run online against the connection :func:`migrate` gave."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("windl migrations run through windl.database.migrate()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
