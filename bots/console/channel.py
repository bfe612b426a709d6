"""The console channel: the bot in a terminal, or driven line by line from a script through stdin.

It is a channel adapter like Telegram's: lines become `Incoming`, replies are printed, and what a terminal
cannot show is degraded here — buttons are numbered and chosen by number or label, a location is typed as
`/loc LAT LON`, a photo is attached as `/photo PATH`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import itertools
import os
import re
import shlex
import signal
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bots.console import CHANNEL
from bots.photos import ingest_photo
from core.dialogs.steps import label_key
from core.engine import Engine
from core.messages import ChatRef, Incoming, Location, Photo, Reply
from core.parsing import parse_id
from core.payload import decode_reply
from core.ports import Database, Photos
from core.texts import t

_DECIMAL = re.compile(r"[-+]?\d{1,3}(?:\.\d{1,12})?")
"""A coordinate as people type it: no exponents, `nan` or `inf` (which `float` would take)."""


class ConsoleChannel:
    def __init__(
        self,
        engine: Engine,
        db: Database,
        photos: Photos,
        *,
        user_id: str,
        name: str = "",
        language: str | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        self.engine = engine
        self.db = db
        self.photos = photos
        self.chat = ChatRef(CHANNEL, user_id, user_id)
        self.name = name
        self.language = language
        self.out = out
        self.buttons: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._session = f"{os.getpid()}-{os.urandom(4).hex()}"

    async def run(self, lines: TextIO = sys.stdin) -> None:
        """Until end of input, Ctrl-C or SIGTERM: each stops the console at once, between two lines."""
        interactive = lines.isatty()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stopping.set)
                handled.append(sig)
        try:
            await self._converse(lines, interactive, stopping)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            if interactive and stopping.is_set():
                self.out.write("\n")  # after the terminal's ^C, so the shell prompt starts on its own line
                self.out.flush()

    async def _converse(self, lines: TextIO, interactive: bool, stopping: asyncio.Event) -> None:
        if self.language:  # an explicit --lang wins over what an earlier session chose; nothing to show
            await self.engine.handle(Incoming(self.chat, self._key(), command="language", args=self.language))
        language, pending = await self.engine.pending(self.chat, menu_when_idle=interactive)
        if interactive:
            city = self.engine.municipality.name(language)
            self.out.write(t(language, "console.greeting", city=city) + "\n\n")
        await self.show_inbox()
        for reply in pending:  # the buttons of the last question, numbered again: "1" works at once
            self.show(reply)
        async for line in read_lines(lines, stopping, prompt="> " if interactive else "", out=self.out):
            await self.send(await self.translate(line.rstrip("\r\n")))
            await self.show_inbox()

    async def send(self, incoming: Incoming) -> None:
        for reply in await self.engine.handle(incoming, progress=self._progress):
            self.show(reply)

    async def _progress(self, notice: Reply) -> None:
        """An interim notice ("checking the address…") while the engine waits on the geocoder."""
        self.show(notice)

    async def show_inbox(self) -> None:
        """What the outbox delivered to this user meanwhile (ticket news, staff cards), with photo files."""
        unread = await self.db.run(
            lambda uow: uow.console_inbox.take_unread(self.chat.chat_id, datetime.now(UTC))
        )
        if not unread:
            return
        language = self.language or self.engine.default_language
        self.out.write(t(language, "console.inbox", count=len(unread)) + "\n\n")
        for payload in unread:
            reply = decode_reply(self.chat, payload)
            files = zip(payload.get("photo_files", []), payload.get("photos", []), strict=False)
            lines = [f"  📎 {path}  sha256={sha}" for path, sha in files]
            self.show(replace(reply, text="\n".join([reply.text, *lines])))

    def _key(self) -> str:
        return f"{self._session}-{next(self._ids)}"

    async def translate(self, line: str) -> Incoming:
        base = Incoming(self.chat, self._key(), self.language, display_name=self.name)
        stripped = line.strip()
        if self.buttons and stripped:
            chosen = self._button_for(stripped)
            if chosen is not None:
                return _with(base, button=chosen)
        if stripped.split(maxsplit=1)[:1] == ["/loc"]:
            return _with(base, **self._location(stripped))
        if stripped.startswith("/photo"):
            return _with(base, **await self._photos(stripped))
        if stripped.startswith("/") and len(stripped) > 1:
            command, _, args = stripped[1:].partition(" ")
            return _with(base, command=command, args=args.strip())
        return _with(base, text=line)

    def _button_for(self, text: str) -> str | None:
        index = parse_id(text, maximum=len(self.buttons))  # "²" or a 30-digit number is just text
        if index is not None:
            return self.buttons[index - 1][1]
        wanted = label_key(text)
        return next((data for label, data in self.buttons if wanted and label_key(label) == wanted), None)

    @staticmethod
    def _location(line: str) -> dict[str, object]:
        """`/loc LAT LON` (a comma between them is fine) → a pin; anything else is `bad_location`, which the
        engine answers with how to write it and asks again (it was once kept as a typed address)."""
        parts = line.replace(",", " ").split()[1:]
        if len(parts) != 2 or not all(_DECIMAL.fullmatch(p) for p in parts):
            return {"unsupported": "bad_location"}
        lat, lon = (float(p) for p in parts)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return {"unsupported": "bad_location"}
        return {"location": Location(lat, lon)}

    async def _photos(self, line: str) -> dict[str, object]:
        try:
            paths = shlex.split(line)[1:]
        except ValueError:
            paths = line.split()[1:]
        if not paths:
            return {"unsupported": "bad_photo"}
        stored: list[Photo] = []
        for raw in paths:
            try:
                data = await asyncio.to_thread(Path(raw).expanduser().read_bytes)
            except OSError as exc:
                print(f"{raw}: {exc.strerror}", file=sys.stderr)
                return {"unsupported": "bad_photo"}
            photo = await ingest_photo(self.db, self.photos, data)
            if isinstance(photo, str):
                return {"unsupported": photo}
            stored.append(photo)
        return {"photos": tuple(stored)}

    def show(self, reply: Reply) -> None:
        lines = [reply.text]
        if reply.photos:
            lines.append(f"🖼  {len(reply.photos)}: " + ", ".join(p.sha256[:12] for p in reply.photos))
        if reply.location is not None:
            lines.append(f"📍 {reply.location.lat:.5f}, {reply.location.lon:.5f}")
        flat = [button for row in reply.buttons for button in row]
        if flat:
            self.buttons = flat
            lines.extend(f"  [{i}] {label}" for i, (label, _data) in enumerate(flat, 1))
        if reply.ask_location:
            lines.append("  (📍 /loc LAT LON)")
        if reply.document is not None:  # a terminal shows the file itself
            lines.append(f"📎 {reply.document.filename}:")
            lines.append(reply.document.content.decode("utf-8", "replace"))
        self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()


def _with(base: Incoming, **fields: object) -> Incoming:
    return replace(base, **fields)  # type: ignore[arg-type]


async def read_lines(
    lines: TextIO, stopping: asyncio.Event, *, prompt: str = "", out: TextIO = sys.stdout
) -> AsyncIterator[str]:
    """Lines of input until its end or until `stopping` is set, whichever comes first.

    A terminal or a pipe is watched by the event loop (no thread blocked in `readline()`, which nothing can
    interrupt and which kept the process alive after Ctrl-C); a file or an in-memory text never blocks."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    try:
        fd = lines.fileno()
        waitable = not stat.S_ISREG(os.fstat(fd).st_mode)
        if waitable:
            loop.add_reader(fd, readable.set)
    except PermissionError:  # a device the loop cannot watch: /dev/null, for a service started without input
        waitable = False
    except (AttributeError, OSError, ValueError):
        fd, waitable = -1, False
    if not waitable:
        for line in lines:
            if stopping.is_set():
                return
            yield line
        return

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while not stopping.is_set():
            if "\n" in buffer:
                line, _, buffer = buffer.partition("\n")
                yield line + "\n"
                continue
            if prompt:
                out.write(prompt)
                out.flush()
            while "\n" not in buffer:
                readable.clear()
                ready = asyncio.ensure_future(readable.wait())
                await asyncio.wait({ready, stop}, return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()
                if stopping.is_set():
                    return
                chunk = os.read(fd, 65536)
                if not chunk:  # end of input (Ctrl-D)
                    rest = buffer + decoder.decode(b"", final=True)
                    if rest:
                        yield rest
                    return
                buffer += decoder.decode(chunk)
    finally:
        loop.remove_reader(fd)
        stop.cancel()
