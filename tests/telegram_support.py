"""The Telegram test harness: one bot (a channel over aiogram or python-telegram-bot) against the fake Bot
API, in polling or webhook mode. A test module makes its `bot` fixture with `telegram_bot(...)`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import bots.telegram.aiogram_import  # noqa: F401  (first: aiogram imported as `otklik run` imports it)

# isort: split
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp import web

from bots.telegram import make_api
from bots.telegram.channel import Options, TelegramChannel
from bots.telegram.sender import Limits
from bots.telegram.webhook import PATH as WEBHOOK_PATH
from core.engine import Engine
from core.messages import ChatRef
from storage.database import Database
from storage.photos import PhotoStore
from tests.fakes import serve
from tests.fakes.telegram_api import TOKEN, FakeTelegram, TelegramUser

CENTRE = (52.2870, 104.2810)  # ул. Ленина, Irkutsk
SECRET = "s3cret-Token_for-tests"
PUBLIC_URL = "https://bot.example.org"
FAST = Options(
    poll_timeout=5,
    busy_interval=0.01,
    album_wait=0.25,
    album_limit=2.0,
    drain_timeout=5.0,
    limits=Limits(chat_rate=1000, chat_burst=100, bot_rate=1000, bot_burst=100, backoff=0.01),
)


class Harness:
    """One bot (a channel over one library) against the fake, in polling or webhook mode."""

    def __init__(self, fake: FakeTelegram, engine: Engine, photos: PhotoStore, library: str) -> None:
        self.fake = fake
        self.engine = engine
        self.db: Database = engine.db  # type: ignore[assignment]
        self.photos = photos
        self.library = library
        self.channel: TelegramChannel | None = None
        self._runner: web.AppRunner | None = None

    async def start(
        self, mode: str = "polling", options: Options = FAST, map_url: str = ""
    ) -> TelegramChannel:
        api = make_api(self.library, TOKEN, self.fake.url)
        channel = TelegramChannel(
            api,
            self.engine,
            self.db,
            self.photos,
            webhook_url=PUBLIC_URL if mode == "webhook" else "",
            webhook_secret=SECRET,
            options=options,
            map_url=map_url,
        )
        http = web.Application() if mode == "webhook" else None
        await channel.start(http)
        if http is not None:
            self._runner, local = await serve(http)
            self.fake.webhook_target = local + WEBHOOK_PATH
        self.channel = channel
        return channel

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.stop()
            self.channel = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def deliver(self, updates: list[dict[str, Any]]) -> None:
        assert self.channel is not None
        if self.channel.mode == "polling":
            self.fake.push(*updates)
            last = max(u["update_id"] for u in updates)
            await self.fake.wait_for(lambda: self.fake.confirmed > last, what=f"update {last} handled")
        else:  # as Telegram does with an album: the parts at once, each on its own connection
            statuses = await asyncio.gather(*(self.fake.post_webhook(u) for u in updates))
            assert statuses == [200] * len(updates)

    def user(self, user_id: int = 5001, language: str = "ru") -> TelegramUser:
        return TelegramUser(self.fake, self.deliver, user_id, language=language)


LIBRARIES = ("aiogram", "ptb")


async def _close_without_tls_pause(self: AiohttpSession) -> None:
    """aiogram waits 250 ms after closing its session for TLS connections to shut down; the fake speaks
    plain HTTP on 127.0.0.1, so the pause only slows every stop and restart of an aiogram bot."""
    if self._session is not None and not self._session.closed:
        await self._session.close()


@contextlib.asynccontextmanager
async def telegram_bot(engine: Engine, photos: PhotoStore, library: str) -> AsyncIterator[Harness]:
    """A fake Bot API and a harness for one library; everything stopped on the way out."""
    fake = await FakeTelegram().start()
    harness = Harness(fake, engine, photos, library)
    try:
        with mock.patch.object(AiohttpSession, "close", _close_without_tls_pause):
            yield harness
            await harness.stop()
    finally:
        await harness.stop()
        await fake.stop()


def user_chat(user: TelegramUser) -> ChatRef:
    return ChatRef("telegram", str(user.user_id), str(user.user_id))


async def ticket(engine: Engine, number: int = 1) -> Any:
    return await engine.db.run(lambda store: store.tickets.get(number))


async def open_report(user: TelegramUser, *, map_offered: bool = False) -> None:
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    await user.press("menu:new")
    await user.expect("report.category.ask")
    await user.press("cat:roads")
    await user.expect("report.subcategory.ask")
    await user.press(user.replies[-1].buttons()[0][1])
    await user.expect("report.location.ask", *(["messenger_map.prompt"] if map_offered else []))
