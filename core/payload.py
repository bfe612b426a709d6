"""A `Reply` as JSON: the outbox row's payload and the console inbox's (format in storage/outbox.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.messages import ChatRef, Location, Photo, Reply

PAYLOAD_VERSION = 1


def encode_reply(reply: Reply) -> dict[str, Any]:
    return {
        "v": PAYLOAD_VERSION,
        "text": reply.text,
        "buttons": [[[label, data] for label, data in row] for row in reply.buttons],
        "photos": [p.sha256 for p in reply.photos],
        "location": (
            {"lat": reply.location.lat, "lon": reply.location.lon} if reply.location is not None else None
        ),
        "ask_location": reply.ask_location,
        "language": reply.language,
        "extra": dict(reply.extra),
    }


def decode_reply(chat: ChatRef, payload: Mapping[str, Any]) -> Reply:
    location = payload.get("location")
    return Reply(
        text=str(payload.get("text", "")),
        buttons=tuple(
            tuple((str(label), str(data)) for label, data in row) for row in payload.get("buttons", ())
        ),
        ask_location=bool(payload.get("ask_location", False)),
        photos=tuple(Photo(sha) for sha in payload.get("photos", ())),
        location=Location(float(location["lat"]), float(location["lon"])) if location else None,
        chat=chat,
        language=payload.get("language") or None,
        extra={str(k): str(v) for k, v in (payload.get("extra") or {}).items()},
    )
