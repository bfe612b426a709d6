"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from storage.tables import Base
from storage.urls import normalise_url

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a fresh SQLite file, or the test PostgreSQL database wiped clean."""
    if PG_URL:
        engine = create_engine(normalise_url(PG_URL))
        _reset_postgres(engine)
        engine.dispose()
        yield PG_URL
    else:
        yield f"sqlite:///{tmp_path / 'otklik.sqlite3'}"


@pytest.fixture
def sql_engine(database_url: str) -> Iterator[Engine]:
    """A sync SQLAlchemy engine on an empty database with every table created."""
    engine = create_engine(normalise_url(database_url))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
