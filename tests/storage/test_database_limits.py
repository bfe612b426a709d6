"""Bounded connections on PostgreSQL: DATABASE_POOL_SIZE and DATABASE_STATEMENT_TIMEOUT, as `otklik run`
builds its database."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bots.app import build_app
from bots.settings import Settings
from core.demo import DEMO_CONFIG_PATH
from storage.database import Database


@pytest.fixture
def pg(db: Database) -> Database:
    if db.is_sqlite:
        pytest.skip("the pool and statement_timeout are PostgreSQL's; SQLite has one connection")
    return db


async def test_a_statement_over_the_timeout_is_cancelled_and_the_worker_goes_on(
    pg: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=pg.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        municipality_config=DEMO_CONFIG_PATH,
        geocoder="off",
        database_pool_size=3,
        database_statement_timeout=0.2,
    )
    app = build_app(settings)
    try:
        assert app.db.engine.pool.size() == 3  # type: ignore[attr-defined]
        with caplog.at_level(logging.ERROR, "storage.database"), pytest.raises(OperationalError) as caught:
            await app.db.run(lambda uow: uow.conn.execute(text("SELECT pg_sleep(5)")))
        assert "statement timeout" in str(caught.value)
        assert "DATABASE_STATEMENT_TIMEOUT (0.2s)" in caplog.text
        # the same pool serves the next jobs, each well under the limit
        for _ in range(6):
            assert await app.db.run(lambda uow: uow.conn.execute(text("SELECT 1")).scalar()) == 1
        assert app.engine.municipality.code == "irkutsk"
    finally:
        app.close()


async def test_no_timeout_by_default(pg: Database) -> None:
    assert await pg.run(lambda uow: uow.conn.execute(text("SHOW statement_timeout")).scalar()) == "0"
    limited = Database(pg.url, statement_timeout=1.5)
    try:
        shown = await limited.run(lambda uow: uow.conn.execute(text("SHOW statement_timeout")).scalar())
        assert shown == "1500ms"
    finally:
        limited.close()
