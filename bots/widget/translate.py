"""A widget action (the JSON the panel posts) → an `Incoming`, parsed strictly: everything from the browser is
hostile. Anything malformed is a `BadAction`, answered 400 in the resident's language; nothing reaches the
engine that is not one of the kinds below.

    {"id": "<8–64 of A-Z a-z 0-9 _ ->", "kind": "text",     "text": "…"}
    {"id": "…",                          "kind": "button",   "data": "…"}      data as the reply gave it
    {"id": "…",                          "kind": "location", "lat": 52.28, "lon": 104.28}
`id` is chosen by the browser per action and kept on a retry: it is the event key, so a request repeated
after a lost answer is handled once. A text starting with `/` is a command, as in every channel.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

from bots.widget import CHANNEL
from core.messages import ChatRef, Incoming, Location

BODY_MAX = 96 * 1024
"""Bytes of one action: room for a 20,000-character text in any script, which the engine then answers."""
TEXT_MAX = 20_000
DATA_MAX = 256
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_FIELDS = {
    "text": {"id", "kind", "text", "lang"},
    "button": {"id", "kind", "data", "lang"},
    "location": {"id", "kind", "lat", "lon", "lang"},
}


class BadAction(ValueError):
    """The request is not an action the widget sends; `code` names what was wrong (for the log and tests)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _no_constants(name: str) -> float:
    raise BadAction("json")  # NaN, Infinity: not JSON as browsers write it


def parse_body(raw: bytes) -> dict[str, Any]:
    if len(raw) > BODY_MAX:
        raise BadAction("too_large")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadAction("json") from None
    if not isinstance(value, dict):
        raise BadAction("json")
    return value


def event_id(value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadAction("id")
    return value


def language(value: object) -> str | None:
    return value if value in ("ru", "en") else None


def translate(body: dict[str, Any], chat_id: str, default_language: str | None) -> Incoming:
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise BadAction("kind")
    if set(body) - _FIELDS[kind]:
        raise BadAction("fields")
    chat = ChatRef(CHANNEL, chat_id, chat_id)
    lang = language(body.get("lang")) or default_language
    base = Incoming(chat, "w" + event_id(body.get("id")), lang)
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, str) or len(text) > TEXT_MAX:
            raise BadAction("text")
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1 and "\n" not in stripped:
            command, _, args = stripped[1:].partition(" ")
            return _replace(base, command=command[:32], args=args.strip()[:200])
        return _replace(base, text=text)
    if kind == "button":
        data = body.get("data")
        if not isinstance(data, str) or not data or len(data) > DATA_MAX:
            raise BadAction("data")
        return _replace(base, button=data)
    lat, lon = body.get("lat"), body.get("lon")
    if not all(_number(v) for v in (lat, lon)):
        raise BadAction("location")
    assert isinstance(lat, int | float) and isinstance(lon, int | float)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadAction("location")
    return _replace(base, location=Location(float(lat), float(lon)))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _replace(base: Incoming, **fields: Any) -> Incoming:
    return replace(base, **fields)
