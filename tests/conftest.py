"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, make_url, text

from core.demo import DEMO_CONFIG_PATH
from core.engine import Engine
from core.municipality import Municipality
from core.municipality_file import load_toml_file
from storage.database import Database
from storage.migrate import head_revisions, upgrade
from storage.municipality_store import save_municipality
from storage.photos import PhotoStore
from storage.tables import metadata
from storage.urls import normalise_url
from tests.fakes.vk_api import FakeVk
from tests.users import unawaited_checks

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/e2e start whole processes (`otklik run`, scripts, the CLI), and tests that take the
    `browser` fixture start chromium: they carry the `e2e` marker, so that `pytest -m "not e2e"` is the fast
    tier; elsewhere a test says `@pytest.mark.e2e`."""
    e2e = TESTS / "e2e"
    for item in items:
        if item.path.is_relative_to(e2e) or "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _every_expect_awaited() -> Iterator[None]:
    """`user.expect(...)` without `await` checks nothing: such a test fails instead of passing."""
    yield
    left = unawaited_checks()
    assert not left, f"checks called without await (so never made): {left}"


def _reset_postgres(engine: SqlEngine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@cache
def _heads() -> tuple[str, ...]:
    return head_revisions()


def _empty_postgres_at_head(url: str) -> bool:
    """Delete every row and restart every sequence of a database still at the latest schema, as a fresh
    upgrade would leave it (the migrations insert no rows): ~0.1 s against ~1.5 s for migrating again (and
    DELETE beats TRUNCATE on tables this small). False, touching nothing, when the schema is not at head (a
    test started from an empty database, or downgraded it)."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            if not conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar():
                return False
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            if tuple(versions) != _heads():
                return False
            for table in reversed(metadata.sorted_tables):  # rows that refer to others first
                conn.execute(table.delete())
            listed = "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
            for sequence in conn.execute(text(listed)).scalars().all():
                conn.execute(text("SELECT setval(:sequence, 1, false)"), {"sequence": f'"{sequence}"'})
        return True
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private database on the TEST_DATABASE_URL server for this test process, dropped at the end, so that
    parallel runs (several developers, CI) and the workers of one run (pytest-xdist: a session per worker
    process) never wipe each other's tables."""
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
    """A URL of an empty database: a fresh SQLite file, or this run's PostgreSQL database wiped clean (left
    to `db` when the test wants a migrated one: it may only need emptying)."""
    if PG_URL:
        url = request.getfixturevalue("postgres_url")
        if "db" not in request.fixturenames:
            engine = create_engine(normalise_url(url))
            _reset_postgres(engine)
            engine.dispose()
        yield url
    else:
        yield f"sqlite:///{tmp_path / 'otklik.sqlite3'}"


@pytest.fixture(scope="session")
def declared_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every declared table, created once per run and copied per test."""
    path = tmp_path_factory.mktemp("template") / "declared.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture
def sql_engine(request: pytest.FixtureRequest, database_url: str) -> Iterator[SqlEngine]:
    """A sync SQLAlchemy engine on an empty database with every table created."""
    if database_url.startswith("sqlite:///"):
        shutil.copyfile(request.getfixturevalue("declared_template"), database_url.removeprefix("sqlite:///"))
    engine = create_engine(normalise_url(database_url))
    if not database_url.startswith("sqlite:///"):
        metadata.create_all(engine)
    yield engine
    engine.dispose()


# --- the engine over real storage ------------------------------------------------------------
# Tuesday 1 December 2026, 10:00 in Irkutsk (UTC+8).
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def demo() -> Municipality:
    return load_toml_file(DEMO_CONFIG_PATH)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file upgraded to head once per run: copying it is ~100x cheaper than running every
    migration for every test (tests/storage/test_migrations.py still runs them on empty databases)."""
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def demo_template(migrated_template: Path, demo: Municipality) -> Path:
    """The migrated template with the demo city saved in it: what most tests start from (`engine`), copied
    instead of saving the city for each of them (~15 ms of CPU a test)."""
    path = migrated_template.with_name("demo.sqlite3")
    shutil.copyfile(migrated_template, path)
    database = Database(f"sqlite:///{path}")
    database.run_sync(lambda store: save_municipality(store.conn, demo))
    database.close()
    return path


