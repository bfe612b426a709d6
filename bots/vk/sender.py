"""Everything the VK channel sends goes through here: replies, button acknowledgements and outbox messages
(through the rate-limited `VkApi`, bots/vk/api.py); photos uploaded once per sha256.

A retried `messages.send` is not delivered twice: VK ignores a second message with the same `random_id`, and
ours are derived from what is sent — the outbox row id, or the incoming event's key — not drawn at random.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from vkbottle import PhotoMessageUploader, VKAPIError

from bots.vk.api import (
    API_ERRORS,
    FLOOD_CONTROL,
    FLOOD_RETRY_AFTER,
    NETWORK_ERRORS,
    PERMANENT_CODES,
    RATE,
    TOO_MANY_REQUESTS,
    BadResponse,
    RequestWindow,
    VkApi,
)
from bots.vk.render import CURRENT_CLIENT, MiniApp, VkMessage, render
from bots.vk.translate import CHANNEL, ClientCaps
from core.messages import Reply
from core.personal_data import pseudonym
from core.ports import Database, DeliveryError, OutgoingMessage, Pace, PhotoNotFound, Photos, numeric_chat_id

log = logging.getLogger(__name__)

RANDOM_ID_SPACE = 2**31 - 1  # VK's random_id is an int32, unique per community over its whole history
PARTS_PER_MESSAGE = 64


def outbox_random_id(row_id: int, part: int) -> int:
    """Outbox rows take the negative half, in sequence, so two rows never share an id."""
    return -(1 + (row_id * PARTS_PER_MESSAGE + part) % RANDOM_ID_SPACE)


def reply_random_id(event_key: str, part: int) -> int:
    """Replies take the positive half, hashed from the event they answer."""
    digest = hashlib.blake2b(f"{event_key}/{part}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % (RANDOM_ID_SPACE - 1)


NO_KEYBOARD = json.dumps({"inline": True, "buttons": []})


def edit_params(message: dict[str, Any]) -> dict[str, Any]:
    """What messages.edit needs to keep a message as it is: its text, attachments and place."""
    params: dict[str, Any] = {
        "message": message.get("text") or "",
        "keep_forward_messages": 1,
        "keep_snippets": 1,
    }
    attachments = []
    for attachment in message.get("attachments") or ():
        kind = attachment.get("type")
        item = attachment.get(kind) or {}
        if "owner_id" in item and "id" in item:
            key = f"_{item['access_key']}" if item.get("access_key") else ""
            attachments.append(f"{kind}{item['owner_id']}_{item['id']}{key}")
    if attachments:
        params["attachment"] = ",".join(attachments)
    coordinates = (message.get("geo") or {}).get("coordinates") or {}
    if "latitude" in coordinates and "longitude" in coordinates:
        params["lat"], params["long"] = coordinates["latitude"], coordinates["longitude"]
    return params


class SharedWindow(RequestWindow):
    """VK's per-community rate (VK_RATE) for every API call, shared by every worker on PostgreSQL: this
    process's window first (it also holds every caller back after error 6), then a slot booked in the shared
    row, so N workers together still make at most `rate` requests a second."""

    def __init__(self, shared: Pace, rate: int = RATE) -> None:
        super().__init__(rate)
        self.shared = shared

    async def acquire(self) -> None:
        await super().acquire()
        try:
            await self.shared.wait()
        except Exception:  # the row is in the database: while it is unreachable, answers still go
            log.warning("shared VK pace unavailable; pacing this worker alone", exc_info=True)


@dataclass(eq=False)
class VkSender:
    """Sends replies and outbox messages (`ChannelSender` for the outbox worker)."""

    channel = CHANNEL
    max_per_second = float(RATE)
    """Delivery's pace for the community (VK's 20 a second, also when VK_RATE is raised: notifications are
    bulk); every API call also goes through the API's own limiter, at VK_RATE."""
    chat_interval = 1.0
    """Seconds between two outbox messages to one chat."""

    api: VkApi
    db: Database
    photos: Photos
    _: KW_ONLY
    upload_retries: int = 3
    map_app: MiniApp | None = None
    """The Mini App the place step offers to pick the place on the map (VK_APP_ID); None: no button."""
    _upload_locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)

    # --- the ChannelSender port ---------------------------------------------------------------------------
    async def deliver(self, message: OutgoingMessage) -> None:
        reply = message.reply
        peer_id = numeric_chat_id(message, "VK peer id")
        try:
            await self.send(peer_id, [reply], lambda part: outbox_random_id(message.id, part), strict=True)
        except PhotoNotFound as exc:
            raise DeliveryError(f"photo {exc.args[0]} is not in the photo store", permanent=True) from exc
        except VKAPIError as exc:
            if exc.code in PERMANENT_CODES:
                raise DeliveryError(f"VK error {exc.code}: {exc}", permanent=True) from exc
            retry_after = {TOO_MANY_REQUESTS: 1.0, FLOOD_CONTROL: FLOOD_RETRY_AFTER}.get(exc.code)
            raise DeliveryError(f"VK error {exc.code}: {exc}", retry_after=retry_after) from exc
        except (*NETWORK_ERRORS, BadResponse) as exc:
            raise DeliveryError(f"VK unreachable: {exc or type(exc).__name__}") from exc

    # --- sending --------------------------------------------------------------------------------------------
    async def reply(
        self, peer_id: int, replies: Sequence[Reply], event_key: str, caps: ClientCaps = CURRENT_CLIENT
    ) -> None:
        await self.send(peer_id, replies, lambda part: reply_random_id(event_key, part), caps)

    async def acknowledge(self, event: dict[str, Any]) -> None:
        """A button press seen to: its spinner stopped and the keyboard taken off its message."""
        await self._answer_event(event)
        await self._remove_keyboard(event)

    async def _answer_event(self, event: dict[str, Any]) -> None:
        """Stops the button's spinner. A stale or foreign event may be refused by VK: that is no reason not
        to handle the press."""
        params = {key: event.get(key) for key in ("event_id", "user_id", "peer_id")}
        try:
            await self.api.request("messages.sendMessageEventAnswer", params)
        except API_ERRORS as exc:
            log.info("VK: messages.sendMessageEventAnswer failed: %s", exc)

    async def _remove_keyboard(self, event: dict[str, Any]) -> None:
        """Takes the keyboard off the message whose button was pressed, so it cannot be pressed again (as in
        Telegram). messages.edit wants the text and attachments again: they are read back first. Best
        effort: a message VK no longer finds is no reason not to handle the press."""
        peer_id, cmid = event.get("peer_id"), event.get("conversation_message_id")
        if not peer_id or not cmid:
            return
        try:
            found = await self.api.request(
                "messages.getByConversationMessageId", {"peer_id": peer_id, "conversation_message_ids": cmid}
            )
            items = found["response"].get("items") or []
            if not items or not items[0].get("keyboard"):
                return
            params = edit_params(items[0])
            params.update(peer_id=peer_id, conversation_message_id=cmid, keyboard=NO_KEYBOARD)
            await self.api.request("messages.edit", params)
        except (*API_ERRORS, LookupError, AttributeError, TypeError) as exc:
            log.info(
                "VK: could not take the keyboard off message %s in %s: %s", cmid, pseudonym(peer_id), exc
            )

    async def send(
        self,
        peer_id: int,
        replies: Sequence[Reply],
        random_id: Callable[[int], int],
        caps: ClientCaps = CURRENT_CLIENT,
        *,
        strict: bool = False,
    ) -> None:
        """Each reply as its messages, in order. `strict`: a photo missing from the store fails the send
        (outbox: the row is dead, not silently shorter); otherwise the message goes without it."""
        part = 0
        for reply in replies:
            for message in render(reply, caps, self.map_app):
                await self.send_one(peer_id, message, random_id(part), strict=strict)
                part += 1

    async def send_one(
        self, peer_id: int, message: VkMessage, random_id: int, *, strict: bool = False
    ) -> int:
        params: dict[str, Any] = {"peer_id": peer_id, "random_id": random_id, "message": message.text}
        if message.keyboard is not None:
            params["keyboard"] = message.keyboard
        attachments: list[str] = []
        for sha256 in message.photos:
            try:
                attachments.append(await self.attachment(sha256))
            except PhotoNotFound:
                if strict:
                    raise
                log.error("photo %s is not in the photo store; sent without it", sha256)
        if attachments:
            params["attachment"] = ",".join(attachments)
        if message.lat is not None and message.long is not None:
            params["lat"], params["long"] = message.lat, message.long
        if not (params["message"] or "attachment" in params or "lat" in params):
            return 0
        response = await self.api.request("messages.send", params)
        return int(response["response"])

    async def attachment(self, sha256: str) -> str:
        """`photo{owner}_{id}_{key}` for a stored photo, uploaded on first use (PhotoNotFound if it is not
        in the store)."""
        cached = await self.db.run(lambda uow: uow.channel_photos.get(CHANNEL, sha256))
        if cached:
            return cached
        lock = self._upload_locks.setdefault(sha256, asyncio.Lock())
        try:
            async with lock:  # one upload per photo even when several messages carry it at once
                cached = await self.db.run(lambda uow: uow.channel_photos.get(CHANNEL, sha256))
                if cached:
                    return cached
                data = await asyncio.to_thread(self.photos.read, sha256)
                attachment = await self._upload(data)
                try:
                    await self.db.run(lambda uow: uow.channel_photos.remember(CHANNEL, sha256, attachment))
                except Exception:  # only a cache: the photo is uploaded; a later message uploads it again
                    log.warning("could not record the VK attachment of photo %s", sha256, exc_info=True)
                return attachment
        finally:
            if not lock.locked():
                self._upload_locks.pop(sha256, None)

    async def _upload(self, data: bytes) -> str:
        """photos.getMessagesUploadServer → POST the file as `photo` → photos.saveMessagesPhoto."""
        uploader = PhotoMessageUploader(self.api)
        attempt = 0
        while True:
            try:
                return await uploader.upload(data)
            except (
                *NETWORK_ERRORS,
                ValueError,
            ) as exc:  # ValueError: the upload server's answer was not JSON
                if attempt >= self.upload_retries:
                    raise
                delay = self.api.delay(attempt)
                log.info("VK photo upload failed (%s); retrying in %.2fs", exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
