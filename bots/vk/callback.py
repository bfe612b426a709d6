"""The Callback API route on the shared aiohttp server (`otklik run` passes it to `Channel.start`).

vkbottle has no Callback API server (DESIGN.md §9). VK puts the secret inside the JSON body: the body is read
bounded and parsed, and the secret checked before any other field is used. `confirmation` is answered with
the community's code; any other event is handled before the answer, and only then answered `ok` — VK sends
an event again until it gets `ok` (500: it failed transiently); a repeated `event_id` is handled once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from bots.vk.api import API_ERRORS, VkApi
from bots.vk.pipeline import Pipeline

log = logging.getLogger(__name__)

PATH = "/vk/callback"
"""Where the Callback API posts: set WEBHOOK_BASE_URL + this path as the server address in the community."""
MAX_BODY = 1024 * 1024
"""The largest Callback API body read (VK's events are a few KB; a message with many attachments far less)."""


class CallbackRoute:
    def __init__(self, api: VkApi, pipeline: Pipeline, secret: str, confirmation_code: str = "") -> None:
        self.api = api
        self.pipeline = pipeline
        self.secret = secret
        self.confirmation_code = confirmation_code
        self.closed = False
        self._inflight: set[asyncio.Task[Any]] = set()

    def install(self, http: web.Application, path: str = PATH) -> None:
        http.router.add_post(path, self.handle)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for the events being handled (their answers are still owed to VK)."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=timeout)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.closed:
            return web.Response(status=503, text="stopping")
        # Only a confirmation request may come without the secret (VK asks for the code before the secret
        # is set up); it learns nothing but the code VK itself issued.
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("VK callback: a body of %d bytes refused", request.content_length)
            return web.Response(status=413, text="too large")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            log.warning("VK callback: a body over %d bytes refused", MAX_BODY)
            return web.Response(status=413, text="too large")
        try:
            update = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            log.warning("VK callback: unparsable body refused (%s)", type(exc).__name__)
            return web.Response(status=400, text="not JSON")
        if not isinstance(update, dict):
            log.warning("VK callback: a body that is not an event refused")
            return web.Response(status=400, text="not an event")
        given = update.get("secret")
        secret_ok = not self.secret or (
            isinstance(given, str) and hmac.compare_digest(given.encode(), self.secret.encode())
        )
        if not secret_ok and update.get("type") != "confirmation":
            log.warning("VK callback with a wrong secret refused")
            return web.Response(status=403, text="wrong secret")
        group_id = update.get("group_id")
        ours = self.pipeline.group_id
        if ours is not None and group_id is not None and group_id != ours:
            log.warning("VK callback for community %s, we serve %s", group_id, ours)
            return web.Response(status=403, text="wrong community")
        if update.get("type") == "confirmation":
            try:
                return web.Response(text=await self.confirmation())
            except API_ERRORS as exc:
                log.error("VK: cannot get the confirmation code: %s", exc)
                return web.Response(status=503, text="no confirmation code")
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            if not await self.pipeline.handle_event(update):
                return web.Response(status=500, text="failed; send it again")
        finally:
            if task is not None:
                self._inflight.discard(task)
        return web.Response(text="ok")

    async def confirmation(self) -> str:
        """The code VK wants back on its confirmation request: configured, or asked from the API once."""
        if not self.confirmation_code:
            group_id = await self.resolve_group_id()
            response = await self.api.request("groups.getCallbackConfirmationCode", {"group_id": group_id})
            self.confirmation_code = str(response["response"]["code"])
        return self.confirmation_code

    async def resolve_group_id(self) -> int:
        if self.pipeline.group_id is None:
            response = (await self.api.request("groups.getById", {}))["response"]
            groups = response.get("groups", []) if isinstance(response, dict) else response
            self.pipeline.group_id = int(groups[0]["id"])
        return self.pipeline.group_id
