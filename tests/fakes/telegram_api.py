"""A fake Telegram Bot API on 127.0.0.1, enough for the real aiogram and python-telegram-bot code to run
a bot.

Methods: getMe, getUpdates (long polling with Telegram's offset semantics: an offset confirms everything
below it; 409 while a webhook is set, and to a long poll cut short by a newer getUpdates: two pollers of one
bot), deleteWebhook, setWebhook, getWebhookInfo, setMyCommands, sendMessage,
editMessageText, editMessageReplyMarkup, answerCallbackQuery, sendChatAction, sendPhoto, sendMediaGroup
(multipart with `attach://`), sendLocation, getFile and file downloads from /file/bot<token>/<path>. Requests
are parsed the way Telegram does (query string, urlencoded or multipart form, JSON), and Telegram's limits are
enforced (text 4096, caption 1024, callback data 64 bytes, albums of 2–10), so an adapter that breaks them
fails here.

Every call is recorded (`calls`), every message the bot sends too (`sent`). `fail(method, …)` makes the next
calls of a method fail (429 with retry_after, 5xx, …); `blocked` chats answer 403. Tests play the users with
`TelegramUser`: it builds updates as Telegram sends them and delivers them by polling (`push`) or webhook
(`post_webhook`), then waits until the bot has handled them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from core.messages import Reply
from tests.fakes import serve, wait_for
from tests.support import jpeg_bytes, text_is
from tests.users import User

TOKEN = "123456:fake-token-for-otklik-tests"
BOT_ID = 123456
USERNAME = "otklik_test_bot"
CONFLICT = 409
CONFLICT_MESSAGE = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "media",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "reply_parameters",
    }
)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    in_webhook_reply: bool = False
    """Given in a webhook's response rather than as a request of its own."""
    content_type: str = ""
    """How the parameters came: `application/json`, a form (`multipart/form-data` with files), none."""


@dataclass
class Sent:
    """One message the bot sent (text, photo or location), as Telegram stores it."""

    message_id: int
    chat_id: int
    kind: str
    text: str = ""
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    file_id: str = ""
    media_group_id: str | None = None
    location: tuple[float, float] | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    edits: int = 0

    def buttons(self) -> list[tuple[str, str]]:
        """Inline buttons (label, callback data)."""
        if not self.reply_markup or "inline_keyboard" not in self.reply_markup:
            return []
        return [
            (b["text"], b.get("callback_data", ""))
            for row in self.reply_markup["inline_keyboard"]
            for b in row
        ]

    def web_apps(self) -> list[tuple[str, str]]:
        """Inline Web App buttons (label, url)."""
        if not self.reply_markup or "inline_keyboard" not in self.reply_markup:
            return []
        return [
            (b["text"], b["web_app"]["url"])
            for row in self.reply_markup["inline_keyboard"]
            for b in row
            if "web_app" in b
        ]

    def keyboard(self) -> list[dict[str, Any]]:
        """Reply keyboard buttons, as dicts ({"text": …, "request_location": true})."""
        if not self.reply_markup or "keyboard" not in self.reply_markup:
            return []
        return [
            b if isinstance(b, dict) else {"text": b} for row in self.reply_markup["keyboard"] for b in row
        ]

    @property
    def removes_keyboard(self) -> bool:
        return bool(self.reply_markup and self.reply_markup.get("remove_keyboard"))


