"""Transcript helpers: residents talking to the real engine over real storage, checked by text key."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace
from datetime import datetime, timedelta

from PIL import Image

from core.engine import Engine
from core.messages import ChatRef, Incoming, Location, Photo, Reply
from core.texts import catalogue
from storage.photos import PhotoStore, register_photo
from tests.users import User, text_matches

_keys = itertools.count(1)


def text_is(reply: Reply, key: str, language: str = "ru") -> bool:
    """The reply's text was made from catalogue `key` (with any parameters)."""
    return text_matches(reply.text, key, language)


class Resident(User[Reply]):
    """A resident on the engine itself: each action is one `Incoming`, its answer the engine's replies."""

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

    async def tap(self, message: Reply, data: str) -> list[Reply]:
        return await self.send(button=data)

    def text_of(self, message: Reply) -> str:
        return message.text

    def buttons_of(self, message: Reply) -> list[tuple[str, str]]:
        return [button for row in message.buttons for button in row]


def jpeg_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


async def stored_photo(
    engine: Engine, photos: PhotoStore, color: tuple[int, int, int] = (200, 30, 30)
) -> str:
    """A real photo in the store and registered in the database, as an adapter would leave it."""
    stored = photos.store(jpeg_bytes(color))
    if hasattr(engine.db, "take_outbox"):  # the in-memory unit of work: no photo table to register in
        return stored.sha256
    await engine.db.run(lambda store: register_photo(store.conn, stored))
    return stored.sha256


# --- the staff side: a mutable clock, staff members, reports in one call, the outbox -------------
class Clock:
    """A clock the test moves: `engine.clock = clock`; time-based jobs take `clock()` as `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


async def invite(engine: Engine, organisation: str, role: str | None = None) -> str:
    """A fresh one-time code, as `otklik staff invite` makes it."""
    from core.staffing import create_invite

    made = await engine.db.run(
        lambda store: create_invite(store, engine.municipality, organisation, role, engine.clock())
    )
    return made.code


class Staff(Resident):
    """A staff member or dispatcher on a channel; `join` binds them with an invite code."""

    def __init__(
        self,
        engine: Engine,
        chat_id: str = "s1",
        *,
        name: str = "Иван Петров",
        language: str | None = "ru",
        channel: str = "test",
    ) -> None:
        super().__init__(engine, chat_id, language=language, channel=channel)
        self.name = name

    async def send(self, **fields: object) -> list[Reply]:
        return await super().send(display_name=self.name, **fields)

    async def join(self, organisation: str, role: str | None = None) -> None:
        code = await invite(self.engine, organisation, role)
        await self.command("staff", code)
        await self.expect("staff.joined_dispatcher" if role == "dispatcher" else "staff.joined")


async def submit_report(
    r: Resident,
    category: str = "roads",
    subcategory: str = "roads.pothole",
    point: tuple[float, float] = (52.2870, 104.2810),
    description: str = "Глубокая яма на проезжей части у остановки.",
    photos: tuple[str, ...] = (),
) -> int:
    """A resident files a report through the real dialog; returns the ticket number."""
    await r.command("new")
    await r.press(f"cat:{category}")
    await r.press(f"sub:{subcategory}")
    await r.pin(*point)
    if any(data == "nearby:different" for _label, data in r.buttons()):
        await r.press("nearby:different")
    await r.say(description)
    for sha in photos:
        await r.photos(sha)
    await r.press("photos:done")
    await r.press("review:submit")
    match = re.search(r"(?:№|No\.) (\d+)", r.replies[0].text)
    assert match, r.replies[0].text
    return int(match.group(1))


async def delivered(engine: Engine, who: Resident) -> list[Reply]:
    """Outbox messages waiting for `who`, oldest first; they are marked sent, so the next call shows only
    what came after (what a channel would have delivered in the meantime)."""
    from sqlalchemy import select, update

    if hasattr(engine.db, "take_outbox"):  # the in-memory unit of work
        return engine.db.take_outbox(who.chat)  # type: ignore[no-any-return]
    from storage.outbox import decode_reply
    from storage.tables import outbox as table

    def take(store: object) -> list[Reply]:
        conn = store.conn  # type: ignore[attr-defined]
        where = (
            table.c.channel == who.chat.channel,
            table.c.chat_id == who.chat.chat_id,
            table.c.status == "pending",
        )
        rows = conn.execute(select(table.c.id, table.c.payload).where(*where).order_by(table.c.id)).all()
        if rows:
            conn.execute(update(table).where(table.c.id.in_([r.id for r in rows])).values(status="sent"))
        return [decode_reply(who.chat, r.payload) for r in rows]

    return await engine.db.run(take)


def keys_of(replies: list[Reply], language: str = "ru") -> list[str]:
    """Which catalogue keys (among the staff side's and the menu's) these replies were made from."""
    prefixes = ("staff.", "notify.", "dispatch.", "verdict.", "menu.", "button.", "report.", "cancel.")
    found = []
    for reply in replies:
        keys = [k for k in catalogue(language) if k.startswith(prefixes) and text_is(reply, k, language)]
        found.append(keys[0] if keys else f"?{reply.text[:60]}")
    return found
