"""The site database: SQLite by default, PostgreSQL when windl.toml names one."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from windl import database
from windl.config import load_site


def test_default_database_is_sqlite_inside_the_site(site: Path) -> None:
    url = database.database_url(load_site(site))
    assert url == f"sqlite:///{site.resolve() / 'db' / 'windl.sqlite'}"


def test_password_comes_from_the_named_environment_variable(site: Path, monkeypatch) -> None:
    toml = site / "windl.toml"
    toml.write_text(
        toml.read_text()
        + '\n[database]\nurl = "postgresql+psycopg://windl@db.example.org/windl"\n'
        + 'password_env = "WINDL_TEST_DB_PASSWORD"\n'
    )
    monkeypatch.setenv("WINDL_TEST_DB_PASSWORD", "s3cret")
    assert (
        database.database_url(load_site(site))
        == "postgresql+psycopg://windl:s3cret@db.example.org/windl"
    )


def test_both_backends_answer_queries(database_url: str) -> None:
    with database.engine_for_url(database_url).connect() as connection:
        assert connection.execute(sa.text("SELECT 1 + 1")).scalar_one() == 2
