"""The webhook route on the shared aiohttp server (`otklik run` passes it to `Channel.start`).

The secret header is checked before the body is read. The update is handled before the answer: 200 once the
engine committed it and the replies went out (or it failed in a way that would repeat: the user was told
once), 500 when it failed transiently, so Telegram delivers it again; a repeat is deduplicated by update_id
(the pipeline for one in flight or just handled, the engine's event key after a restart). A body that is
not a JSON update gets 400 and one log line: a client error, not ours.

A button press's callback query is answered in the 200 response itself (`answerCallbackQuery` as the
response's JSON: the Bot API runs one method given so with a webhook's answer), not by a request of its own:
a whole HTTP request less per press, where the cluster's workers get only webhooks (issue 17). Its result is
never seen, which suits this call only: a failed answer only leaves the button's spinner to stop by itself,
as a failed request did (`TelegramSender.acknowledge` logged it at debug). It is not a message, so Telegram's
limits and our pace do not count it, as before. The spinner now stops once the replies went out rather than
just before them; the keyboard still comes off the pressed message before the replies are sent.
"""

from __future__ import annotations

import asyncio
import hmac
import json
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
            data = json.loads(await request.read())
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            log.warning("Telegram webhook: unparsable body refused (%s)", type(exc).__name__)
            return web.Response(status=400, text="not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            log.warning("Telegram webhook: a body that is not an update refused")
            return web.Response(status=400, text="not an update")
        try:
            update = self.api.parse_update(data)
        except Exception:
            # Sending it again will not make it parse: accept it, and keep it in the log.
            log.exception("cannot parse Telegram update %s; dropped", data.get("update_id"))
            return web.Response(status=200)
        callback = update.get("callback_query")
        callback_id = callback.get("id") if isinstance(callback, dict) else None
        future = self.pipeline.submit(update, answer_callback=callback_id is None)
        try:
            ok = await asyncio.wait_for(asyncio.shield(future), self.answer_within)
        except TimeoutError:
            return web.Response(status=503, text="still working on it")
        if not ok:
            return web.Response(status=500, text="failed; send it again")
        if callback_id is not None:
            return web.json_response({"method": "answerCallbackQuery", "callback_query_id": str(callback_id)})
        return web.Response(status=200)