_WITH_DEMO: set[int] = set()
"""id() of the `db`s copied from the demo template, which have the demo city already."""


@pytest.fixture
def db(request: pytest.FixtureRequest, database_url: str) -> Iterator[Database]:
    """A database at the latest schema: a copy of the migrated template (SQLite), or on PostgreSQL this
    worker's database emptied when it is at head already, migrated again otherwise.
    When the test builds the `engine` too, the SQLite copy is of the demo template: the city is there."""
    with_demo = database_url.startswith("sqlite:///") and "engine" in request.fixturenames
    if database_url.startswith("sqlite:///"):
        template = request.getfixturevalue("demo_template" if with_demo else "migrated_template")
        shutil.copyfile(template, database_url.removeprefix("sqlite:///"))
    elif not _empty_postgres_at_head(database_url):
        engine = create_engine(normalise_url(database_url))
        _reset_postgres(engine)
        engine.dispose()
        upgrade(database_url)
    database = Database(database_url)
    if with_demo:
        _WITH_DEMO.add(id(database))
    yield database
    _WITH_DEMO.discard(id(database))
    database.close()


def load_demo(db: Database, demo: Municipality) -> None:
    """The demo city in `db`: a copy of the demo template has it already; otherwise it is saved now."""
    if id(db) not in _WITH_DEMO:
        db.run_sync(lambda store: save_municipality(store.conn, demo))


@pytest.fixture
def engine(db: Database, demo: Municipality) -> Engine:
    """The engine on a migrated database with the demo city loaded, at a fixed time."""
    load_demo(db, demo)
    return Engine(db, demo, clock=lambda: NOW)


@pytest.fixture
def photos(tmp_path: Path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


@pytest.fixture(params=("aiogram", "ptb"))
def library(request: pytest.FixtureRequest) -> str:
    """The Telegram tests run once through each library."""
    return str(request.param)


@pytest.fixture
async def bot(engine: Engine, photos: PhotoStore, library: str) -> AsyncIterator[Any]:
    """A Telegram channel on the fake Bot API (a tests.telegram_support.Harness), imported when asked for."""
    from tests.telegram_support import telegram_bot

    async with telegram_bot(engine, photos, library) as harness:
        yield harness


# --- the otklik command line as subprocesses ----------------------------------------------------------------
OTKLIK = str(Path(sys.executable).with_name("otklik"))


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_", "DATABASE_"))}
    env.update(DATA_DIR=str(tmp_path / "data"), GEOCODER="off", PYTHONUNBUFFERED="1", HTTP_PORT="0")
    env["CONSENT_REQUIRED"] = (
        "false"  # scripted dialogs of other features; tests/e2e/test_privacy_cli.py has it on
    )
    if not database_url.startswith("sqlite"):
        env["DATABASE_URL"] = database_url
    return env


@pytest.fixture
def otklik(env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    def run(*args: str, stdin: str = "", expect: int = 0) -> str:
        done = subprocess.run(
            [OTKLIK, *args], input=stdin, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=90
        )
        assert done.returncode == expect, done.stderr + done.stdout
        return done.stdout if expect == 0 else done.stderr

    if "DATABASE_URL" in env:
        run("db", "upgrade")
        run("config", "load", str(DEMO_CONFIG_PATH))
    return run


# --- a fake VK API for the VK channel's tests --------------------------------------------------------------
@pytest.fixture
async def vk() -> AsyncIterator[FakeVk]:
    fake = await FakeVk().start()
    yield fake
    await fake.close()
