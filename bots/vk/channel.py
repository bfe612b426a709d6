"""The VKontakte channel: Bots Long Poll by default, the Callback API when `otklik run` serves webhooks.

Long poll is vkbottle's `BotPolling` with two changes: its `ts` file lives under DATA_DIR instead of the
working directory, and old events are not skipped — the saved `ts` is where a restarted bot picks up, so
messages sent while it was down are answered. A batch of events is handled completely (events of one chat in
order, chats side by side) before the generator is resumed, which is when vkbottle saves the new `ts`: a
crash mid-batch fetches the batch again and the engine's `event_key` check makes the repeats no-ops.

vkbottle has no Callback API server (DESIGN.md §9): our route reads a bounded body, refuses events without
our secret before using any other field, answers `confirmation` with the community's code, handles the event,
and only then answers `ok` — VK sends an event again until it gets `ok`; a repeated `event_id` is handled
once.

A failed event is classified (bots/failures.py): a transient failure is not confirmed (no `ok`; a long-poll
batch is tried again and its `ts` not saved), anything else is logged once with its traceback, the user is
told once, and the event is confirmed and recorded as handled. A repeated event has no side effects of ours:
before answering a button press, taking a keyboard off or downloading photos, the engine is asked whether the
event was handled already (`Engine.seen`); photos are downloaded only when the chat's step takes photos.
"""

from __future__ import annotations

import asyncio
import hmac
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
from bots.failures import is_transient
from bots.photos import ingest_photo
from bots.vk.render import CURRENT_CLIENT
from bots.vk.sender import NETWORK_ERRORS, BadResponse, RequestWindow, VkApi, VkSender
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
from core.ports import Database, Photos
from core.texts import normalise_language, t

if TYPE_CHECKING:
    from bots.app import App

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.vk.ru/method"
CALLBACK_PATH = "/vk/callback"
"""Where the Callback API posts: set WEBHOOK_BASE_URL + this path as the server address in the community."""
MAX_BODY = 1024 * 1024
"""The largest Callback API body read (VK's events are a few KB; a message with many attachments far less)."""
BATCH_BACKOFF_MAX = 5.0
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


class Unfinished(Exception):
    """Stopping with events of a batch not handled: the batch's `ts` must not be saved."""


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
        photos: Photos,
        *,
        token: str,
        data_dir: Path,
        group_id: int | None = None,
        api_url: str = DEFAULT_API_URL,
        confirmation_code: str = "",
        secret: str = "",
        wait: int = 25,
        limiter: RequestWindow | None = None,
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
        self._active: dict[str, asyncio.Future[None]] = {}
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
            except Unfinished as exc:
                log.warning("%s; they come again after the restart", exc)
                return
            except Exception:
                polling.in_hand = False
                failures += 1
                delay = self.api.delay(min(failures, 5))
                log.exception("VK long poll failed; reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)

    async def handle_batch(self, updates: Sequence[dict[str, Any]]) -> None:
        """Events of one conversation in order, conversations concurrently. A conversation whose event failed
        transiently is tried again from that event, with a growing pause, until it goes through: the batch's
        `ts` is saved only after this returns, so a stop meanwhile leaves the batch to be fetched again."""
        by_peer: dict[int | None, list[dict[str, Any]]] = {}
        for update in updates:
            by_peer.setdefault(peer_of(update), []).append(update)
        pending = list(by_peer.values())
        attempt = 0
        while pending:
            left = await asyncio.gather(*(self._handle_in_order(group) for group in pending))
            pending = [group for group in left if group]
            if not pending:
                return
            if self._stopping:
                raise Unfinished(f"VK: stopping with {sum(map(len, pending))} event(s) not handled")
            await asyncio.sleep(min(BATCH_BACKOFF_MAX, self.api.delay(attempt)))
            attempt += 1

    async def _handle_in_order(self, updates: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
        """What is left of the conversation's events after the first transient failure (nothing: all done)."""
        for index, update in enumerate(updates):
            if not await self.handle_event(update):
                return updates[index:]
        return ()

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
            log.warning("VK: could not tell %s about the failure: %s", peer, exc)

    # --- Callback API --------------------------------------------------------------------------------------
    async def _on_callback(self, request: web.Request) -> web.StreamResponse:
        if self._stopping:
            return web.Response(status=503, text="stopping")
        # VK puts the secret inside the JSON body: the body is read bounded and parsed, and the secret
        # checked before any other field is used. Only a confirmation request may come without it (VK asks
        # for the code before the secret is set up); it learns nothing but the code VK itself issued.
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("VK callback: a body of %d bytes refused", request.content_length)
            return web.Response(status=413, text="too large")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            log.warning("VK callback: a body over %d bytes refused", MAX_BODY)
            return web.Response(status=413, text="too large")
        try:
            update = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            log.warning("VK callback: unparsable body refused (%s)", type(exc).__name__)
            return web.Response(status=400, text="not JSON")
        if not isinstance(update, dict):
            log.warning("VK callback: a body that is not an event refused")
            return web.Response(status=400, text="not an event")
        given = update.get("secret")
        secret_ok = not self.secret or (
            isinstance(given, str) and hmac.compare_digest(given.encode(), self.secret.encode())
        )
        if not secret_ok and update.get("type") != "confirmation":
            log.warning("VK callback with a wrong secret refused")
            return web.Response(status=403, text="wrong secret")
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
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            if not await self.handle_event(update):
                return web.Response(status=500, text="failed; send it again")
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
                await self._answer_event(event)
                await self._remove_keyboard(event)
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
