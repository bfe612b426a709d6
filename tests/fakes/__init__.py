"""Fake platform servers (VK API, Telegram Bot API) on 127.0.0.1, and helpers shared by their tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


async def wait_for(predicate: Callable[[], T], timeout: float = 5.0, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.005)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start `app` on a free port of 127.0.0.1; returns the runner (to clean up) and the base URL."""
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"
