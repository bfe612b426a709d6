"""A leadership term's end stops its polling channels together (bots/runner.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bots.app import App
from bots.runner import _lead_term
from bots.settings import Settings
from core.engine import Engine
from storage.photos import PhotoStore


class SlowToStop:
    """A polling channel whose stop drains for as long as another channel's stop has not begun: stopped one
    after the other, the term's end would wait on it for ever (Telegram drains up to 30 s, VK polled on)."""

    polls = True

    def __init__(self, name: str, others_stopping: asyncio.Event, stopping: asyncio.Event) -> None:
        self.name = name
        self.others_stopping = others_stopping
        self.stopping = stopping
        self.sender = None

    async def start(self, http: object) -> None:
        return None

    async def stop(self) -> None:
        self.stopping.set()
        await self.others_stopping.wait()


async def test_a_terms_end_stops_its_polling_channels_together_not_one_after_another(
    engine: Engine, photos: PhotoStore, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    app = App(settings=settings, db=engine.db, photos=photos, engine=engine)
    telegram_stopping, vk_stopping = asyncio.Event(), asyncio.Event()
    channels = {
        "telegram": SlowToStop("telegram", vk_stopping, telegram_stopping),
        "vk": SlowToStop("vk", telegram_stopping, vk_stopping),
    }
    term = asyncio.Event()
    leading = asyncio.create_task(_lead_term(app, dict(channels), {}, term))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    term.set()
    await asyncio.wait_for(leading, 5)
    assert telegram_stopping.is_set() and vk_stopping.is_set()
