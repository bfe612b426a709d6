"""A `Reply` → the JSON the panel shows: text, rows of buttons, photos (as links bound to this resident), a
pin, and whether a place is asked (the panel then offers its map and the browser's geolocation, in its own
words, as Telegram adds *Send my location*)."""

from __future__ import annotations

from typing import Any

from bots.widget.identity import Identity
from core.messages import Reply

PHOTO_PATH = "/widget/photo/"


def render(reply: Reply, chat_id: str, identity: Identity) -> dict[str, Any]:
    return {
        "text": reply.text,
        "buttons": [[{"label": label, "data": data} for label, data in row] for row in reply.buttons if row],
        "photos": [photo_url(p.sha256, chat_id, identity) for p in reply.photos if p.sha256],
        "location": (
            {"lat": reply.location.lat, "lon": reply.location.lon} if reply.location is not None else None
        ),
        "ask_location": reply.ask_location,
    }


def photo_url(sha256: str, chat_id: str, identity: Identity) -> str:
    return f"{PHOTO_PATH}{sha256}?s={identity.photo_mac(chat_id, sha256)}"
