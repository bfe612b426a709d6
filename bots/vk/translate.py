"""VK events → `Incoming` (DESIGN.md §3): every input kind reaches the engine, named when it cannot be used.

Events are read as the plain dicts VK sends (Bots Long Poll and Callback API deliver the same objects):
parsing them into vkbottle's pydantic models would cost more than everything else we do per update
(DESIGN.md §10), and we read a handful of fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.messages import ChatRef, Incoming, Location, Photo

CHANNEL = "vk"
MESSAGE_NEW = "message_new"
MESSAGE_EVENT = "message_event"

# client_info.lang_id → language code (VK's numbering); the engine falls back to the default for the rest.
VK_LANGUAGES = {0: "ru", 1: "uk", 2: "be", 3: "en", 4: "es", 5: "fi", 6: "de", 7: "it"}

# Attachment types we cannot use → `Incoming.unsupported` kinds (core/locales `input.kind.*`).
UNSUPPORTED_KINDS = {
    "sticker": "sticker",
    "graffiti": "sticker",
    "audio": "audio",
    "audio_message": "voice",
    "video": "video",
    "doc": "document",
    "wall": "wall_post",
    "wall_reply": "wall_post",
    "link": "link",
    "poll": "poll",
}

# Photo size letters from smallest to largest, for photos whose sizes carry no dimensions.
SIZE_ORDER = {letter: rank for rank, letter in enumerate("smopqrxyzw")}

PAYLOAD_KEY = "b"
"""Our buttons carry `{"b": data}`; VK's own *Start* button sends `{"command": "start"}`."""

_MENTION = re.compile(r"^\[(?:club|public)\d+\|[^\]]*\][\s,:]*")


@dataclass(frozen=True, slots=True)
class ClientCaps:
    """What the user's VK client can show (`client_info`); unknown clients are assumed current."""

    keyboard: bool = True
    inline_keyboard: bool = True
    callback: bool = True
    location: bool = True
    open_app: bool = True

    @classmethod
    def of(cls, client_info: Mapping[str, Any] | None) -> ClientCaps:
        if not client_info:
            return cls()
        actions = client_info.get("button_actions")
        return cls(
            keyboard=bool(client_info.get("keyboard", True)),
            inline_keyboard=bool(client_info.get("inline_keyboard", True)),
            callback=actions is None or "callback" in actions,
            location=actions is None or "location" in actions,
            open_app=actions is None or "open_app" in actions,
        )


PhotoFetcher = Callable[[str], Awaitable[Photo | str]]
"""Downloads a photo URL and stores it: the photo, or an `unsupported` kind (`bad_photo`, …)."""


