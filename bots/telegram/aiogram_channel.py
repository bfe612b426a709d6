"""`BotApi` through aiogram 3: its Bot, session, types and errors — none of its dispatcher.

aiogram's polling acknowledges updates before handling them and its handlers run sync filters in threads
(DESIGN.md §9–10); our pipeline and poller do that part, so here aiogram only speaks the Bot API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast

from bots.telegram.aiogram_import import (  # first: aiogram's types are built on first use
    resolve_with_types,
    types_namespace,
)

# isort: split
import aiohttp
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageReplyMarkup,
    GetFile,
    GetMe,
    GetUpdates,
    SendChatAction,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    SetWebhook,
)
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InputMediaPhoto,
)

from bots.telegram.api import (
    ALLOWED_UPDATES,
    NO_LINK_PREVIEW,
    Failure,
    FileTooBig,
    Markup,
    Upload,
    largest_file_id,
    markup_json,
    parse_update,
)


# aiogram's own methods, answered as plain JSON: the request is built and the answer checked as aiogram does,
# but the `Message` a send returns is not turned into aiogram's pydantic objects, of which we would read one
# or two fields — that parsing was the largest part of a call's CPU (issue 17, bench/peers.py).
class _RawGetUpdates(GetUpdates):
    __returning__ = list[dict[str, Any]]


class _RawSendMessage(SendMessage):
    """Its keyboard and preview options given as the Bot API's JSON (`markup_json`), which aiogram's session
    sends as it is: no aiogram objects built and dumped again for the same keyboard on every message."""

    __returning__ = dict[str, Any]
    reply_markup: str | None = None  # type: ignore[assignment]
    link_preview_options: str | None = None  # type: ignore[assignment]


class _RawSendPhoto(SendPhoto):
    __returning__ = dict[str, Any]


class _RawSendMediaGroup(SendMediaGroup):
    __returning__ = list[dict[str, Any]]


class _RawSendLocation(SendLocation):
    __returning__ = dict[str, Any]


class _RawEditMessageReplyMarkup(EditMessageReplyMarkup):
    __returning__ = dict[str, Any] | bool


class _RawGetFile(GetFile):
    __returning__ = dict[str, Any]


_RAW = (
    _RawGetUpdates,
    _RawSendMessage,
    _RawSendPhoto,
    _RawSendMediaGroup,
    _RawSendLocation,
    _RawEditMessageReplyMarkup,
    _RawGetFile,
)
for _raw in _RAW:  # resolved in aiogram's types namespace, as aiogram_import.py does for aiogram's methods
    _raw.__pydantic_parent_namespace__ = {
        **(types_namespace() or {}),
        **(_raw.__pydantic_parent_namespace__ or {}),
    }

_USED = (
    *_RAW,
    AnswerCallbackQuery,
    DeleteWebhook,
    GetMe,
    SendChatAction,
    SetMyCommands,
    SetWebhook,
)
_HELD: list[type] = []
"""The `Response[T]` classes aiogram parametrises on every call: pydantic caches them weakly, so whenever
the collector had freed one, the next call rebuilt it (a schema build, 10–30 ms; 1.2× the throughput when
held — issue 17, DESIGN.md §10). Held here for the methods we call."""


def _hold_response_types() -> None:
    if not _HELD:
        _HELD.extend(Response[method.__returning__] for method in _USED)
        for response in _HELD:
            resolve_with_types(response)


class _JsonSession(AiohttpSession):
    """aiogram's aiohttp session, sending a call without files as a JSON body instead of a form.

    aiogram posts every call as a form, which aiohttp URL-encodes with `urllib.parse.quote_plus`: a Python
    loop over every byte, three per Cyrillic letter — a third of the bot's CPU per update answering `/help`
    (issue 17, `bench/telegram_channel.py --profile`). The Bot API takes the same parameters as JSON (each
    value as aiogram prepares it for the form; the server reads a JSON string field as it reads a form
    field). A call with files is still a multipart form, aiogram's own. The answer is checked as aiogram
    does, with its errors; a successful one to our `_Raw…` methods is the JSON's `result` as it is (their
    `Response[dict]` would only have copied it)."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        files: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        # Every field of an aiogram method defaults to None or to the bot's `DefaultBotProperties`: while
        # those are empty (ours are), the parameters given are all there is to send. Dumping all ~20 fields
        # of a `SendMessage` and preparing each was most of a call's CPU after the form (issue 17).
        # (Only at the top: an object inside, e.g. an `InputMediaPhoto`, is dumped whole by `prepare_value`.)
        if bot.default == _NO_DEFAULTS:
            given = method.model_fields_set
            values = ((key, getattr(method, key)) for key in type(method).model_fields if key in given)
        else:
            values = iter(method.model_dump(warnings=False).items())
        for key, value in values:
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:  # as `build_form_data`: what is unset (None, a default of none) is left out
                fields[key] = prepared
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=json.dumps(fields, ensure_ascii=False).encode(),
                headers=_JSON,
                timeout=self.timeout if timeout is None else timeout,
            ) as response:
                content = (await response.read()).decode(errors="replace")
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except aiohttp.ClientError as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        if isinstance(method, _RAW) and response.status == HTTPStatus.OK:
            with contextlib.suppress(ValueError):
                answer = json.loads(content)
                if isinstance(answer, dict) and answer.get("ok") is True and "result" in answer:
                    return cast(TelegramType, answer["result"])
        return self.check_response(bot, method, response.status, content).result


