"""`Reply` → the Bot API calls that show it, within Telegram's limits (DESIGN.md §9).

Order: photos (one `sendPhoto`, or albums of up to 10 with `sendMediaGroup`), then the map pin, then the
text — split at 4096 UTF-16 units on paragraph, line or word boundaries — with the keyboard on its last part,
so the buttons sit right above the input field. The text rides as the photo's caption instead when it fits
in 1024 and nothing else needs a message of its own.

Buttons become an inline keyboard. A reply that asks for the location gets a reply keyboard instead (a
message can carry only one keyboard), with Telegram's *Send my location* button on top and the reply's
buttons as text buttons under it; the sender remembers which label stands for which button. When the
widget's map page is served over https, such a reply is followed by a short message with a Web App button
that opens it (an inline button: only that launch gives the page signed `initData` to return the point with),
so a resident on a desktop, who cannot send a pin, can click the place instead.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from bots.telegram.api import InlineKeyboard, Markup, ReplyKeyboard
from core.messages import Location, Reply

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64
ALBUM_MAX = 10
EMPTY_TEXT = "…"  # Telegram refuses an empty message, and a keyboard needs one


@dataclass(frozen=True, slots=True)
class SendText:
    text: str
    markup: Markup = None


@dataclass(frozen=True, slots=True)
class SendPhotos:
    """One photo → sendPhoto; 2–10 → sendMediaGroup."""

    shas: tuple[str, ...]
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class MapOffer:
    """The Web App button a reply asking for the location gets: its message's text, label and https URL."""

    text: str
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class SendDocument:
    """A file (the resident's `/mydata` export) → sendDocument."""

    filename: str
    data: bytes


Op = SendText | SendPhotos | Location | SendDocument
"""A `Location` is sent as it is (sendLocation)."""


class CallbackCodec:
    """Keeps callback data within 64 bytes. The engine's data already fits; anything longer is sent as a
    digest and mapped back here (a digest unknown after a restart reaches the engine as a stale button)."""

    PREFIX = "~"

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._long: OrderedDict[str, str] = OrderedDict()

    def encode(self, data: str) -> str:
        if len(data.encode()) <= CALLBACK_LIMIT and not data.startswith(self.PREFIX):
            return data
        digest = base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).decode().rstrip("=")
        token = self.PREFIX + digest
        self._long[token] = data
        self._long.move_to_end(token)
        while len(self._long) > self.capacity:
            self._long.popitem(last=False)
        return token

    def decode(self, token: str) -> str:
        return self._long.get(token, token)


def render(
    reply: Reply, *, location_label: str, codec: CallbackCodec, map_offer: MapOffer | None = None
) -> list[Op]:
    ops: list[Op] = []
    text = reply.text or ""
    markup = keyboard(reply, location_label, codec)
    if reply.photos:
        shas = tuple(photo.sha256 for photo in reply.photos)
        caption = None
        if markup is None and reply.location is None and text.strip() and utf16_len(text) <= CAPTION_LIMIT:
            caption, text = text, ""
        for start in range(0, len(shas), ALBUM_MAX):
            ops.append(SendPhotos(shas[start : start + ALBUM_MAX], caption if start == 0 else None))
    if reply.location is not None:
        ops.append(reply.location)
    if text.strip() or markup is not None:
        parts = split_text(text) if text.strip() else [EMPTY_TEXT]
        ops.extend(SendText(part) for part in parts[:-1])
        ops.append(SendText(parts[-1], markup))
    if reply.ask_location and map_offer is not None:
        # after the question, so its reply keyboard (*Send my location*) stays under the input field
        ops.append(SendText(map_offer.text, InlineKeyboard((), web_app=(map_offer.label, map_offer.url))))
    if reply.document is not None:
        ops.append(SendDocument(reply.document.filename, reply.document.content))
    return ops


def keyboard(reply: Reply, location_label: str, codec: CallbackCodec) -> Markup:
    if reply.ask_location:
        return ReplyKeyboard(location_label, tuple(row for row in reply.buttons if row))
    if reply.buttons:
        return InlineKeyboard(
            tuple(tuple((label, codec.encode(data)) for label, data in row) for row in reply.buttons if row)
        )
    return None


def utf16_len(text: str) -> int:
    """Telegram counts length in UTF-16 code units: an emoji outside the BMP is two. (Encoded in C: a loop
    over the characters cost a tenth of the CPU of answering `/help`.)"""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _fitting_prefix(rest, limit)
        window = rest[:cut]
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at > cut // 2:
                cut = at + len(separator)
                break
        part = rest[:cut].rstrip()
        parts.append(part or rest[:cut])
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _fitting_prefix(text: str, limit: int) -> int:
    """The number of characters of `text` that fit in `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)
