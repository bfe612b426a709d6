"""What the Telegram channel needs from a Bot API library, in neutral terms.

aiogram and python-telegram-bot each implement `BotApi` in a few lines per method (aiogram_channel.py,
ptb_channel.py); everything else — which calls a `Reply` becomes, rate limits, retries, albums, ordering,
polling offsets, the webhook route — is shared, so the two adapters cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

ALLOWED_UPDATES = ("message", "callback_query")
"""Updates we ask Telegram for; edited messages, reactions, member changes are not user input for us."""


@dataclass(frozen=True, slots=True)
class InlineKeyboard:
    rows: tuple[tuple[tuple[str, str], ...], ...]
    """(label, callback data) rows; data already within Telegram's 64 bytes."""
    web_app: tuple[str, str] | None = None
    """(label, https URL): a Web App button in a row of its own above the others (the widget's map page).
    Only an inline button gives the page signed `initData`: one on a reply keyboard gets none."""


@dataclass(frozen=True, slots=True)
class ReplyKeyboard:
    """A reply keyboard: a *Send my location* button and text buttons that type their label."""

    location_label: str
    rows: tuple[tuple[tuple[str, str], ...], ...] = ()
    """(label, button data) rows: Telegram shows the labels; a typed label stands for its data."""


@dataclass(frozen=True, slots=True)
class RemoveKeyboard:
    pass


Markup = InlineKeyboard | ReplyKeyboard | RemoveKeyboard | None


@dataclass(frozen=True, slots=True)
class Upload:
    """A photo to send: a Telegram file_id this bot already has for it, or the bytes to upload."""

    sha256: str
    file_id: str | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A library exception, classified: `retry_after` (429), `network` (worth retrying), `forbidden` (the
    user blocked the bot), `bad_request` (never going to work as sent), `conflict` (409: a webhook is set
    or another poller runs), `unauthorized` (a wrong token)."""

    kind: Literal["retry_after", "network", "forbidden", "bad_request", "conflict", "unauthorized", "server"]
    message: str
    retry_after: float | None = None


class FileTooBig(Exception):
    """Telegram gave no `file_path`: the file is over the 20 MB the Bot API serves."""


class BotApi(Protocol):
    """One bot, through one library. Chat ids are Telegram's integers."""

    library: str
    bot_id: str
    username: str

    async def start(self) -> None:
        """Open the HTTP session and learn who we are (getMe)."""

    async def close(self) -> None: ...

    def parse_update(self, data: dict[str, Any]) -> dict[str, Any]:
        """A webhook's JSON body or a fetched update → what `Pipeline.submit` takes: the JSON itself
        (`parse_update` below; `translate` reads it)."""

    async def get_updates(self, offset: int | None, timeout: int, limit: int) -> Sequence[dict[str, Any]]:
        """getUpdates, unparsed: the poller fetches updates it already holds again (the offset stays at the
        oldest one in flight) and parses only the new ones."""

    async def delete_webhook(self) -> None: ...

    async def set_webhook(self, url: str, secret: str) -> None: ...

    async def set_commands(self, commands: Sequence[tuple[str, str]], language: str | None) -> None: ...

    async def download(self, file_id: str) -> bytes:
        """getFile, then the file itself from the API server's file URL."""

    async def send_text(self, chat_id: int, text: str, markup: Markup) -> int:
        """Returns the new message's id."""

    async def send_photo(self, chat_id: int, photo: Upload, caption: str | None) -> str:
        """Returns the file_id Telegram now knows the photo by."""

    async def send_album(self, chat_id: int, photos: Sequence[Upload], caption: str | None) -> list[str]:
        """sendMediaGroup of 2–10 photos; the file_ids in order."""

    async def send_location(self, chat_id: int, lat: float, lon: float) -> None: ...

    async def send_document(self, chat_id: int, filename: str, data: bytes) -> None:
        """sendDocument of a file made for the user (the `/mydata` export)."""

    async def remove_inline_keyboard(self, chat_id: int, message_id: int) -> None: ...

    async def answer_callback(self, callback_id: str) -> None: ...

    async def send_typing(self, chat_id: int) -> None:
        """sendChatAction `typing`: "the bot is busy with your message" (it shows for up to 5 seconds)."""

    def failure(self, exc: BaseException) -> Failure | None:
        """Classify a library exception; None for anything that is not an API or network error."""


def parse_update(data: dict[str, Any]) -> dict[str, Any]:
    """Both adapters' `parse_update`: an update is handed on as the Bot API's JSON, not as the library's
    `Update` (translate.py says why); one that is not an object with an integer `update_id` is refused here,
    as the library's parsing refused it."""
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise ValueError("not a Telegram update")
    return data


def largest_file_id(message: dict[str, Any]) -> str:
    """The file_id of the largest size of a sent photo, from the Bot API's `Message` as JSON: the adapters
    read their sends' answers unparsed (parsing them into the library's objects cost more than the call)."""
    sizes = message.get("photo") or ()
    return str(sizes[-1]["file_id"]) if sizes else ""


NO_LINK_PREVIEW = json.dumps({"is_disabled": True})
"""`link_preview_options` of every text we send: a link in a ticket's description shows no preview card."""


@lru_cache(maxsize=1024)
def markup_json(markup: Markup) -> str | None:
    """A keyboard as the Bot API's `reply_markup` JSON. Cached: most keyboards (the menu, the categories, a
    step's buttons) are the same for every resident, and building the library's objects to serialise them
    again cost a tenth of a call's CPU (issue 17)."""
    if isinstance(markup, InlineKeyboard):
        rows = [[{"text": label, "callback_data": data} for label, data in row] for row in markup.rows]
        if markup.web_app is not None:
            label, url = markup.web_app
            rows.insert(0, [{"text": label, "web_app": {"url": url}}])
        return json.dumps({"inline_keyboard": rows}, ensure_ascii=False)
    if isinstance(markup, ReplyKeyboard):
        keys: list[list[dict[str, Any]]] = [[{"text": markup.location_label, "request_location": True}]]
        keys += [[{"text": label} for label, _data in row] for row in markup.rows]
        return json.dumps(
            {"keyboard": keys, "resize_keyboard": True, "one_time_keyboard": True}, ensure_ascii=False
        )
    if isinstance(markup, RemoveKeyboard):
        return '{"remove_keyboard": true}'
    return None
