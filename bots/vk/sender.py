"""Talking to the VK API: vkbottle's `API` with VK's 20 requests/s, back-off on error 6 ("too many requests
per second") and retries of network errors (DESIGN.md §6, §9 — vkbottle has neither); the replies and outbox
messages sent through it; photos uploaded once per sha256.

A retried `messages.send` is not delivered twice: VK ignores a second message with the same `random_id`, and
ours are derived from what is sent — the outbox row id, or the incoming event's key — not drawn at random.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from vkbottle import API, PhotoMessageUploader, VKAPIError
from vkbottle.api.request_rescheduler import ABCRequestRescheduler
from vkbottle.http import AiohttpClient

from bots.vk.render import CURRENT_CLIENT, VkMessage, render
from bots.vk.translate import CHANNEL, ClientCaps
from core.messages import Reply
from core.ports import Database, DeliveryError, OutgoingMessage, PhotoNotFound, Photos

log = logging.getLogger(__name__)

RATE = 20  # requests per second for a community token
TOO_MANY_REQUESTS = 6
FLOOD_CONTROL = 9  # too many similar actions: not worth retrying at once
FLOOD_RETRY_AFTER = 10.0
TRANSIENT_CODES = frozenset({1, TOO_MANY_REQUESTS, 10})  # unknown error, too many requests, internal error
# Never going to work for this recipient: access denied, blacklisted, no permission to write, privacy,
# no access to the chat, contact not found, chat disabled/unsupported; and our own malformed messages.
PERMANENT_CODES = frozenset({7, 900, 901, 902, 911, 914, 917, 936, 945, 946})
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)

RANDOM_ID_SPACE = 2**31 - 1  # VK's random_id is an int32, unique per community over its whole history
PARTS_PER_MESSAGE = 64


def outbox_random_id(row_id: int, part: int) -> int:
    """Outbox rows take the negative half, in sequence, so two rows never share an id."""
    return -(1 + (row_id * PARTS_PER_MESSAGE + part) % RANDOM_ID_SPACE)


def reply_random_id(event_key: str, part: int) -> int:
    """Replies take the positive half, hashed from the event they answer."""
    digest = hashlib.blake2b(f"{event_key}/{part}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % (RANDOM_ID_SPACE - 1)


class BadResponse(Exception):
    """VK answered with something that is not JSON (a proxy's error page, a cut connection)."""


class RequestWindow:
    """At most `rate` acquisitions in any `per` seconds, first come first served; `pause` holds everyone."""

    def __init__(
        self,
        rate: int = RATE,
        per: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.per = per
        self.clock = clock
        self._times: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                while self._times and now - self._times[0] >= self.per:
                    self._times.popleft()
                wait = self._paused_until - now
                if len(self._times) >= self.rate:
                    wait = max(wait, self.per - (now - self._times[0]))
                if wait <= 0:
                    self._times.append(now)
                    return
                await asyncio.sleep(wait)


class _RaiseRescheduler(ABCRequestRescheduler):
    """vkbottle re-sends a non-JSON answer after 5 s, 10 s, …; we raise and let `VkApi` decide."""

    async def reschedule(self, ctx_api: Any, method: str, data: dict[str, Any], recent_response: Any) -> Any:
        raise BadResponse(f"{method}: not a JSON answer: {str(recent_response)[:200]!r}")


class VkApi(API):
    """vkbottle's API at `api_url`, rate-limited, retrying what is worth retrying."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        http_client: AiohttpClient,
        limiter: RequestWindow | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        super().__init__(token, http_client=http_client, request_rescheduler=_RaiseRescheduler())
        self.API_URL = api_url.rstrip("/") + "/"
        self.limiter = limiter or RequestWindow()
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt)

    async def request(self, method: str, data: dict[str, Any], version: str | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            await self.limiter.acquire()
            try:
                return await super().request(method, dict(data), version)
            except VKAPIError as exc:
                if exc.code not in TRANSIENT_CODES or attempt >= self.retries:
                    raise
                delay = self.delay(attempt)
                if exc.code == TOO_MANY_REQUESTS:
                    self.limiter.pause(delay)  # every caller backs off, not only this one
                log.info("VK %s: error %s (%s); retrying in %.2fs", method, exc.code, exc, delay)
            except (*NETWORK_ERRORS, BadResponse) as exc:
                if attempt >= self.retries:
                    raise
                delay = self.delay(attempt)
                log.info("VK %s: %s; retrying in %.2fs", method, exc or type(exc).__name__, delay)
            attempt += 1
            await asyncio.sleep(delay)


class VkSender:
    """Sends replies and outbox messages (`ChannelSender` for the outbox worker)."""

    channel = CHANNEL
    max_per_second = float(RATE)
    """Delivery's pace for the community; every API call also goes through the API's own limiter."""
    chat_interval = 1.0
    """Seconds between two outbox messages to one chat."""

    def __init__(self, api: VkApi, db: Database, photos: Photos, *, upload_retries: int = 3) -> None:
        self.api = api
        self.db = db
        self.photos = photos
        self.upload_retries = upload_retries
        self._upload_locks: dict[str, asyncio.Lock] = {}

    # --- the ChannelSender port ---------------------------------------------------------------------------
    async def deliver(self, message: OutgoingMessage) -> None:
        reply = message.reply
        if reply.chat is None:
            raise DeliveryError("outbox message without a recipient", permanent=True)
        try:
            peer_id = int(reply.chat.chat_id)
        except ValueError:
            raise DeliveryError(f"not a VK peer id: {reply.chat.chat_id!r}", permanent=True) from None
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
            for message in render(reply, caps):
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
