"""From a VK event to the engine and back, with the guarantees vkbottle does not give by itself.

- A failed event is classified (bots/failures.py): a transient failure is not confirmed (no `ok`; a long-poll
  batch is tried again and its `ts` not saved), anything else is logged once with its traceback, the user is
  told once, and the event is confirmed and recorded as handled.
- A repeated event has no side effects of ours: a repeat of one in hand joins it; before answering a button
  press, taking a keyboard off or downloading photos, the engine is asked whether the event was handled
  already (`Engine.seen`).
- Photos are downloaded only when the chat's current step takes photos (`Engine.wants_photos`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any

import aiohttp
from vkbottle.http import AiohttpClient

from bots.failures import is_transient
from bots.photos import ingest_photo
from bots.vk.api import API_ERRORS, NETWORK_ERRORS, VkApi
from bots.vk.render import CURRENT_CLIENT
from bots.vk.sender import VkSender
from bots.vk.translate import (
    CHANNEL,
    MESSAGE_EVENT,
    MESSAGE_NEW,
    ClientCaps,
    event_key,
    peer_of,
    translate_event,
    translate_message,
)
from bots.vk.translate import (
    language as client_language,
)
from core.engine import Engine
from core.messages import NOT_KEPT, ChatRef, Incoming, Photo, Reply
from core.personal_data import pseudonym
from core.ports import Database, Photos
from core.texts import normalise_language, t

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 3
NAME_CACHE = 1024


class PhotoTooLarge(Exception):
    pass


@dataclass(eq=False)
class Pipeline:
    api: VkApi
    engine: Engine
    db: Database
    photos: Photos
    sender: VkSender
    http_client: AiohttpClient
    _: KW_ONLY
    group_id: int | None = None
    """The community served: its delivery ids are unique only within it (learned from VK when unset)."""
    _active: dict[str, asyncio.Future[None]] = field(default_factory=dict, init=False, repr=False)
    _names: OrderedDict[str, str] = field(default_factory=OrderedDict, init=False, repr=False)

    async def handle_event(self, update: dict[str, Any]) -> bool:
        """Handle one event; True when it may be confirmed — handled, or failed in a way that would fail
        again (then logged with its traceback, the user told once, the event recorded as handled); False when
        it failed transiently and VK must send it again."""
        try:
            await self.handle_update(update)
            return True
        except Exception as exc:
            if is_transient(exc):
                log.warning("VK: an event failed (%s: %s); it will come again", type(exc).__name__, exc)
                return False
            log.exception("VK: an event failed; confirmed, as it would fail again")
            await self._give_up(update)
            return True

    async def _give_up(self, update: dict[str, Any]) -> None:
        peer = peer_of(update)
        if peer is None:
            return
        chat = ChatRef(CHANNEL, str(peer))
        key = event_key(update, self.group_id)
        obj = update.get("object") or {}
        language = normalise_language(client_language(obj.get("client_info")), self.engine.default_language)
        try:
            await self.engine.give_up(Incoming(chat, key, bot=self._bot(update)))
            await self.sender.reply(peer, [Reply(text=t(language, "channel.error"))], f"{key}:error")
        except Exception as exc:
            log.warning("VK: could not tell %s about the failure: %s", pseudonym(peer), exc)

    # --- one event -----------------------------------------------------------------------------------------
    def _bot(self, update: dict[str, Any]) -> str:
        """The community the event is for: its delivery ids are unique only within it."""
        group_id = update.get("group_id")
        return str(group_id if isinstance(group_id, int) else self.group_id or "")

    async def handle_update(self, update: dict[str, Any]) -> None:
        """One event. A repeat of one in hand joins it; a repeat of one handled before (VK's redelivery, a
        long-poll batch fetched again after a crash) goes to the engine — which re-asks the current question
        at most — without answering the press, editing the keyboard or downloading anything again."""
        kind = update.get("type")
        peer = peer_of(update)
        if kind not in (MESSAGE_NEW, MESSAGE_EVENT) or peer is None:
            return
        bot, key = self._bot(update), event_key(update, self.group_id)
        if (running := self._active.get(key)) is not None:
            try:
                await asyncio.shield(running)
            except Exception as exc:  # the first delivery apologised for a failure that would repeat
                if is_transient(exc):
                    raise
            return
        done = self._active[key] = asyncio.get_running_loop().create_future()
        try:
            await self._handle_new(update, kind, ChatRef(CHANNEL, str(peer)), bot, key)
        except BaseException as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: a repeat that joined re-raises it, none is fine too
            raise
        else:
            done.set_result(None)
        finally:
            del self._active[key]

    async def _handle_new(self, update: dict[str, Any], kind: str, chat: ChatRef, bot: str, key: str) -> None:
        """`Engine.seen` is asked only before a side effect of ours (a plain text message has none: the
        engine's own dedupe is enough), so the common update costs no extra query."""
        seen: bool | None = None
        wants: bool | None = None

        async def repeated() -> bool:
            nonlocal seen
            if seen is None:
                seen = await self.engine.seen(chat, bot, key)
            return seen

        async def fetch(url: str) -> Photo | str:
            nonlocal wants
            if wants is None:
                wants = not await repeated() and await self.engine.wants_photos(chat)
            return await self.fetch_photo(url) if wants else NOT_KEPT

        caps: ClientCaps = CURRENT_CLIENT
        incoming: Incoming
        if kind == MESSAGE_NEW:
            incoming, caps = await translate_message(update, self.group_id, fetch)
            if incoming.command is not None and not await repeated():  # `/staff CODE` records who joined
                incoming = replace(incoming, display_name=await self.user_name(incoming.chat.user_id))
        else:
            event = update.get("object") or {}
            if not await repeated():
                await self.sender.acknowledge(event)
            incoming = translate_event(update, self.group_id)
        peer = int(incoming.chat.chat_id)

        async def progress(notice: Reply) -> None:  # "checking the address…" while the geocoder is slow
            await self.sender.reply(peer, [notice], f"{incoming.event_key}:wait", caps)

        replies = await self.engine.handle(replace(incoming, bot=bot), progress=progress)
        if replies:
            # random_id derives from the event. A re-ask (Engine._repeated) known as such gets ids of its own,
            # so VK does not drop it as a repeat of the original answer's first message, which may never have
            # been sent; otherwise a re-ask after an answer that did go out is dropped by VK: no spam.
            again = ":again" if seen else ""
            await self.sender.reply(peer, replies, incoming.event_key + again, caps)

    async def user_name(self, user_id: str) -> str:
        """ "First Last" of a VK user (users.get), remembered for a while; "" when VK does not say."""
        if user_id in self._names:
            self._names.move_to_end(user_id)
            return self._names[user_id]
        if not user_id.isdigit():  # a community or an unknown sender
            return ""
        try:
            response = await self.api.request("users.get", {"user_ids": user_id})
            person = (response.get("response") or [{}])[0]
            name = " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p)
        except (*API_ERRORS, LookupError, AttributeError) as exc:
            log.info("VK users.get %s failed: %s", pseudonym(user_id), exc)
            return ""
        self._names[user_id] = name
        while len(self._names) > NAME_CACHE:
            self._names.popitem(last=False)
        return name

    async def fetch_photo(self, url: str) -> Photo | str:
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                data = await self._download(url)
            except PhotoTooLarge:
                return "photo_too_large"
            except aiohttp.ClientResponseError as exc:
                log.warning("VK photo download refused (%s): %s", exc.status, url)
                return "bad_photo"
            except NETWORK_ERRORS as exc:
                if attempt + 1 == DOWNLOAD_ATTEMPTS:
                    log.warning("VK photo download failed: %s", exc or type(exc).__name__)
                    return "bad_photo"
                await asyncio.sleep(self.api.delay(attempt))
            else:
                return await ingest_photo(self.db, self.photos, data)
        return "bad_photo"

    async def _download(self, url: str) -> bytes:
        limit = self.photos.max_bytes
        async with self.http_client.request(url, "GET") as response:
            response.raise_for_status()
            if response.content_length is not None and response.content_length > limit:
                raise PhotoTooLarge(url)
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise PhotoTooLarge(url)
            return bytes(data)
