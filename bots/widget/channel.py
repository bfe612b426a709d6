"""The widget channel: what `otklik run` starts (its sender, for the outbox) and what the HTTP routes
(web/widget/) call to pass a resident's action through the engine — one action at a time per resident, as
the messenger pipelines do, with the same failure rules (bots/failures.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from aiohttp import web

from bots.failures import is_transient
from bots.photos import ingest_photo
from bots.widget import CHANNEL
from bots.widget.live import LIVE
from bots.widget.sender import WidgetSender
from core.messages import NOT_KEPT, ChatRef, Incoming, Photo, Reply
from core.texts import normalise_language, t

if TYPE_CHECKING:
    from bots.app import App

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """A transient failure (database, network): the browser may send the same action again (same id)."""


def create_channel(app: App) -> WidgetChannel | None:
    """The `channel_factories()` entry: None unless WIDGET_ORIGINS is set."""
    if not app.settings.widget_origins.strip():
        return None
    return WidgetChannel(app)


class WidgetChannel:
    """For the runner: the sender the delivery worker uses; the routes are installed by web/widget."""

    name = CHANNEL
    polls = False
    """Its "updates" arrive on our own HTTP routes, served by every web worker."""

    def __init__(self, app: App) -> None:
        self.sender = WidgetSender(app.db)

    async def start(self, http: web.Application | None) -> None:
        log.info("widget channel on: its routes are on the shared HTTP server")

    async def stop(self) -> None:
        LIVE.wake_all()


def chat_of(chat_id: str) -> ChatRef:
    return ChatRef(CHANNEL, chat_id, chat_id)


class Conversations:
    """Residents' actions → the engine → replies, one at a time per resident."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.engine = app.engine
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def _turn(self, chat_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(chat_id, (asyncio.Lock(), 0))
        self._locks[chat_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[chat_id]
            if users <= 1:
                del self._locks[chat_id]
            else:
                self._locks[chat_id] = (lock, users - 1)

    async def open(self, chat_id: str, language: str | None) -> list[Reply]:
        """What a panel shows when it opens: a new resident is greeted in the page's language; a returning
        one is asked their pending question again (their buttons work at once)."""
        chat = chat_of(chat_id)
        async with self._turn(chat_id):
            known = await self.app.db.run(lambda uow: uow.dialogs.load(chat)) is not None
            if not known:
                return await self._handle(Incoming(chat, "", language, command="start"))
            _language, pending = await self.engine.pending(chat, menu_when_idle=True)
            return pending

    async def act(self, incoming: Incoming) -> list[Reply]:
        async with self._turn(incoming.chat.chat_id):
            return await self._handle(incoming)

    async def upload(
        self, incoming: Incoming, files: Sequence[bytes | str], caption: str | None
    ) -> list[Reply]:
        """Photos (or, for a file already refused by its size, the refusal's kind) as one update. They are
        stored only when the resident's current step takes photos, as in the messengers."""
        async with self._turn(incoming.chat.chat_id):
            if not await self.engine.wants_photos(incoming.chat):
                photos: list[Photo] = [NOT_KEPT] * len(files)
                problem = None
            else:
                photos, problem = [], None
                for item in files:
                    got = item if isinstance(item, str) else await self._ingest(item)
                    if isinstance(got, Photo):
                        photos.append(got)
                    else:
                        problem = problem or got
            fields: dict[str, object] = {"photos": tuple(photos), "text": caption}
            if not photos:
                fields = {"unsupported": problem or "bad_photo"}
            return await self._handle(replace(incoming, **fields))  # type: ignore[arg-type]

    async def relay(self, incoming: Incoming) -> None:
        """An update of a messenger resident that came over our HTTP API (the map as a Telegram Web App or a
        VK Mini App): its answers go to their chat through the outbox, as any message to another channel."""
        async with self._turn(incoming.chat.key):
            replies = await self._handle(incoming)
            now = self.engine.clock()
            chat = incoming.chat
            await self.app.db.run(
                lambda uow: [uow.outbox.enqueue(replace(reply, chat=chat), now) for reply in replies]
            )

    async def _ingest(self, data: bytes) -> Photo | str:
        return await ingest_photo(self.app.db, self.app.photos, data)

    async def _handle(self, incoming: Incoming) -> list[Reply]:
        try:
            return await self.engine.handle(incoming)
        except Exception as exc:
            if is_transient(exc):
                log.warning("widget action failed (%s: %s); the browser may retry", type(exc).__name__, exc)
                raise Unavailable from exc
            log.exception("widget action failed; recorded as handled, as it would fail again")
            try:
                await self.engine.give_up(incoming)
            except Exception as again:
                log.warning("could not record the failed widget action: %s", again)
            language = normalise_language(incoming.language, self.engine.default_language)
            return [Reply(text=t(language, "channel.error"))]
