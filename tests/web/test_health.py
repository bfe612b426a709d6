"""The shared HTTP server answers health probes, and a real browser reaches it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp

from bots.app import App
from storage.database import Database
from tests.fakes import serve
from web.server import build_http


async def test_healthz_and_readyz_answer_ok(http: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(http + path) as response:
                assert response.status == 200, path
                assert await response.json() == {"status": "ok"}


async def test_readyz_says_503_when_the_database_cannot_be_reached(app: App) -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:1/nothing-listens-here")
    runner, url = await serve(build_http(replace(app, db=unreachable)))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/readyz") as response:
                assert response.status == 503
                assert await response.json() == {"status": "database unreachable"}
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
