"""The shared HTTP server answers health probes, and a real browser reaches it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.app import App
from bots.settings import Settings
from storage.database import Database
from storage.migrate import upgrade
from tests.fakes import serve
from web.server import build_http


async def test_healthz_and_readyz_answer_ok(http: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(http + "/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
        async with session.get(http + "/readyz") as response:
            assert response.status == 200
            # Not elected (no `otklik run` here): a standby, ready for traffic all the same.
            assert await response.json() == {"status": "ok", "schema": "current", "role": "standby"}


async def test_readyz_names_the_leader_and_a_web_only_worker(app: App) -> None:
    runner, url = await serve(build_http(app))
    try:
        async with aiohttp.ClientSession() as session:
            app.cluster.leader = True
            async with session.get(url + "/readyz") as response:
                assert (await response.json())["role"] == "leader"
            app.cluster.role, app.cluster.leader = "web", False
            async with session.get(url + "/readyz") as response:
                assert (await response.json())["role"] == "web"
    finally:
        await runner.cleanup()


async def test_readyz_says_503_when_the_schema_is_older_than_the_code(
    app: App, tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("an old schema on SQLite is enough: the check is alembic's, whatever the engine")
    old = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(old, "0005")
    behind = replace(app, settings=replace_settings(app.settings, database_url=old))
    runner, url = await serve(build_http(behind))
    try:
        async with aiohttp.ClientSession() as session, session.get(url + "/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "schema behind"
        assert "revision 0005" in body["detail"]
    finally:
        await runner.cleanup()


def replace_settings(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


async def test_readyz_says_503_when_the_database_cannot_be_reached(app: App) -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:1/nothing-listens-here")
    runner, url = await serve(build_http(replace(app, db=unreachable)))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/readyz") as response:
                assert response.status == 503
                assert await response.json() == {"status": "database unreachable", "role": "standby"}
            async with session.get(url + "/healthz") as response:
                assert response.status == 200  # the process itself still answers
    finally:
        await runner.cleanup()
        unreachable.close()


async def test_a_real_browser_reaches_the_server(http: str, browser: Any) -> None:
    page = await browser.new_page()
    response = await page.goto(http + "/healthz")
    assert response is not None and response.status == 200
    assert '"ok"' in await page.content()
