"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.municipality import Municipality, load_toml_file
from storage.database import Database
from storage.migrate import upgrade
from storage.municipality_store import save_municipality
from storage.photos import PhotoStore
from storage.tables import Base
from storage.urls import normalise_url

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def _reset_postgres(engine: SqlEngine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private database on the TEST_DATABASE_URL server for this test run, dropped at the end, so that
    parallel runs (several developers, CI) never wipe each other's tables."""
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"otklik_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a fresh SQLite file, or this run's PostgreSQL database wiped clean."""
    if PG_URL:
        url = request.getfixturevalue("postgres_url")
        engine = create_engine(normalise_url(url))
        _reset_postgres(engine)
        engine.dispose()
        yield url
    else:
        yield f"sqlite:///{tmp_path / 'otklik.sqlite3'}"


@pytest.fixture
def sql_engine(database_url: str) -> Iterator[SqlEngine]:
    """A sync SQLAlchemy engine on an empty database with every table created."""
    engine = create_engine(normalise_url(database_url))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


# --- the engine over real storage ------------------------------------------------------------
# Tuesday 1 December 2026, 10:00 in Irkutsk (UTC+8).
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def demo() -> Municipality:
    return load_toml_file(DEMO_CONFIG_PATH)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def engine(db: Database, demo: Municipality) -> Engine:
    """The engine on a migrated database with the demo city loaded, at a fixed time."""
    db.run_sync(lambda store: save_municipality(Session(bind=store.conn), demo))
    return Engine(db, demo, clock=lambda: NOW)


@pytest.fixture
def photos(tmp_path: Path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")
