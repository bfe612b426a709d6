"""The access log of `otklik run` (INFO, `otklik -v`) leaves out the webhooks the server accepted — a line per
update — and keeps everything else."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bots.app import App
from bots.telegram.webhook import PATH as TELEGRAM_WEBHOOK
from bots.vk.callback import PATH as VK_CALLBACK
from web import server
from web.server import build_http


def test_the_quiet_paths_are_the_channels_webhook_routes() -> None:
    assert {TELEGRAM_WEBHOOK, VK_CALLBACK} == server.WEBHOOK_PATHS


async def test_accepted_webhooks_are_not_access_logged_refused_ones_and_other_requests_are(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    http = build_http(app)
    statuses = iter([200, 403])

    async def webhook(_: web.Request) -> web.Response:  # a stand-in for the channel's route
        return web.Response(status=next(statuses))

    http.router.add_post(TELEGRAM_WEBHOOK, webhook)
    runner = server.runner(http)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    try:
        with caplog.at_level("INFO", logger="aiohttp.access"):
            async with aiohttp.ClientSession() as session:
                for _ in range(2):
                    async with session.post(url + TELEGRAM_WEBHOOK, data=b"{}") as response:
                        await response.read()
                async with session.get(url + "/healthz") as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 2, lines
    assert f"POST {TELEGRAM_WEBHOOK}" in lines[0] and '" 403 ' in lines[0]
    assert "GET /healthz" in lines[1]