_NO_DEFAULTS = DefaultBotProperties()
_JSON = {"Content-Type": "application/json; charset=utf-8"}


class AiogramApi:
    library = "aiogram"

    def __init__(self, token: str, api_url: str, *, request_timeout: int = 30) -> None:
        self.bot_id = token.split(":", 1)[0]
        self.username = ""
        self.request_timeout = request_timeout
        session = _JsonSession(api=TelegramAPIServer.from_base(api_url), timeout=request_timeout)
        self.bot = Bot(token, session=session)
        _hold_response_types()

    async def start(self) -> None:
        me = await self.bot.get_me()
        self.username = me.username or ""

    async def close(self) -> None:
        await self.bot.session.close()

    parse_update = staticmethod(parse_update)

    async def get_updates(self, offset: int | None, timeout: int, limit: int) -> Sequence[dict[str, Any]]:
        method = _RawGetUpdates(
            offset=offset, timeout=timeout, limit=limit, allowed_updates=list(ALLOWED_UPDATES)
        )
        return await self.bot(method, request_timeout=timeout + self.request_timeout)

    async def delete_webhook(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)

    async def set_webhook(self, url: str, secret: str) -> None:
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))

    async def set_commands(self, commands: Sequence[tuple[str, str]], language: str | None) -> None:
        await self.bot.set_my_commands(
            [BotCommand(command=name, description=text) for name, text in commands], language_code=language
        )

    async def download(self, file_id: str) -> bytes:
        file = await self.bot(_RawGetFile(file_id=file_id))
        if not file.get("file_path"):
            raise FileTooBig(file_id)
        buffer = await self.bot.download_file(file["file_path"], timeout=60)
        assert buffer is not None
        return buffer.read()

    async def send_text(self, chat_id: int, text: str, markup: Markup) -> int:
        method = _RawSendMessage(
            chat_id=chat_id, text=text, reply_markup=markup_json(markup), link_preview_options=NO_LINK_PREVIEW
        )
        return int((await self.bot(method))["message_id"])

    async def send_photo(self, chat_id: int, photo: Upload, caption: str | None) -> str:
        message = await self.bot(_RawSendPhoto(chat_id=chat_id, photo=_file(photo), caption=caption))
        return largest_file_id(message)

    async def send_album(self, chat_id: int, photos: Sequence[Upload], caption: str | None) -> list[str]:
        media = [
            InputMediaPhoto(media=_file(photo), caption=caption if index == 0 else None)
            for index, photo in enumerate(photos)
        ]
        messages = await self.bot(_RawSendMediaGroup(chat_id=chat_id, media=media))  # type: ignore[arg-type]
        return [largest_file_id(m) for m in messages]

    async def send_location(self, chat_id: int, lat: float, lon: float) -> None:
        await self.bot(_RawSendLocation(chat_id=chat_id, latitude=lat, longitude=lon))

    async def send_document(self, chat_id: int, filename: str, data: bytes) -> None:
        await self.bot.send_document(chat_id, BufferedInputFile(data, filename=filename))

    async def remove_inline_keyboard(self, chat_id: int, message_id: int) -> None:
        await self.bot(_RawEditMessageReplyMarkup(chat_id=chat_id, message_id=message_id))

    async def answer_callback(self, callback_id: str) -> None:
        await self.bot.answer_callback_query(callback_id)

    async def send_typing(self, chat_id: int) -> None:
        await self.bot.send_chat_action(chat_id, "typing")

    def failure(self, exc: BaseException) -> Failure | None:
        message = str(exc)
        if isinstance(exc, TelegramRetryAfter):
            return Failure("retry_after", message, float(exc.retry_after))
        if isinstance(exc, TelegramForbiddenError):
            return Failure("forbidden", message)
        if isinstance(exc, TelegramUnauthorizedError):
            return Failure("unauthorized", message)
        if isinstance(exc, TelegramConflictError):
            return Failure("conflict", message)
        if isinstance(
            exc, TelegramBadRequest | TelegramNotFound | TelegramMigrateToChat | TelegramEntityTooLarge
        ):
            return Failure("bad_request", message)
        if isinstance(exc, TelegramNetworkError | aiohttp.ClientError | asyncio.TimeoutError):
            return Failure("network", message or type(exc).__name__)
        if isinstance(exc, TelegramServerError | TelegramAPIError):
            return Failure("server", message)
        return None


def _file(photo: Upload) -> str | BufferedInputFile:
    if photo.file_id is not None:
        return photo.file_id
    assert photo.data is not None
    return BufferedInputFile(photo.data, filename=f"{photo.sha256[:16]}.jpg")
