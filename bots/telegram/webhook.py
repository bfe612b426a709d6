"""The webhook route on the shared aiohttp server (`otklik run` passes it to `Channel.start`).

The update is handled before the answer: 200 only once the engine committed it and the replies went out,
500 when it failed, so Telegram delivers it again; a repeat is deduplicated by update_id (the pipeline for
one in flight or just handled, the engine's event key after a restart).
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web

from bots.telegram.api import BotApi
from bots.telegram.pipeline import Pipeline

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PATH = "/telegram/webhook"


class WebhookRoute:
    def __init__(self, api: BotApi, pipeline: Pipeline, secret: str, *, answer_within: float = 50.0) -> None:
        self.api = api
        self.pipeline = pipeline
        self.secret = secret.encode()
        self.answer_within = answer_within
        self.closed = False

    def install(self, http: web.Application, path: str = PATH) -> None:
        http.router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return web.Response(status=401, text="secret token required")
        if not hmac.compare_digest(given.encode(), self.secret):
            return web.Response(status=403, text="wrong secret token")
        if self.closed:
            return web.Response(status=503, text="shutting down")
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not an update")
        try:
            update = self.api.parse_update(data)
        except Exception:
            # Sending it again will not make it parse: accept it, and keep it in the log.
            log.exception("cannot parse Telegram update %s; dropped", data.get("update_id"))
            return web.Response(status=200)
        future = self.pipeline.submit(update)
        try:
            ok = await asyncio.wait_for(asyncio.shield(future), self.answer_within)
        except TimeoutError:
            return web.Response(status=503, text="still working on it")
        return web.Response(status=200) if ok else web.Response(status=500, text="failed; send it again")
