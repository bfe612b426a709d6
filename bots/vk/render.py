"""`Reply` → the `messages.send` calls that show it in VK, within VK's limits (DESIGN.md §3, §9).

Buttons become an inline keyboard of callback buttons (text buttons for clients without callbacks); a list
too long for an inline keyboard (6 rows × 5, 10 buttons) is re-flowed, and past 10 buttons becomes a
one-time keyboard under the input field (10 rows × 5, 40 buttons). `ask_location` adds VK's *send location*
button in a row of its own, and — when a VK Mini App is configured (VK_APP_ID) — an *open app* button under it
that opens the widget's map page, so a resident on a desktop, who cannot send a pin, can click the place.
Text over 4096 characters is split; photos (10 per message) and the geo point go with the last part, and so
does the keyboard.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from vkbottle import Callback, Keyboard, Text, VKApps
from vkbottle import Location as LocationButton

from bots.vk.translate import ClientCaps, encode_payload
from core.messages import Button, Reply
from core.texts import normalise_language, t

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
LABEL_LIMIT = 40
PAYLOAD_LIMIT = 255
MAX_ATTACHMENTS = 10


@dataclass(frozen=True, slots=True)
class Limits:
    rows: int
    per_row: int
    total: int


INLINE = Limits(rows=6, per_row=5, total=10)
STANDARD = Limits(rows=10, per_row=5, total=40)
CURRENT_CLIENT = ClientCaps()


@dataclass(frozen=True, slots=True)
class MiniApp:
    """The VK Mini App that shows the widget's map (VK_APP_ID), opened in the community's context."""

    app_id: int
    owner_id: int | None = None
    """-community id, when known."""


@dataclass(frozen=True, slots=True)
class VkMessage:
    """One `messages.send`: photos are still sha256 addresses, uploaded by the sender."""

    text: str = ""
    keyboard: str | None = None
    photos: tuple[str, ...] = ()
    lat: float | None = None
    long: float | None = None


def render(
    reply: Reply, caps: ClientCaps = CURRENT_CLIENT, map_app: MiniApp | None = None
) -> list[VkMessage]:
    text = reply.text
    keyboard = keyboard_json(reply, caps, map_app)
    if not caps.keyboard and reply.buttons:  # a client without keyboards: the labels can be typed instead
        text += "\n\n" + "\n".join(f"• {label}" for row in reply.buttons for label, _data in row)
    parts = split_text(text)
    photos = tuple(photo.sha256 for photo in reply.photos)
    chunks = [photos[i : i + MAX_ATTACHMENTS] for i in range(0, len(photos), MAX_ATTACHMENTS)] or [()]
    lat, long = (reply.location.lat, reply.location.lon) if reply.location else (None, None)

    messages = [VkMessage(text=part) for part in parts[:-1]]
    last_text = parts[-1] if parts else ""
    for i, chunk in enumerate(chunks):
        messages.append(
            VkMessage(
                text=last_text if i == 0 else "",
                photos=chunk,
                lat=lat if i == 0 else None,
                long=long if i == 0 else None,
            )
        )
    messages = [m for m in messages if m.text or m.photos or m.lat is not None]
    if keyboard is not None:
        if not messages:
            return []
        messages[-1] = replace(messages[-1], keyboard=keyboard)
    if reply.document is not None:  # documents need VK's docs upload, not granted to every community token:
        # the file's text follows as messages of its own, so nothing the resident asked for is dropped
        body = reply.document.content.decode("utf-8", "replace")
        messages.extend(VkMessage(text=part) for part in split_text(f"📎 {reply.document.filename}\n{body}"))
    return messages


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, else a line, else a space, when one falls
    in the second half of the piece; blank pieces are left out."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = next(
            (at for sep in ("\n\n", "\n", " ") if (at := window.rfind(sep)) >= limit // 2),
            limit,
        )
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    pieces.append(rest)
    return [piece for piece in pieces if piece.strip()]


def label(text: str) -> str:
    text = " ".join(text.split()) or "…"
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1].rstrip() + "…"


def fit_rows(rows: Sequence[Sequence[Button]], limits: Limits) -> list[list[Button]] | None:
    """The rows as they are when they fit; re-flowed evenly when there are too many or too wide; None when
    there are more buttons than the keyboard holds."""
    rows = [list(row) for row in rows if row]
    flat = [button for row in rows for button in row]
    if len(flat) > limits.total:
        return None
    if len(rows) <= limits.rows and all(len(row) <= limits.per_row for row in rows):
        return rows
    per_row = max(1, math.ceil(len(flat) / limits.rows))
    if per_row > limits.per_row:
        return None
    return [flat[i : i + per_row] for i in range(0, len(flat), per_row)]


def keyboard_json(
    reply: Reply, caps: ClientCaps = CURRENT_CLIENT, map_app: MiniApp | None = None
) -> str | None:
    if not caps.keyboard or not (reply.buttons or reply.ask_location):
        return None
    buttons = [[b for b in row if _payload_fits(b)] for row in reply.buttons]
    location = reply.ask_location and caps.location
    open_map = map_app if reply.ask_location and caps.open_app else None
    reserved = int(location) + int(open_map is not None)  # rows of their own, counted as two buttons (wide)

    rows = None
    inline = caps.inline_keyboard
    if inline:
        rows = fit_rows(buttons, Limits(INLINE.rows - reserved, INLINE.per_row, INLINE.total - 2 * reserved))
    if rows is None:
        inline = False
        limits = Limits(STANDARD.rows - reserved, STANDARD.per_row, STANDARD.total - 2 * reserved)
        rows = fit_rows(buttons, limits)
        if rows is None:
            flat = [b for row in buttons for b in row]
            log.warning("VK keyboard holds %d buttons; %d dropped", limits.total, len(flat) - limits.total)
            rows = fit_rows([flat[: limits.total]], limits) or []
    if not rows and not location and open_map is None:
        return None

    keyboard = Keyboard(inline=inline, one_time=not inline)
    callback = inline and caps.callback
    for row in rows:
        keyboard.row()
        for text, data in row:
            payload = encode_payload(data)
            keyboard.add(Callback(label(text), payload) if callback else Text(label(text), payload))
    if location:
        keyboard.row()
        keyboard.add(LocationButton())
    if open_map is not None:
        lang = normalise_language(reply.language, "ru")
        app = VKApps(
            app_id=open_map.app_id, owner_id=open_map.owner_id or 0, label=t(lang, "messenger_map.button")
        )
        if open_map.owner_id is None:
            app.owner_id = None  # type: ignore[assignment]  # left out of the JSON (vkbottle drops None)
        keyboard.row()
        keyboard.add(app)
    return keyboard.get_json()


def _payload_fits(button: Button) -> bool:
    if len(encode_payload(button[1]).encode()) <= PAYLOAD_LIMIT:
        return True
    log.error("button %r dropped: its data is longer than VK's %d-byte payload", button[0], PAYLOAD_LIMIT)
    return False