def payload_data(payload: Any) -> dict[str, Any] | None:
    """A button payload: a JSON string in messages, already an object in `message_event`."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    return payload if isinstance(payload, dict) else None


def encode_payload(data: str) -> str:
    return json.dumps({PAYLOAD_KEY: data}, ensure_ascii=False, separators=(",", ":"))


def language(client_info: Mapping[str, Any] | None) -> str | None:
    if not client_info:
        return None
    lang_id = client_info.get("lang_id")
    return VK_LANGUAGES.get(lang_id) if isinstance(lang_id, int) else None


def event_key(update: Mapping[str, Any], group_id: int | None) -> str:
    """VK's `event_id`; older API versions lack it, then the message's place in its conversation."""
    if update.get("event_id"):
        return str(update["event_id"])
    obj = update.get("object") or {}
    if update.get("type") == MESSAGE_EVENT:
        return f"cb:{obj.get('event_id', '')}"
    message = obj.get("message") or obj
    group = group_id or update.get("group_id", "")
    return f"{group}:{message.get('peer_id')}:{message.get('conversation_message_id')}"


def peer_of(update: Mapping[str, Any]) -> int | None:
    """The conversation an event belongs to (events of one peer are handled in order)."""
    obj = update.get("object") or {}
    if update.get("type") == MESSAGE_NEW:
        peer = (obj.get("message") or {}).get("peer_id")
    elif update.get("type") == MESSAGE_EVENT:
        peer = obj.get("peer_id")
    else:
        return None
    return peer if isinstance(peer, int) else None


def largest_photo_url(photo: Mapping[str, Any]) -> str | None:
    candidates = [size for size in photo.get("sizes") or () if isinstance(size, dict)]
    if isinstance(photo.get("orig_photo"), dict):
        candidates.append(photo["orig_photo"])
    candidates = [c for c in candidates if c.get("url")]
    if not candidates:
        return None
    best = max(
        candidates,
        key=lambda c: ((c.get("width") or 0) * (c.get("height") or 0), SIZE_ORDER.get(c.get("type", ""), -1)),
    )
    return str(best["url"])


def parse_text(text: str) -> dict[str, Any]:
    """`/command args` → command fields; anything else is text. A leading @mention (chats) is dropped."""
    text = _MENTION.sub("", text, count=1) if text.startswith("[") else text
    stripped = text.strip()
    if stripped.startswith("/") and len(stripped) > 1 and not stripped[1].isspace():
        command, _, args = stripped[1:].partition(" ")
        return {"command": command, "args": args.strip()}
    return {"text": text}


async def translate_message(
    update: Mapping[str, Any], group_id: int | None, fetch_photo: PhotoFetcher
) -> tuple[Incoming, ClientCaps]:
    """A `message_new` event: text, command, button payload, geo point, photos, or what we cannot use."""
    obj = update.get("object") or {}
    message = obj.get("message") or {}
    client_info = obj.get("client_info")
    chat = ChatRef(CHANNEL, str(message.get("peer_id")), str(message.get("from_id", "")))
    base = Incoming(chat, event_key(update, group_id), language(client_info))
    return _with(base, **await _message_fields(message, fetch_photo)), ClientCaps.of(client_info)


async def _message_fields(message: Mapping[str, Any], fetch_photo: PhotoFetcher) -> dict[str, Any]:
    text = message.get("text") or ""
    payload = payload_data(message.get("payload"))
    if payload is not None:
        if isinstance(payload.get(PAYLOAD_KEY), str):
            return {"button": payload[PAYLOAD_KEY]}
        if payload.get("command") == "start":
            return {"command": "start"}

    fields: dict[str, Any] = {}
    coordinates = (message.get("geo") or {}).get("coordinates") or {}
    if "latitude" in coordinates and "longitude" in coordinates:
        try:
            fields["location"] = Location(float(coordinates["latitude"]), float(coordinates["longitude"]))
        except (TypeError, ValueError):
            fields["unsupported"] = "other"

    photo_urls: list[str | None] = []
    unsupported: str | None = None
    for attachment in message.get("attachments") or ():
        kind = attachment.get("type")
        if kind == "photo":
            photo_urls.append(largest_photo_url(attachment.get("photo") or {}))
        elif kind == "link" and text.strip():
            continue  # VK attaches a preview to any text with a URL: the text is what the user wrote
        elif unsupported is None:
            unsupported = UNSUPPORTED_KINDS.get(kind, "other")

    # Everything the message carries goes to the engine, which decides what the current step takes.
    if photo_urls:
        photos: list[Photo] = []
        for url in photo_urls:
            stored = await fetch_photo(url) if url else "bad_photo"
            if isinstance(stored, str):
                fields["unsupported"] = stored
                break
            photos.append(stored)
        else:
            fields["photos"] = tuple(photos)
    elif unsupported is not None:
        fields.setdefault("unsupported", unsupported)
    if not fields:
        return parse_text(text)
    if text:
        fields["text"] = text
    return fields


def translate_event(update: Mapping[str, Any], group_id: int | None) -> Incoming:
    """A `message_event` (a callback button was pressed): its payload is the button's data."""
    obj = update.get("object") or {}
    chat = ChatRef(CHANNEL, str(obj.get("peer_id")), str(obj.get("user_id", "")))
    base = Incoming(chat, event_key(update, group_id))
    payload = payload_data(obj.get("payload")) or {}
    data = payload.get(PAYLOAD_KEY)
    if isinstance(data, str):
        return _with(base, button=data)
    if payload.get("command") == "start":
        return _with(base, command="start")
    return _with(base, button="")  # a button we did not make: the engine calls it stale


def _with(base: Incoming, **fields: Any) -> Incoming:
    return replace(base, **fields)
