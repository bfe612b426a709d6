"""The VKontakte channel: Bots Long Poll by default, the Callback API when `otklik run` serves webhooks.

Long poll is vkbottle's `BotPolling` with two changes: its `ts` file lives under DATA_DIR instead of the
working directory, and old events are not skipped — the saved `ts` is where a restarted bot picks up, so
messages sent while it was down are answered. A batch of events is handled completely (events of one chat in
order, chats side by side) before the generator is resumed, which is when vkbottle saves the new `ts`: a
crash mid-batch fetches the batch again and the engine's `event_key` check makes the repeats no-ops.

vkbottle has no Callback API server (DESIGN.md §9): our route answers `confirmation` with the community's
code, refuses events without our secret, handles the event, and only then answers `ok` — VK sends an event
again until it gets `ok`, and a repeated `event_id` is handled once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from vkbottle import VKAPIError
from vkbottle.http import AiohttpClient
from vkbottle.polling import BotPolling

from bots.errors import SetupError
from bots.photos import ingest_photo
from bots.vk.render import CURRENT_CLIENT
from bots.vk.sender import NETWORK_ERRORS, BadResponse, RateLimiter, VkApi, VkSender
from bots.vk.translate import (
    CHANNEL,
    MESSAGE_EVENT,
    MESSAGE_NEW,
    ClientCaps,
    peer_of,
    translate_event,
    translate_message,
)
from core.engine import Engine
from core.messages import Incoming, Photo
from storage.database import Database
from storage.photos import PhotoStore

if TYPE_CHECKING:
    from bots.app import App

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.vk.ru/method"
CALLBACK_PATH = "/vk/callback"
"""Where the Callback API posts: set WEBHOOK_BASE_URL + this path as the server address in the community."""
AUTHORIZATION_FAILED = 5
BATCH_ATTEMPTS = 3
DOWNLOAD_ATTEMPTS = 3
NAME_CACHE = 1024


class StatefulBotPolling(BotPolling):
    """vkbottle's Bots Long Poll, resuming from the saved `ts`, with its state file under `state_dir`.

    `in_hand` is true from the moment a batch is yielded until the next request to VK — that is, while the
    batch is handled and its `ts` saved — when stopping must wait rather than cancel."""

    def __init__(self, api: VkApi, group_id: int | None, state_dir: Path, wait: int = 25) -> None:
        super().__init__(api, group_id=group_id, wait=wait, skip_old_events=False)
        self.state_dir = state_dir
        self.in_hand = False

    @property
    def ts_state_path(self) -> Path:
        if self.group_id is None:
            raise RuntimeError("the community id is not known yet")
        return self.state_dir / "bot-polling" / f"{self.group_id}.json"

    async def get_event(self, server: dict[str, Any]) -> dict[str, Any]:
        self.in_hand = False
        return await super().get_event(server)


class PhotoTooLarge(Exception):
    pass


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


class VkChannel:
    name = CHANNEL

    def __init__(
        self,
        engine: Engine,
        db: Database,
        photos: PhotoStore,
        *,
        token: str,
        data_dir: Path,
        group_id: int | None = None,
        api_url: str = DEFAULT_API_URL,
        confirmation_code: str = "",
        secret: str = "",
        wait: int = 25,
        limiter: RateLimiter | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.engine = engine
        self.db = db
        self.photos = photos
        self.group_id = group_id
        self.state_dir = Path(data_dir) / "vkbottle"
        self.confirmation_code = confirmation_code
        self.secret = secret
        self.wait = wait
        self.http_client = AiohttpClient(timeout=aiohttp.ClientTimeout(total=60, connect=10))
        self.api = VkApi(
            token, api_url=api_url, http_client=self.http_client, limiter=limiter, backoff=backoff
        )
        self.sender = VkSender(self.api, db, photos)
        self._polling: StatefulBotPolling | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._inflight: set[asyncio.Task[Any]] = set()
        self._names: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_app(cls, app: App) -> VkChannel | None:
        settings = app.settings
        token = settings.vk_group_token.get_secret_value() if settings.vk_group_token else ""
        if not token:
            return None
        return cls(
            app.engine,
            app.db,
            app.photos,
            token=token,
            data_dir=settings.data_dir,
            group_id=settings.vk_group_id,
            api_url=settings.vk_api_url,
            confirmation_code=settings.vk_confirmation_code,
            secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else "",
        )

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self, http: web.Application | None) -> None:
        self._stopping = False
        await self._check_token()
        if http is None:
            self._polling = StatefulBotPolling(self.api, self.group_id, self.state_dir, self.wait)
            self._task = asyncio.create_task(self._poll(self._polling), name="vk-long-poll")
            log.info("VK: Bots Long Poll")
            return
        http.router.add_post(CALLBACK_PATH, self._on_callback)
        try:
            await self._confirmation()
        except (VKAPIError, *NETWORK_ERRORS, BadResponse) as exc:
            log.warning("VK: no confirmation code yet (%s); asking again on VK's confirmation request", exc)
        log.info("VK: Callback API at %s", CALLBACK_PATH)

    async def _check_token(self) -> None:
        """Ask VK who we are before serving: a wrong token or an unreachable API is the operator's to fix,
        and is said in one line at start instead of a long-poll loop failing forever."""
        try:
            await self.api.request("groups.getById", {})
        except VKAPIError as exc:
            if exc.code == AUTHORIZATION_FAILED:
                raise SetupError(
                    f"VK rejected VK_GROUP_TOKEN (error 5: {exc.error_msg}).\n"
                    "Create a community token with the messages and photos rights, or leave VK_GROUP_TOKEN "
                    "empty to run without VK."
                ) from exc
            raise SetupError(
                f"VK refused VK_GROUP_TOKEN (error {exc.code}: {exc.error_msg}); check VK_GROUP_TOKEN."
            ) from exc
        except (*NETWORK_ERRORS, BadResponse) as exc:
            raise SetupError(
                f"cannot reach the VK API ({exc or type(exc).__name__}).\n"
                "Check the network and VK_API_URL, then start otklik again."
            ) from exc

    async def stop(self) -> None:
        self._stopping = True
        if self._polling is not None:
            self._polling.stop()
        if self._task is not None:
            if self._polling is None or not self._polling.in_hand:  # waiting for VK: nothing in hand
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=30)
        await self.http_client.close()

    # --- Bots Long Poll ------------------------------------------------------------------------------------
    async def _poll(self, polling: StatefulBotPolling) -> None:
        failures = 0
        while not self._stopping:
            try:
                async for event in polling.listen():
                    polling.in_hand = True
                    await self.handle_batch(event.get("updates") or [])
                    failures = 0
                    if self.group_id is None:
                        self.group_id = polling.group_id
            except asyncio.CancelledError:
                raise
            except Exception:
                polling.in_hand = False
                failures += 1
                delay = self.api.delay(min(failures, 5))
                log.exception("VK long poll failed; reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)

    async def handle_batch(self, updates: Sequence[dict[str, Any]]) -> None:
        """Events of one conversation in order, conversations concurrently; a failed conversation is tried
        again (what was handled is a no-op the second time), then given up with an error in the log."""
        by_peer: dict[int | None, list[dict[str, Any]]] = {}
        for update in updates:
            by_peer.setdefault(peer_of(update), []).append(update)
        pending = list(by_peer.values())
        for attempt in range(BATCH_ATTEMPTS):
            results = await asyncio.gather(
                *(self._handle_in_order(group) for group in pending), return_exceptions=True
            )
            failed = [
                (group, r) for group, r in zip(pending, results, strict=True) if isinstance(r, BaseException)
            ]
            if not failed:
                return
            for _group, error in failed:
                log.error("VK: handling an event failed", exc_info=error)
            if attempt + 1 == BATCH_ATTEMPTS or self._stopping:
                log.error(
                    "VK: gave up on %d event(s) after %d attempts",
                    sum(len(g) for g, _ in failed),
                    attempt + 1,
                )
                return
            pending = [group for group, _error in failed]
            await asyncio.sleep(self.api.delay(attempt))

    async def _handle_in_order(self, updates: Sequence[dict[str, Any]]) -> None:
        for update in updates:
            await self.handle_update(update)

    # --- Callback API --------------------------------------------------------------------------------------
    async def _on_callback(self, request: web.Request) -> web.StreamResponse:
        if self._stopping:
            return web.Response(status=503, text="stopping")
        try:
            update = await request.json()
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(update, dict):
            return web.Response(status=400, text="not an event")
        group_id = update.get("group_id")
        if self.group_id is not None and group_id is not None and group_id != self.group_id:
            log.warning("VK callback for community %s, we serve %s", group_id, self.group_id)
            return web.Response(status=403, text="wrong community")
        if update.get("type") == "confirmation":
            try:
                return web.Response(text=await self._confirmation())
            except (VKAPIError, *NETWORK_ERRORS, BadResponse) as exc:
                log.error("VK: cannot get the confirmation code: %s", exc)
                return web.Response(status=503, text="no confirmation code")
        if self.secret and update.get("secret") != self.secret:
            log.warning("VK callback with a wrong secret refused")
            return web.Response(status=403, text="wrong secret")
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self.handle_update(update)
        except Exception:
            log.exception("VK: handling a callback event failed; VK will send it again")
            return web.Response(status=500, text="error")
        finally:
            if task is not None:
                self._inflight.discard(task)
        return web.Response(text="ok")

    async def _confirmation(self) -> str:
        if not self.confirmation_code:
            group_id = await self.resolve_group_id()
            response = await self.api.request("groups.getCallbackConfirmationCode", {"group_id": group_id})
            self.confirmation_code = str(response["response"]["code"])
        return self.confirmation_code

    async def resolve_group_id(self) -> int:
        if self.group_id is None:
            response = (await self.api.request("groups.getById", {}))["response"]
            groups = response.get("groups", []) if isinstance(response, dict) else response
            self.group_id = int(groups[0]["id"])
        return self.group_id

    # --- one event -----------------------------------------------------------------------------------------
    async def handle_update(self, update: dict[str, Any]) -> None:
        kind = update.get("type")
        if kind not in (MESSAGE_NEW, MESSAGE_EVENT) or peer_of(update) is None:
            return
        caps: ClientCaps = CURRENT_CLIENT
        incoming: Incoming
        if kind == MESSAGE_NEW:
            incoming, caps = await translate_message(update, self.group_id, self.fetch_photo)
            if incoming.command is not None:  # e.g. `/staff CODE` records who joined: worth a users.get
                incoming = replace(incoming, display_name=await self.user_name(incoming.chat.user_id))
        else:
            event = update.get("object") or {}
            await self._answer_event(event)
            await self._remove_keyboard(event)
            incoming = translate_event(update, self.group_id)
        replies = await self.engine.handle(incoming)
        if replies:
            await self.sender.reply(int(incoming.chat.chat_id), replies, incoming.event_key, caps)

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
        except (VKAPIError, *NETWORK_ERRORS, BadResponse, LookupError, AttributeError) as exc:
            log.info("VK users.get %s failed: %s", user_id, exc)
            return ""
        self._names[user_id] = name
        while len(self._names) > NAME_CACHE:
            self._names.popitem(last=False)
        return name

    async def _answer_event(self, event: dict[str, Any]) -> None:
        """Stops the button's spinner. A stale or foreign event may be refused by VK: that is no reason not
        to handle the press."""
        params = {key: event.get(key) for key in ("event_id", "user_id", "peer_id")}
        try:
            await self.api.request("messages.sendMessageEventAnswer", params)
        except (VKAPIError, *NETWORK_ERRORS, BadResponse) as exc:
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
        except (VKAPIError, *NETWORK_ERRORS, BadResponse, LookupError, AttributeError, TypeError) as exc:
            log.info("VK: could not take the keyboard off message %s in %s: %s", cmid, peer_id, exc)

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
