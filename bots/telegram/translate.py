"""Telegram update → `Incoming`, the same for aiogram and python-telegram-bot.

It reads the Bot API's JSON as Telegram sent it, not either library's `Update`: we read a dozen fields of an
update, and building the library's objects for them (pydantic models in aiogram, `de_json` in PTB) cost more
CPU than the rest of taking it in — a fifth of PTB's CPU per update answering `/help` (issue 17,
`bench/telegram_channel.py --profile`). One translation of the one format serves both libraries, so neither
can drift. What needs the network — downloading a photo — is left to the pipeline: a `Draft` names the file
to fetch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.messages import ChatRef, Incoming, Location

CHANNEL = "telegram"
MAX_DOWNLOAD = 20 * 1024 * 1024
"""The Bot API serves files up to 20 MB; bigger ones have no `file_path`."""

# Message kinds the bot cannot use, in the order they are checked: a GIF comes as both `animation` and
# `document`, so `animation` goes first. Names match the `input.kind.*` texts; unknown ones read "other".
UNSUPPORTED_KINDS = (
    "sticker",
    "voice",
    "video_note",
    "animation",
    "audio",
    "video",
    "document",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "paid_media",
    "checklist",
)
IMAGE_DOCUMENTS = frozenset({"image/jpeg", "image/png", "image/webp"})
"""A photo sent "as a file" (uncompressed) is still a photo to us."""


@dataclass(frozen=True, slots=True)
class FileRef:
    file_id: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """One update, translated as far as possible without the network."""

    update_id: int
    chat_id: int | None
    """Where answers go; None for updates that need no answer (edited messages, service messages, …)."""
    incoming: Incoming | None = None
    photo: FileRef | None = None
    """The largest size of an attached photo, still to be downloaded and stored."""
    media_group_id: str | None = None
    message_id: int = 0
    callback_id: str | None = None
    callback_message_id: int | None = None


def translate(update: dict[str, Any], *, username: str = "", bot: str = "") -> Draft:
    """`update` is the Bot API's JSON as Telegram sent it. `username` is the bot's own: `/start@OtherBot`
    in a group is not for us. `bot`: its id, for `Incoming.bot`. The `Incoming` is built once, with what the
    message says (no copies per field)."""
    update_id = int(update["update_id"])
    callback = update.get("callback_query")
    if callback is not None:
        return _callback(update_id, callback, bot)
    message = update.get("message")
    if message is None:
        return Draft(update_id, None)
    chat = message["chat"]
    said = _content(message, username)
    if said is None:
        if chat.get("type", "private") != "private":  # joins, pins, title changes in a group: not to us
            return Draft(update_id, None)
        said = {"unsupported": "other"}
    photo = said.pop("photo", None)
    user = message.get("from")
    incoming = Incoming(
        ChatRef(CHANNEL, str(chat["id"]), str(user["id"] if user is not None else chat["id"])),
        str(update_id),
        user.get("language_code") if user is not None else None,
        display_name=_name(user),
        bot=bot,
        **said,
    )
    return Draft(
        update_id,
        int(chat["id"]),
        incoming,
        photo=photo,
        media_group_id=message.get("media_group_id"),
        message_id=int(message["message_id"]),
    )


def _callback(update_id: int, callback: dict[str, Any], bot: str) -> Draft:
    user = callback["from"]
    message = callback.get("message")  # none for inline-mode messages; maybe "inaccessible" (old): has ids
    chat_id = int(message["chat"]["id"] if message is not None else user["id"])
    incoming = Incoming(
        ChatRef(CHANNEL, str(chat_id), str(user["id"])),
        str(update_id),
        user.get("language_code"),
        button=callback.get("data") or "",
        display_name=_name(user),
        bot=bot,
    )
    return Draft(
        update_id,
        chat_id,
        incoming,
        callback_id=str(callback["id"]),
        callback_message_id=int(message["message_id"]) if message is not None else None,
    )


def _content(message: dict[str, Any], username: str) -> dict[str, Any] | None:
    """What the message says, as `Incoming` fields (and `photo`, the file to fetch); None when nothing."""
    text = message.get("text")
    caption = text if text is not None else message.get("caption")
    photo = _largest_photo(message)
    if photo is not None:
        # The photo wins over a caption (`input_kind`), but the caption is kept.
        return {"text": caption, "photo": photo}
    location = message.get("location")
    if location is not None:
        return {"location": Location(float(location["latitude"]), float(location["longitude"]))}
    contact = message.get("contact")
    if contact is not None:
        return {"contact": contact.get("phone_number") or ""}
    if text is not None:
        command = parse_command(text, username)
        if command is not None:
            name, args = command
            return {"command": name, "args": args}
        return {"text": text}
    for kind in UNSUPPORTED_KINDS:
        if message.get(kind) is not None:
            return {"unsupported": kind, "text": caption}
    return None


def _largest_photo(message: dict[str, Any]) -> FileRef | None:
    sizes = message.get("photo")
    if sizes:
        best = max(sizes, key=lambda s: (s["width"] * s["height"], s.get("file_size") or 0))
        return FileRef(best["file_id"], best.get("file_size"))
    document = message.get("document")
    if document is not None and (document.get("mime_type") or "") in IMAGE_DOCUMENTS:
        return FileRef(document["file_id"], document.get("file_size"))
    return None


def parse_command(text: str, username: str = "") -> tuple[str, str] | None:
    """`/new`, `/language en`, `/start@OtklikBot payload` → (name, args); None for plain text."""
    if not text.startswith("/"):
        return None
    head, _, args = text[1:].partition(" ")
    head, _, newline_args = head.partition("\n")
    name, _, target = head.partition("@")
    if not name or (target and username and target.casefold() != username.casefold()):
        return None
    return name, (newline_args + " " + args).strip() if newline_args else args.strip()


def _name(user: dict[str, Any] | None) -> str:
    if user is None:
        return ""
    return " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
