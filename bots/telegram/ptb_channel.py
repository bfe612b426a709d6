"""`BotApi` through python-telegram-bot 22: its Bot, requests, types and errors — not its Application.

PTB's Updater queues updates before they are handled and its webhook server is a Tornado app of its own
(DESIGN.md §9); our poller, pipeline and the shared aiohttp route do that part, so here PTB only speaks the
Bot API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import aiohttp
from telegram import (
    Bot,
    BotCommand,
    InputMediaPhoto,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, RequestData

from bots.telegram.api import (
    ALLOWED_UPDATES,
    NO_LINK_PREVIEW,
    Failure,
    FileTooBig,
    Markup,
    Upload,
    markup_json,
    parse_update,
)

IN_FLIGHT = 8
"""Connections kept for the Bot API calls (long polling has a pool of its own)."""
CONNECT_TIMEOUT = 10.0


class _AiohttpRequest(BaseRequest):
    """PTB's networking on aiohttp, through PTB's own extension point (`BaseRequest`), instead of HTTPX.

    httpcore's pool housekeeping (an expiry check of every pooled connection, each a `getpeername` and a
    poll, on every request) was most of the bot's CPU per update in `bench/telegram_channel.py`: PTB handled
    about a third of aiogram's updates per CPU-second, aiogram being on aiohttp (issue 17). PTB still builds
    every request and reads every answer (its errors, `RetryAfter`, `Defaults`); only the HTTP is aiohttp's,
    with aiohttp's errors mapped to PTB's `TimedOut` and `NetworkError` as `HTTPXRequest` maps HTTPX's."""

    def __init__(self, *, connections: int, read_timeout: float) -> None:
        self._connections = connections
        self._read_timeout = read_timeout
        """Also how long a request may wait for a free connection."""
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:  # a bot never started (`otklik outbox flush`) sends too, as HTTPX's did
            await self.initialize()
            assert self._session is not None
        connect = _given(connect_timeout, CONNECT_TIMEOUT)
        timeout = aiohttp.ClientTimeout(
            connect=_given(pool_timeout, self._read_timeout) + connect,
            sock_connect=connect,
            sock_read=_given(read_timeout, self._read_timeout),  # aiohttp has no write timeout
        )
        body, headers = _body(request_data)
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err


_DEFAULT = type(BaseRequest.DEFAULT_NONE)


def _given(value: object, default: float) -> float:
    """A timeout PTB passed, or ours when it passed its "not given" marker."""
    return default if isinstance(value, _DEFAULT) or value is None else float(value)  # type: ignore[arg-type]


def _body(request_data: RequestData | None) -> tuple[aiohttp.FormData | bytes | None, dict[str, str] | None]:
    """The parameters as JSON, or as a multipart form when there are files (as PTB's HTTPX request sends
    them). Not as a URL-encoded form, which HTTPX sent: aiohttp encodes one with `urllib.parse.quote_plus`,
    a Python loop over every byte — a third of the bot's CPU per update answering `/help` (issue 17,
    `bench/telegram_channel.py --profile`). The Bot API reads the same string parameters from JSON."""
    if request_data is None:
        return None, None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:  # `RequestData.json_payload`, in UTF-8 rather than \u escapes, `json_parameters` made once
        return (json.dumps(fields, ensure_ascii=False).encode(), _JSON) if fields else (None, None)
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, content_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=content_type)
    return form, None


_JSON = {"Content-Type": "application/json; charset=utf-8"}


