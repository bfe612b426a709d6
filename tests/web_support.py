"""Fixtures for the HTTP doors (web/): the shared aiohttp server over the test engine, and a real headless
Chromium driven by Playwright (DESIGN.md §13) for pages and the widget."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.app import App
from bots.settings import Settings
from core.engine import Engine
from storage.photos import PhotoStore
from tests.fakes import serve
from web.server import build_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    # Without these, Chromium keeps dialling Google's hosts, which this closed network refuses.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def app(engine: Engine, photos: PhotoStore, tmp_path: Path, database_url: str) -> App:
    """The composition root over the test engine, as `otklik run` builds it."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[call-arg]
    return App(settings=settings, db=engine.db, photos=photos, engine=engine)


@pytest.fixture
async def http(app: App) -> AsyncIterator[str]:
    """The shared HTTP server with every web door installed, on a free port; yields its base URL."""
    runner, url = await serve(build_http(app))
    yield url
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's chromium, headless, through Playwright (no browser download is possible here). CI installs
    it (scripts/setup.sh test), so there a missing browser fails; on a workstation without it, the browser
    tests are skipped with the command that installs it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"chromium is not installed at {CHROMIUM}; scripts/setup.sh test installs it")
        pytest.skip("browser tests need Debian's chromium: apt-get install chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


__all__ = ["app", "browser", "http"]