class FakeTelegram:
    def __init__(self, *, token: str = TOKEN, username: str = USERNAME, max_poll: float = 10.0) -> None:
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.username = username
        self.max_poll = max_poll
        self.url = ""
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.updates: list[dict[str, Any]] = []
        self.confirmed = 0
        """Every update_id below this was confirmed by a getUpdates offset."""
        self.conflicts = 0
        """getUpdates answered 409 because a newer one came (two pollers of one bot: a deposed leader)."""
        self._polls = 0
        self.webhook: dict[str, Any] = {}
        self.commands: dict[str | None, list[dict[str, str]]] = {}
        self.callback_answers: list[str] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.blocked: set[int] = set()
        self.files: dict[str, bytes] = {}
        self.webhook_statuses: list[int] = []
        self.webhook_target = ""
        """Where webhook updates really go (the bot's local server), when its public URL is not reachable."""
        self.hang: set[str] = set()
        """Methods whose calls are recorded and then never answered (until `stop`): a bot stuck mid-send."""
        self._released = asyncio.Event()
        self._failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self._paths: dict[str, str] = {}
        self._update_ids = itertools.count(10_001)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner, self.url = await serve(app)
        self._client = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._released.set()
        self._wake()  # long polls in progress return now
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests do -----------------------------------------------------------------------------------
    def fail(
        self,
        method: str,
        code: int = 429,
        description: str = "",
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail like Telegram would."""
        if code == 429:
            description = description or f"Too Many Requests: retry after {retry_after or 1}"
            retry_after = retry_after or 1
        for _ in range(times):
            self._failures[method].append(ApiError(code, description or f"Error {code}", retry_after))

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates, all at once (as Telegram hands out an album)."""
        self.updates.extend(updates)
        self._wake()

    async def post_webhook(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """Deliver an update to the webhook the bot set, with its secret token (or `secret`, "" for none)."""
        assert self._client is not None and self.webhook.get("url"), "no webhook set"
        token = self.webhook.get("secret_token", "") if secret is None else secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": token} if token else {}
        target = self.webhook_target or self.webhook["url"]
        async with self._client.post(target, json=update, headers=headers) as response:
            body = await response.read()
            self.webhook_statuses.append(response.status)
        if response.status == 200 and response.content_type == "application/json":
            await self._webhook_reply(json.loads(body))
        return response.status

    def new_update_id(self) -> int:
        return next(self._update_ids)

    def new_message_id(self) -> int:
        return next(self._message_ids)

    def add_file(self, data: bytes) -> str:
        file_id = f"F{next(self._file_ids):05d}-{hashlib.sha256(data).hexdigest()[:12]}"
        self.files[file_id] = data
        return file_id

    def method_calls(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def to(self, chat_id: int) -> list[Sent]:
        return [m for m in self.sent if m.chat_id == chat_id]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        return await wait_for(predicate, timeout, what)

    # --- the API ---------------------------------------------------------------------------------------
    async def _webhook_reply(self, params: dict[str, Any]) -> None:
        """A method in a webhook's response, run as Telegram runs it: recorded like a call, its result and
        any error never reaching the bot."""
        method = str(params.pop("method", ""))
        self.calls.append(Call(method, params, {}, time.monotonic(), in_webhook_reply=True))
        with contextlib.suppress(ApiError):
            await self.run_method(method, params, {})

    async def run_method(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """One Bot API method's result (a scripted failure first, if any), or `ApiError` as the API answers.
        The HTTP around it is the caller's: aiohttp here, bench/lean_http.py in the cluster bench."""
        if self._failures[method]:
            raise self._failures[method].popleft()
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return await handler(params, files)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        kind = request.content_type if request.can_read_body else ""
        params, files = await _read_params(request)
        self.calls.append(Call(method, params, files, time.monotonic(), content_type=kind))
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        if method in self.hang:
            await self._released.wait()
            return _error(ApiError(502, "Bad Gateway"))
        try:
            return web.json_response({"ok": True, "result": await self.run_method(method, params, files)})
        except ApiError as exc:
            return _error(exc)

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = self._paths.get(request.match_info["path"])
        if file_id is None:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Otklik",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        self._polls += 1
        poll = self._polls
        self._wake()  # as Telegram does, a newer getUpdates ends the one waiting (409 below)
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), self.max_poll)
        limit = int(params.get("limit") or 100)
        if offset > 0:
            self.confirmed = max(self.confirmed, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if poll != self._polls:
                self.conflicts += 1
                raise ApiError(CONFLICT, CONFLICT_MESSAGE)
            if self.updates or loop.time() >= deadline or self._stopping:
                return self.updates[:limit]
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
            except TimeoutError:
                return self.updates[:limit]

    async def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = {}
        if str(params.get("drop_pending_updates")).lower() == "true":
            self.updates.clear()
        return True

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = {k: params[k] for k in ("url", "secret_token", "allowed_updates") if k in params}
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }

    async def _m_setMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        commands = params["commands"]
        for command in commands:
            if not (1 <= len(command["description"]) <= 256) or not command["command"].islower():
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[params.get("language_code") or None] = commands
        return True

    async def _m_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = self._chat(params)
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = _markup(params)
        return self._record(Sent(0, chat_id, "text", text=text, reply_markup=markup), {"text": text})

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = self._chat(params)
        data, file_id = self._photo_input(params.get("photo"), files, "photo")
        caption = _caption(params.get("caption"))
        content: dict[str, Any] = {"photo": self._photo_sizes(data, file_id)}
        if caption:
            content["caption"] = caption
        sent = Sent(
            0, chat_id, "photo", text=caption, reply_markup=_markup(params), photo=data, file_id=file_id
        )
        return self._record(sent, content)

    async def _m_sendMediaGroup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = self._chat(params)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album (2-10)")
        group = f"G{next(self._file_ids)}"
        inputs = []
        for item in media:  # check them all before sending any, as Telegram does
            if item.get("type") != "photo":
                raise ApiError(400, "Bad Request: only photos here")
            inputs.append((*self._photo_input(item.get("media"), files, None), _caption(item.get("caption"))))
        results = []
        for data, file_id, caption in inputs:
            content: dict[str, Any] = {"photo": self._photo_sizes(data, file_id), "media_group_id": group}
            if caption:
                content["caption"] = caption
            sent = Sent(0, chat_id, "photo", text=caption, photo=data, file_id=file_id, media_group_id=group)
            results.append(self._record(sent, content))
        return results

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = self._chat(params)
        value = params.get("document")
        name = value.removeprefix("attach://") if isinstance(value, str) else "document"
        data = files.get(name) or files.get("document")
        if data is None:
            raise ApiError(400, "Bad Request: there is no document in the request")
        if len(data) > 50 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        sent = Sent(0, chat_id, "document", photo=data, file_id=self.add_file(data))
        return self._record(
            sent, {"document": {"file_id": sent.file_id, "file_unique_id": "u" + sent.file_id}}
        )

    async def _m_sendLocation(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = self._chat(params)
        lat, lon = float(params["latitude"]), float(params["longitude"])
        content = {"location": {"latitude": lat, "longitude": lon}}
        return self._record(
            Sent(0, chat_id, "location", location=(lat, lon), reply_markup=_markup(params)), content
        )

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        sent = self._find(params)
        markup = _markup(params)
        if markup == sent.reply_markup or (not markup and not sent.buttons()):
            raise ApiError(400, "Bad Request: message is not modified")
        sent.reply_markup = markup
        sent.edits += 1
        return self._message_json(sent)

    async def _m_editMessageText(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        sent = self._find(params)
        sent.text = str(params.get("text", ""))
        sent.reply_markup = _markup(params)
        sent.edits += 1
        return self._message_json(sent)

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.callback_answers.append(str(params["callback_query_id"]))
        return True

    async def _m_sendChatAction(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        action = str(params.get("action", ""))
        if action not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((self._chat(params), action))
        return True

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path = f"photos/file_{len(self._paths)}.jpg"
        self._paths[path] = file_id
        data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(data),
            "file_path": path,
        }

    # --- helpers ---------------------------------------------------------------------------------------
    def _chat(self, params: dict[str, Any]) -> int:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _find(self, params: dict[str, Any]) -> Sent:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for sent in self.sent:
            if (sent.chat_id, sent.message_id) == (chat_id, message_id):
                return sent
        raise ApiError(400, "Bad Request: message to edit not found")

    def _photo_input(self, value: Any, files: dict[str, bytes], field_name: str | None) -> tuple[bytes, str]:
        if isinstance(value, str) and value.startswith("attach://"):
            data = files.get(value.removeprefix("attach://"))
            if data is None:
                raise ApiError(400, f"Bad Request: file {value} not found in the request")
            return data, self.add_file(data)
        if field_name is not None and field_name in files:
            return files[field_name], self.add_file(files[field_name])
        if isinstance(value, str) and value in self.files:
            return self.files[value], value
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _photo_sizes(self, data: bytes, file_id: str) -> list[dict[str, Any]]:
        thumb = self.add_file(data[:64])
        return [
            {"file_id": thumb, "file_unique_id": "u" + thumb, "width": 90, "height": 60, "file_size": 64},
            {
                "file_id": file_id,
                "file_unique_id": "u" + file_id,
                "width": 800,
                "height": 600,
                "file_size": len(data),
            },
        ]

    def _record(self, sent: Sent, content: dict[str, Any]) -> dict[str, Any]:
        sent.message_id = next(self._message_ids)
        sent.raw = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": "private", "first_name": "Resident"},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Otklik", "username": self.username},
            **content,
        }
        self.sent.append(sent)
        return self._message_json(sent)

    @staticmethod
    def _message_json(sent: Sent) -> dict[str, Any]:
        raw = dict(sent.raw)
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            raw["reply_markup"] = sent.reply_markup
        return raw

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            else:
                params[key] = value
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params, files


def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    if not markup:
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if not button.get("text"):
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            web_app = button.get("web_app")
            if web_app is not None and not str(web_app.get("url", "")).startswith("https://"):
                raise ApiError(
                    400,
                    "Bad Request: inline keyboard button Web App URL is invalid: Only HTTPS links are allowed",  # noqa: E501
                )
    return markup


CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


def _caption(value: Any) -> str:
    caption = str(value or "")
    if utf16_len(caption) > 1024:
        raise ApiError(400, "Bad Request: message caption is too long")
    return caption


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return web.json_response(body, status=exc.code)


# --- users ---------------------------------------------------------------------------------------------
Deliver = Callable[[list[dict[str, Any]]], Awaitable[None]]


class TelegramUser(User[Sent]):
    """A resident (or staff member) in a private chat with the bot.

    Each action builds the updates Telegram would send, delivers them with `deliver` (which returns once the
    bot has handled them) and keeps the bot's new messages to this chat in `replies`.
    """

    def __init__(
        self,
        fake: FakeTelegram,
        deliver: Deliver,
        user_id: int,
        *,
        language: str = "ru",
        name: str = "Resident",
    ) -> None:
        self.fake = fake
        self.deliver = deliver
        self.user_id = user_id
        self.language = language
        self.name = name
        self.replies: list[Sent] = []

    languages = ("ru", "en")  # a chat's language follows the client's, which a test may change midway

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.user_id, "is_bot": False, "first_name": self.name, "language_code": self.language}

    def message(self, **content: Any) -> dict[str, Any]:
        return {
            "update_id": self.fake.new_update_id(),
            "message": {
                "message_id": self.fake.new_message_id(),
                "date": int(time.time()),
                "chat": {"id": self.user_id, "type": "private", "first_name": self.name},
                "from": self.user,
                **content,
            },
        }

    async def send(self, *updates: dict[str, Any]) -> list[Sent]:
        before = len(self.fake.sent)
        await self.deliver(list(updates))
        self.replies = [m for m in self.fake.sent[before:] if m.chat_id == self.user_id]
        return self.replies

    async def say(self, text: str) -> list[Sent]:
        return await self.send(self.message(text=text))

    async def command(self, name: str, args: str = "") -> list[Sent]:
        text = f"/{name} {args}".strip()
        return await self.send(
            self.message(text=text, entities=[{"type": "bot_command", "offset": 0, "length": len(name) + 1}])
        )

    async def pin(self, lat: float, lon: float) -> list[Sent]:
        return await self.send(self.message(location={"latitude": lat, "longitude": lon}))

    def photo_content(self, data: bytes) -> dict[str, Any]:
        """Two sizes, as Telegram sends them: a thumbnail and the photo itself (the one to download)."""
        thumb = self.fake.add_file(jpeg_bytes((0, 0, 0), (8, 6)))
        full = self.fake.add_file(data)
        return {
            "photo": [
                {
                    "file_id": thumb,
                    "file_unique_id": "u" + thumb,
                    "width": 90,
                    "height": 68,
                    "file_size": 300,
                },
                {
                    "file_id": full,
                    "file_unique_id": "u" + full,
                    "width": 1280,
                    "height": 960,
                    "file_size": len(data),
                },
            ]
        }

    async def photos(self, *images: bytes, caption: str | None = None) -> list[Sent]:
        """One photo, or an album (one media group: several updates delivered at once)."""
        group = {"media_group_id": f"album-{self.fake.new_message_id()}"} if len(images) > 1 else {}
        updates = []
        for index, data in enumerate(images):
            extra = {"caption": caption} if caption and index == 0 else {}
            updates.append(self.message(**self.photo_content(data), **group, **extra))
        return await self.send(*updates)

    async def sticker(self) -> list[Sent]:
        file_id = self.fake.add_file(b"webp")
        sticker = {"file_id": file_id, "file_unique_id": "u" + file_id, "type": "regular", "emoji": "👍"}
        sticker.update(width=512, height=512, is_animated=False, is_video=False)
        return await self.send(self.message(sticker=sticker))

    async def voice(self) -> list[Sent]:
        file_id = self.fake.add_file(b"ogg")
        return await self.send(
            self.message(voice={"file_id": file_id, "file_unique_id": "u" + file_id, "duration": 3})
        )

    async def document(
        self, name: str = "act.pdf", mime_type: str = "application/pdf", data: bytes = b"%PDF"
    ) -> list[Sent]:
        file_id = self.fake.add_file(data)
        return await self.send(
            self.message(
                document={
                    "file_id": file_id,
                    "file_unique_id": "u" + file_id,
                    "file_name": name,
                    "mime_type": mime_type,
                    "file_size": len(data),
                }
            )
        )

    def callback(self, message: Sent, data: str) -> dict[str, Any]:
        return {
            "update_id": self.fake.new_update_id(),
            "callback_query": {
                "id": f"cq{self.fake.new_message_id()}",
                "from": self.user,
                "message": FakeTelegram._message_json(message),
                "chat_instance": f"ci{self.user_id}",
                "data": data,
            },
        }

    def pressable(self) -> list[Sent]:
        """Inline buttons stay on every message: the newest with the button is the one pressed."""
        return list(reversed(self.fake.to(self.user_id)))

    async def tap(self, message: Sent, data: str) -> list[Sent]:
        return await self.send(self.callback(message, data))

    def text_of(self, message: Sent) -> str | None:
        return message.text if message.kind == "text" else None

    def buttons_of(self, message: Sent) -> list[tuple[str, str]]:
        return message.buttons()


def text_is_any(text: str, key: str) -> bool:
    """The text was made from catalogue `key` in either language."""
    return any(text_is(Reply(text=text), key, lang) for lang in ("ru", "en"))
