"""A fake VK API on 127.0.0.1, enough for the real vkbottle code to run a community bot against it.

Methods: groups.getById, groups.getLongPollServer, groups.getCallbackConfirmationCode, messages.send (with
VK's `random_id` dedupe and its limits on text and keyboards), messages.sendMessageEventAnswer, messages.edit,
photos.getMessagesUploadServer, photos.saveMessagesPhoto. Plus the Bots Long Poll server (POST act=a_check:
events after `ts`, held up to `wait` seconds), an upload server (multipart field `photo`) and photo URLs to
download residents' photos from. Every API call is recorded; `fail(method, code, …)` makes the next calls
of a method answer with VK errors. Tests play the users: `message_new(...)`/`message_event(...)` build events
as VK sends them, `push` queues them for long poll; `post_callback` delivers them as the Callback API would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes import serve, wait_for
from tests.users import User

TOKEN = "vk-test-token"
GROUP_ID = 4242
CONFIRMATION_CODE = "c0nf1rm"
CLIENT_INFO = {
    "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback", "intent_subscribe"],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}


@dataclass
class Sent:
    """One message delivered by messages.send."""

    id: int
    peer_id: int
    random_id: int
    text: str
    keyboard: dict[str, Any] | None
    attachments: list[str]
    photos: list[bytes]
    lat: float | None = None
    long: float | None = None
    conversation_message_id: int = 0
    edits: int = 0

    def buttons(self) -> list[dict[str, Any]]:
        if not self.keyboard:
            return []
        return [button["action"] for row in self.keyboard["buttons"] for button in row]


@dataclass
class FakeVk:
    group_id: int = GROUP_ID
    token: str = TOKEN
    confirmation_code: str = CONFIRMATION_CODE
    max_wait: float = 0.5
    """Long-poll requests are held at most this long (VK holds them `wait` seconds)."""

    url: str = ""
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    call_times: list[float] = field(default_factory=list)
    """time.monotonic() of each API call, in `calls` order."""
    sent: list[Sent] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    """messages.send calls VK ignored because their random_id was used before."""
    events: list[dict[str, Any]] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    """Peers that have blocked the community: messages.send answers error 901."""
    uploads: dict[int, bytes] = field(default_factory=dict)
    long_polls: int = 0
    confirmed: int = 0
    """The highest `ts` a long-poll request asked from: the bot handled every event before it (it asks for
    the next batch only after handling the last one)."""
    in_flight: int = 0
    """API method calls received and not yet answered."""
    downloads: list[str] = field(default_factory=list)
    """Names of hosted files fetched (a user's photos downloaded by the bot)."""
    hang: set[str] = field(default_factory=set)
    """Methods whose calls are recorded and then never answered (until `close`): a bot stuck mid-send."""

    def __post_init__(self) -> None:
        self._failures: dict[str, list[int]] = defaultdict(list)
        self._lost: dict[str, int] = defaultdict(int)
        self._lp_failures: list[int] = []
        self._lp_key = secrets.token_hex(8)
        self._random_ids: dict[int, int] = {}
        self._message_ids = itertools.count(1)
        self._photo_ids = itertools.count(500)
        self._pending_uploads: dict[str, bytes] = {}
        self._access_keys: dict[int, str] = {}
        self._files: dict[str, bytes] = {}
        self._cmids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._event_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False

    # --- server ---------------------------------------------------------------------------------------------
    async def start(self) -> FakeVk:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/method/{name}", self._method)
        app.router.add_post("/lp", self._long_poll)
        app.router.add_post("/upload", self._upload)
        app.router.add_get("/files/{name}", self._file)
        self._runner, self.url = await serve(app)
        return self

    async def close(self) -> None:
        async with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/method"

    # --- test controls --------------------------------------------------------------------------------------
    def fail(self, method: str, *codes: int) -> None:
        """The next calls of `method` answer with these VK error codes, one call each."""
        self._failures[method].extend(codes)

    def lose_responses(self, method: str, count: int = 1) -> None:
        """The next `count` calls of `method` take effect, but the connection drops before the answer."""
        self._lost[method] += count

    async def fail_long_poll(self, *codes: int) -> None:
        """The next a_check requests (the one waiting now, if any) answer `{"failed": code}`."""
        async with self._changed:
            self._lp_failures.extend(codes)
            self._changed.notify_all()

    async def push(self, *updates: dict[str, Any]) -> None:
        """Queue events for the Bots Long Poll server."""
        async with self._changed:
            self.events.extend(updates)
            self._changed.notify_all()

    async def settled(self, timeout: float = 5.0) -> None:
        """A barrier before asserting silence: every queued long-poll event is confirmed as handled and no
        API call is being answered. (An event posted to the Callback API is handled before its `ok`.)"""
        await wait_for(
            lambda: self.confirmed >= len(self.events) and not self.in_flight,
            timeout,
            f"long poll to confirm {len(self.events)} event(s), {self.in_flight} call(s) in flight",
        )

    def calls_of(self, method: str) -> list[dict[str, str]]:
        return [params for name, params in self.calls if name == method]

    def sent_to(self, peer_id: int) -> list[Sent]:
        return [m for m in self.sent if m.peer_id == peer_id]

    def host_file(self, data: bytes, name: str | None = None) -> str:
        name = name or f"{secrets.token_hex(6)}.jpg"
        self._files[name] = data
        return f"{self.url}/files/{name}"

    # --- events as VK sends them ----------------------------------------------------------------------------
    def _envelope(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "type": kind,
            "event_id": f"{next(self._event_ids):08x}{secrets.token_hex(16)}",
            "v": "5.199",
            "object": obj,
        }

    def message_new(
        self,
        peer_id: int,
        text: str = "",
        *,
        attachments: list[dict[str, Any]] | None = None,
        payload: str | None = None,
        geo: tuple[float, float] | None = None,
        lang_id: int | None = 0,
        client_info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "date": 1796000000,
            "from_id": peer_id,
            "id": 0,
            "out": 0,
            "version": 1,
            "attachments": attachments or [],
            "conversation_message_id": next(self._cmids[peer_id]),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "peer_id": peer_id,
            "random_id": 0,
            "text": text,
        }
        if payload is not None:
            message["payload"] = payload
        if geo is not None:
            message["geo"] = {
                "type": "point",
                "coordinates": {"latitude": geo[0], "longitude": geo[1]},
                "place": {"country": "Россия", "city": "Иркутск", "title": "Иркутск"},
            }
        info = dict(client_info if client_info is not None else CLIENT_INFO)
        if lang_id is None:
            info.pop("lang_id", None)
        elif client_info is None:
            info["lang_id"] = lang_id
        return self._envelope("message_new", {"message": message, "client_info": info})

    def message_event(
        self, peer_id: int, payload: Any, *, conversation_message_id: int = 1, event_id: str | None = None
    ) -> dict[str, Any]:
        return self._envelope(
            "message_event",
            {
                "user_id": peer_id,
                "peer_id": peer_id,
                "event_id": event_id or secrets.token_hex(6),
                "payload": payload,
                "conversation_message_id": conversation_message_id,
            },
        )

    def photo_attachment(self, data: bytes, thumbnail: bytes | None = None) -> dict[str, Any]:
        """A photo as VK attaches it: several sizes, the largest last but one (orders vary)."""
        big = self.host_file(data)
        small = self.host_file(thumbnail or b"not the large size")
        return {
            "type": "photo",
            "photo": {
                "album_id": -3,
                "date": 1796000000,
                "id": next(self._photo_ids),
                "owner_id": 1,
                "access_key": secrets.token_hex(6),
                "sizes": [
                    {"height": 56, "width": 75, "type": "s", "url": small},
                    {"height": 1024, "width": 1280, "type": "z", "url": big},
                    {"height": 97, "width": 130, "type": "m", "url": small},
                ],
                "text": "",
                "has_tags": False,
            },
        }

    async def post_callback(
        self, url: str, update: dict[str, Any], secret: str | None = None
    ) -> tuple[int, str]:
        """Deliver an event the way the Callback API does: JSON POST, expecting `ok` back."""
        body = dict(update)
        if secret is not None:
            body["secret"] = secret
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            return response.status, await response.text()

    def confirmation_request(self) -> dict[str, Any]:
        return {"type": "confirmation", "group_id": self.group_id}

    # --- the API --------------------------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        params = dict(request.query)
        params.update({k: str(v) for k, v in (await request.post()).items()})
        token = params.pop("access_token", None)
        params.pop("v", None)
        self.calls.append((name, params))
        self.call_times.append(time.monotonic())
        if token != self.token:
            return _error(5, "User authorization failed: invalid access_token (4).", params)
        if name in self.hang:
            async with self._changed:
                await self._changed.wait_for(lambda: self._closing)
            return _error(10, "Internal server error", params)
        if self._failures.get(name):
            code = self._failures[name].pop(0)
            return _error(code, ERROR_MESSAGES.get(code, "Error"), params)
        handler = getattr(self, "_" + name.replace(".", "_"), None)
        if handler is None:
            return _error(3, "Unknown method passed", params)
        try:
            response = web.json_response({"response": await handler(params)})
        except ApiError as exc:
            return _error(exc.code, exc.message, params)
        if self._lost[name] > 0:
            self._lost[name] -= 1
            assert request.transport is not None
            request.transport.abort()
        return response

    async def _groups_getById(self, params: dict[str, str]) -> Any:
        return {
            "groups": [{"id": self.group_id, "name": "Отклик", "screen_name": f"club{self.group_id}"}],
            "profiles": [],
        }

    async def _users_get(self, params: dict[str, str]) -> Any:
        ids = [int(i) for i in params.get("user_ids", "").split(",") if i]
        return [
            {"id": i, "first_name": "Пользователь", "last_name": str(i), "can_access_closed": True}
            for i in ids
        ]

    async def _groups_getLongPollServer(self, params: dict[str, str]) -> Any:
        if params.get("group_id") != str(self.group_id):
            raise ApiError(100, "One of the parameters specified was missing or invalid: group_id")
        return {"key": self._lp_key, "server": f"{self.url}/lp", "ts": str(len(self.events))}

    async def _groups_getCallbackConfirmationCode(self, params: dict[str, str]) -> Any:
        if params.get("group_id") != str(self.group_id):
            raise ApiError(100, "One of the parameters specified was missing or invalid: group_id")
        return {"code": self.confirmation_code}

    async def _messages_send(self, params: dict[str, str]) -> Any:
        if "random_id" not in params:
            raise ApiError(100, "One of the parameters specified was missing or invalid: random_id")
        peer_id = int(params["peer_id"])
        random_id = int(params["random_id"])
        if random_id and random_id in self._random_ids:
            self.duplicates.append(params)
            return self._random_ids[random_id]
        if peer_id in self.blocked:
            raise ApiError(901, "Can't send messages for users without permission")
        text = params.get("message", "")
        if len(text) > 4096:
            raise ApiError(914, "Message is too long")
        keyboard = json.loads(params["keyboard"]) if params.get("keyboard") else None
        if keyboard is not None:
            check_keyboard(keyboard)
        attachments = [a for a in params.get("attachment", "").split(",") if a]
        photos = [self._attached_photo(a) for a in attachments]
        lat, long = params.get("lat"), params.get("long")
        if not text and not attachments and lat is None:
            raise ApiError(100, "One of the parameters specified was missing or invalid: message is empty")
        message_id = next(self._message_ids)
        if random_id:
            self._random_ids[random_id] = message_id
        self.sent.append(
            Sent(
                id=message_id,
                peer_id=peer_id,
                random_id=random_id,
                text=text,
                keyboard=keyboard,
                attachments=attachments,
                photos=photos,
                lat=float(lat) if lat is not None else None,
                long=float(long) if long is not None else None,
                conversation_message_id=next(self._cmids[peer_id]),
            )
        )
        return message_id

    def _sent_by_cmid(self, peer_id: str | None, cmid: str | None) -> Sent:
        found = next(
            (m for m in self.sent if str(m.peer_id) == peer_id and str(m.conversation_message_id) == cmid),
            None,
        )
        if found is None:
            raise ApiError(
                100, "One of the parameters specified was missing or invalid: conversation_message_id"
            )
        return found

    async def _messages_getByConversationMessageId(self, params: dict[str, str]) -> Any:
        cmids = params.get("conversation_message_ids", "").split(",")
        items = []
        for cmid in cmids:
            try:
                message = self._sent_by_cmid(params.get("peer_id"), cmid)
            except ApiError:
                continue
            attachments = []
            for attachment in message.attachments:
                owner, photo_id, key = re.fullmatch(r"photo(-?\d+)_(\d+)_(\w+)", attachment).groups()  # type: ignore[union-attr]
                attachments.append(
                    {
                        "type": "photo",
                        "photo": {"owner_id": int(owner), "id": int(photo_id), "access_key": key},
                    }
                )
            item: dict[str, Any] = {
                "id": message.id,
                "peer_id": message.peer_id,
                "from_id": -self.group_id,
                "out": 1,
                "conversation_message_id": message.conversation_message_id,
                "text": message.text,
                "attachments": attachments,
            }
            if message.keyboard is not None:
                item["keyboard"] = message.keyboard
            if message.lat is not None:
                item["geo"] = {
                    "type": "point",
                    "coordinates": {"latitude": message.lat, "longitude": message.long},
                }
            items.append(item)
        return {"count": len(items), "items": items}

    def _attached_photo(self, attachment: str) -> bytes:
        match = re.fullmatch(r"photo(-?\d+)_(\d+)(?:_(\w+))?", attachment)
        if match is None:
            raise ApiError(100, f"invalid attachment {attachment!r}")
        owner, photo_id, key = int(match[1]), int(match[2]), match[3]
        if owner != -self.group_id or photo_id not in self.uploads or self._access_keys[photo_id] != key:
            raise ApiError(100, f"invalid attachment {attachment!r}")
        return self.uploads[photo_id]

    async def _messages_sendMessageEventAnswer(self, params: dict[str, str]) -> Any:
        for key in ("event_id", "user_id", "peer_id"):
            if not params.get(key):
                raise ApiError(100, f"One of the parameters specified was missing or invalid: {key}")
        return 1

    async def _messages_edit(self, params: dict[str, str]) -> Any:
        """Edits a message of ours, found by peer_id and conversation_message_id; `keyboard` replaces the
        keyboard (no buttons: none). As in VK, the text (or an attachment) must be given again."""
        message = self._sent_by_cmid(params.get("peer_id"), params.get("conversation_message_id"))
        text = params.get("message", "")
        attachments = [a for a in params.get("attachment", "").split(",") if a]
        if not text and not attachments:
            raise ApiError(100, "One of the parameters specified was missing or invalid: message is empty")
        keyboard = json.loads(params["keyboard"]) if params.get("keyboard") else None
        if keyboard is not None:
            check_keyboard(keyboard)
        message.photos = [self._attached_photo(a) for a in attachments]
        message.text, message.attachments = text, attachments
        message.keyboard = keyboard if keyboard and keyboard.get("buttons") else None
        message.edits += 1
        return 1

    async def _photos_getMessagesUploadServer(self, params: dict[str, str]) -> Any:
        return {"album_id": -3, "upload_url": f"{self.url}/upload", "user_id": 0, "group_id": self.group_id}

    async def _photos_saveMessagesPhoto(self, params: dict[str, str]) -> Any:
        try:
            token = json.loads(params["photo"])[0]["photo"]
        except (KeyError, ValueError, IndexError, TypeError):
            raise ApiError(100, "One of the parameters specified was missing or invalid: photo") from None
        data = self._pending_uploads.pop(token, None)
        if data is None or params.get("hash") != _hash(token) or params.get("server") != "777":
            raise ApiError(121, "Invalid hash")
        photo_id = next(self._photo_ids)
        key = secrets.token_hex(6)
        self.uploads[photo_id] = data
        self._access_keys[photo_id] = key
        return [{"id": photo_id, "owner_id": -self.group_id, "access_key": key, "album_id": -3, "sizes": []}]

    # --- long poll, upload, files -------------------------------------------------------------------------
    async def _long_poll(self, request: web.Request) -> web.Response:
        query = request.query
        self.long_polls += 1
        if query.get("act") != "a_check" or query.get("key") != self._lp_key:
            return web.json_response({"failed": 2})
        try:
            ts = int(query.get("ts", ""))
        except ValueError:
            return web.json_response({"failed": 1, "ts": str(len(self.events))})
        self.confirmed = max(self.confirmed, ts)
        wait = min(float(query.get("wait", 25)), self.max_wait)
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                ready = lambda: len(self.events) > ts or self._lp_failures or self._closing  # noqa: E731
                await asyncio.wait_for(self._changed.wait_for(ready), wait)
        if self._lp_failures:
            return web.json_response({"failed": self._lp_failures.pop(0), "ts": str(len(self.events))})
        return web.json_response({"ts": str(max(ts, len(self.events))), "updates": self.events[ts:]})

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        field_ = form.get("photo")
        if not isinstance(field_, web.FileField):
            return web.json_response({"error": "no file in field photo"})
        token = secrets.token_hex(8)
        self._pending_uploads[token] = field_.file.read()
        return web.json_response(
            {"server": 777, "photo": json.dumps([{"photo": token}]), "hash": _hash(token)}
        )

    async def _file(self, request: web.Request) -> web.Response:
        self.downloads.append(request.match_info["name"])
        data = self._files.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/jpeg")


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ERROR_MESSAGES = {
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    10: "Internal server error",
    901: "Can't send messages for users without permission",
}


def _error(code: int, message: str, params: dict[str, str]) -> web.Response:
    request_params = [{"key": k, "value": v} for k, v in params.items()]
    return web.json_response(
        {"error": {"error_code": code, "error_msg": message, "request_params": request_params}}
    )


def _hash(token: str) -> str:
    return f"h{token[::-1]}"


def check_keyboard(keyboard: dict[str, Any]) -> None:
    """VK's limits (dev.vk.com, Keyboard): 5 × 10 and 40 buttons, inline 5 × 6 and 10 buttons; labels up to
    40 characters, payloads up to 255; location and open_app buttons alone in their row. Error 911
    otherwise."""
    rows = keyboard.get("buttons")
    if not isinstance(rows, list):
        raise ApiError(911, "Keyboard format is invalid: buttons")
    inline = bool(keyboard.get("inline"))
    max_rows, max_total = (6, 10) if inline else (10, 40)
    if len(rows) > max_rows or sum(len(row) for row in rows) > max_total:
        raise ApiError(911, "Keyboard format is invalid: too many buttons")
    for row in rows:
        if len(row) > 5:
            raise ApiError(911, "Keyboard format is invalid: too many buttons in a row")
        for button in row:
            action = button.get("action") or {}
            kind = action.get("type")
            if kind not in ("text", "callback", "location", "open_link", "vkpay", "open_app"):
                raise ApiError(911, f"Keyboard format is invalid: action type {kind!r}")
            if kind in ("location", "open_app") and len(row) > 1:
                raise ApiError(911, f"Keyboard format is invalid: {kind} button must be alone in its row")
            if kind == "open_app" and not (
                isinstance(action.get("app_id"), int) and isinstance(action.get("label"), str)
            ):
                raise ApiError(911, "Keyboard format is invalid: open_app needs app_id and label")
            if kind in ("text", "callback"):
                label = action.get("label")
                if not isinstance(label, str) or not 0 < len(label) <= 40:
                    raise ApiError(911, "Keyboard format is invalid: label")
            payload = action.get("payload")
            if payload is not None:
                if not isinstance(payload, str) or len(payload.encode()) > 255:
                    raise ApiError(911, "Keyboard format is invalid: payload")
                json.loads(payload)
            elif kind == "callback":
                raise ApiError(911, "Keyboard format is invalid: callback without payload")


Deliver = Callable[[dict[str, Any]], Awaitable[Any]]


class VkUser(User[Sent]):
    """A VK user writing to the community: sends events through `deliver` (long poll queue by default),
    reads the community's messages to them from the fake as they arrive, presses their keyboard buttons."""

    def __init__(
        self,
        vk: FakeVk,
        peer_id: int = 1001,
        *,
        deliver: Deliver | None = None,
        language: str = "ru",
        client_info: dict[str, Any] | None = None,
    ) -> None:
        self.vk = vk
        self.peer_id = peer_id
        self.deliver: Deliver = deliver or vk.push
        self.language = language
        self.lang_id = {"ru": 0, "en": 3}[language]
        self.client_info = client_info
        self.read = 0
        self.replies: list[Sent] = []

    async def send(self, text: str = "", **fields: Any) -> dict[str, Any]:
        """A `message_new` event with this text and fields; returns the event as delivered."""
        fields.setdefault("lang_id", self.lang_id)
        if self.client_info is not None:
            fields.setdefault("client_info", self.client_info)
        update = self.vk.message_new(self.peer_id, text, **fields)
        await self.deliver(update)
        return update

    async def say(self, text: str) -> dict[str, Any]:
        return await self.send(text)

    async def command(self, name: str, args: str = "") -> dict[str, Any]:
        return await self.send(f"/{name} {args}".strip())

    async def photos(self, *images: bytes, text: str = "") -> dict[str, Any]:
        return await self.send(text, attachments=[self.vk.photo_attachment(data) for data in images])

    async def pin(self, lat: float, lon: float) -> dict[str, Any]:
        return await self.send(geo=(lat, lon))

    def keyboard(self) -> list[dict[str, Any]]:
        """The actions (VK's button dicts) of the keyboard of the last message read that has one."""
        message = self.keyboard_message()
        return message.buttons() if message else []

    def keyboard_message(self) -> Sent | None:
        """The last message read that has (still) a keyboard."""
        return next((m for m in reversed(self.replies) if m.keyboard is not None), None)

    def buttons(self) -> list[tuple[str, str]]:
        """The buttons the user sees now: those of the last keyboard (a message without one leaves it)."""
        return [button for m in self.pressable() for button in self.buttons_of(m)]

    def pressable(self) -> list[Sent]:
        """A keyboard stays until the next one replaces it: only the last one can be pressed."""
        message = self.keyboard_message()
        return [message] if message else []

    def text_of(self, message: Sent) -> str:
        return message.text

    def buttons_of(self, message: Sent) -> list[tuple[str, str]]:
        return [
            (action.get("label", ""), json.loads(action["payload"])["b"])
            for action in message.buttons()
            if action.get("payload")
        ]

    async def tap(self, message: Sent, data: str) -> dict[str, Any]:
        """A callback button sends a `message_event`; a text button writes its label with its payload."""
        action = next(
            a for a in message.buttons() if a.get("payload") and json.loads(a["payload"])["b"] == data
        )
        if action["type"] == "callback":
            update = self.vk.message_event(
                self.peer_id,
                json.loads(action["payload"]),
                conversation_message_id=message.conversation_message_id,
            )
            await self.deliver(update)
            return update
        return await self.send(action["label"], payload=action["payload"])

    async def receive(self, count: int, timeout: float = 5.0) -> list[Sent]:
        """The next `count` messages to this user, once they have all arrived."""
        await wait_for(
            lambda: len(self.vk.sent_to(self.peer_id)) >= self.read + count,
            timeout,
            f"{count} message(s) to {self.peer_id}",
        )
        fresh = self.vk.sent_to(self.peer_id)[self.read :]
        self.read += len(fresh)
        self.replies = fresh
        return fresh

    def quiet(self) -> bool:
        """Nothing unread."""
        return len(self.vk.sent_to(self.peer_id)) == self.read