class PtbApi:
    library = "ptb"

    def __init__(self, token: str, api_url: str, *, request_timeout: float = 30.0) -> None:
        self.bot_id = token.split(":", 1)[0]
        self.username = ""
        base = api_url.rstrip("/")
        self._requests = (
            _AiohttpRequest(connections=IN_FLIGHT, read_timeout=request_timeout),
            # Long polling holds its connection for the whole poll: it gets a pool of its own.
            _AiohttpRequest(connections=2, read_timeout=10.0),
        )
        self.bot = Bot(
            token,
            base_url=base + "/bot",
            base_file_url=base + "/file/bot",
            request=self._requests[0],
            get_updates_request=self._requests[1],
        )

    async def start(self) -> None:
        await self.bot.initialize()  # getMe
        self.username = self.bot.username or ""

    async def close(self) -> None:
        await self.bot.shutdown()
        for request in self._requests:  # a bot never started (`otklik outbox flush`) still has clients open
            await request.shutdown()

    parse_update = staticmethod(parse_update)

    async def get_updates(self, offset: int | None, timeout: int, limit: int) -> Sequence[dict[str, Any]]:
        # What `Bot.get_updates` does, minus turning every update into objects (`do_api_request` would
        # warn that `get_updates` exists): the read timeout covers the long poll.
        data = {
            "offset": offset,
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        return await self.bot._post("getUpdates", data, read_timeout=self._requests[1].read_timeout + timeout)

    async def delete_webhook(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)

    async def set_webhook(self, url: str, secret: str) -> None:
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))

    async def set_commands(self, commands: Sequence[tuple[str, str]], language: str | None) -> None:
        await self.bot.set_my_commands(
            [BotCommand(name, text) for name, text in commands], language_code=language
        )

    async def download(self, file_id: str) -> bytes:
        file = await self.bot.get_file(file_id)
        if not file.file_path:
            raise FileTooBig(file_id)
        return bytes(await file.download_as_bytearray(read_timeout=60.0))

    async def _raw(self, endpoint: str, data: dict[str, Any]) -> Any:
        """A Bot API call through PTB's own request building, error mapping and `Defaults`, with its answer
        left as JSON: what `Bot.send_message` and the like do, minus turning the sent `Message` into PTB's
        objects, of which we would read one field — that parsing was the largest part of a call's CPU
        (issue 17, bench/peers.py). `do_api_request` is the public way, but it warns for every method that
        `Bot` has a name for."""
        return await self.bot._post(endpoint, data)

    async def send_text(self, chat_id: int, text: str, markup: Markup) -> int:
        message = await self._raw(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": text,
                "reply_markup": markup_json(markup),
                "link_preview_options": NO_LINK_PREVIEW,
            },
        )
        return int(message["message_id"])

    async def send_photo(self, chat_id: int, photo: Upload, caption: str | None) -> str:
        if photo.file_id is not None:
            message = await self.bot.send_photo(chat_id, photo.file_id, caption=caption)
        else:
            message = await self.bot.send_photo(
                chat_id, photo.data or b"", caption=caption, filename=_filename(photo)
            )
        return message.photo[-1].file_id if message.photo else ""

    async def send_album(self, chat_id: int, photos: Sequence[Upload], caption: str | None) -> list[str]:
        media = [
            InputMediaPhoto(
                photo.file_id or photo.data or b"",
                caption=caption if index == 0 else None,
                filename=None if photo.file_id else _filename(photo),
            )
            for index, photo in enumerate(photos)
        ]
        messages = await self.bot.send_media_group(chat_id, media)
        return [m.photo[-1].file_id if m.photo else "" for m in messages]

    async def send_location(self, chat_id: int, lat: float, lon: float) -> None:
        await self._raw("sendLocation", {"chat_id": chat_id, "latitude": lat, "longitude": lon})

    async def send_document(self, chat_id: int, filename: str, data: bytes) -> None:
        await self.bot.send_document(chat_id, data, filename=filename)

    async def remove_inline_keyboard(self, chat_id: int, message_id: int) -> None:
        await self._raw("editMessageReplyMarkup", {"chat_id": chat_id, "message_id": message_id})

    async def answer_callback(self, callback_id: str) -> None:
        await self.bot.answer_callback_query(callback_id)

    async def send_typing(self, chat_id: int) -> None:
        await self.bot.send_chat_action(chat_id=chat_id, action="typing")

    def failure(self, exc: BaseException) -> Failure | None:
        message = str(exc)
        if isinstance(exc, RetryAfter):
            # The private field: the public one warns about its type changing to timedelta.
            wait = getattr(exc, "_retry_after", None)
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(exc.retry_after)  # type: ignore[arg-type]
            return Failure("retry_after", message, seconds)
        if isinstance(exc, Forbidden):
            return Failure("forbidden", message)
        if isinstance(exc, InvalidToken):
            return Failure("unauthorized", message)
        if isinstance(exc, Conflict):
            return Failure("conflict", message)
        if isinstance(exc, BadRequest | ChatMigrated | EndPointNotFound):  # BadRequest is a NetworkError
            return Failure("bad_request", message)
        if isinstance(exc, NetworkError):
            return Failure("network", message)
        if isinstance(exc, TelegramError):
            return Failure("server", message)
        return None


def _filename(photo: Upload) -> str:
    return f"{photo.sha256[:16]}.jpg"
