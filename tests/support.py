"""Transcript helpers: residents talking to the real engine over real storage, checked by text key."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace
from functools import cache

from PIL import Image

from core.engine import Engine
from core.messages import ChatRef, Incoming, Location, Photo, Reply
from core.texts import catalogue
from storage.photos import PhotoStore, register_photo

_keys = itertools.count(1)


@cache
def _pattern(language: str, key: str) -> re.Pattern[str]:
    template = catalogue(language)[key]
    parts = re.split(r"\{[^}]*\}", template)
    return re.compile("(?s)" + ".*?".join(re.escape(p) for p in parts))


def text_is(reply: Reply, key: str, language: str = "ru") -> bool:
    """The reply's text was made from catalogue `key` (with any parameters)."""
    return bool(_pattern(language, key).fullmatch(reply.text))


class Resident:
    def __init__(
        self, engine: Engine, chat_id: str = "100", *, language: str | None = "ru", channel: str = "test"
    ) -> None:
        self.engine = engine
        self.chat = ChatRef(channel, chat_id, chat_id)
        self.language = language
        self.replies: list[Reply] = []

    async def send(self, **fields: object) -> list[Reply]:
        incoming = Incoming(self.chat, f"k{next(_keys)}", self.language)
        self.replies = await self.engine.handle(replace(incoming, **fields))  # type: ignore[arg-type]
        return self.replies

    async def say(self, text: str) -> list[Reply]:
        return await self.send(text=text)

    async def command(self, command: str, args: str = "") -> list[Reply]:
        return await self.send(command=command, args=args)

    async def pin(self, lat: float, lon: float) -> list[Reply]:
        return await self.send(location=Location(lat, lon))

    async def photos(self, *shas: str) -> list[Reply]:
        return await self.send(photos=tuple(Photo(s) for s in shas))

    def buttons(self) -> list[tuple[str, str]]:
        return [b for reply in self.replies for row in reply.buttons for b in row]

    async def press(self, data_or_label: str) -> list[Reply]:
        """Press a button shown in the last replies, by its data or its label (a test typo fails loudly)."""
        for label, data in self.buttons():
            if data_or_label in (label, data):
                return await self.send(button=data)
        raise AssertionError(f"no button {data_or_label!r} among {self.buttons()}")

    def expect(self, *keys: str) -> None:
        """The last replies are exactly these catalogue keys, in order."""
        lang = self.language or "ru"
        got = [r.text[:80] for r in self.replies]
        assert len(self.replies) == len(keys), f"expected {keys}, got {got}"
        for reply, key in zip(self.replies, keys, strict=True):
            assert text_is(reply, key, lang), f"expected {key!r}, got {reply.text[:200]!r}"


def jpeg_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


async def stored_photo(
    engine: Engine, photos: PhotoStore, color: tuple[int, int, int] = (200, 30, 30)
) -> str:
    """A real photo in the store and registered in the database, as an adapter would leave it."""
    stored = photos.store(jpeg_bytes(color))
    await engine.db.run(lambda store: register_photo(store.conn, stored))
    return stored.sha256
