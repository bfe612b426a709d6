"""The vocabulary shared by the engine and every channel adapter (DESIGN.md §3).

Adapters translate platform updates into `Incoming` and `Reply` back into platform calls; nothing here knows
about any platform, so the same dialog runs in Telegram, VK and the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.geo import Geocoded


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Who we talk to, and where to reach them later (proactive notifications)."""

    channel: str
    chat_id: str
    user_id: str = ""

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.chat_id}"


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo already stored by the adapter in the photo store; `sha256` is its content address."""

    sha256: str


NOT_KEPT = Photo("")
"""A photo the adapter did not download because the chat's current step takes no photos
(`Engine.wants_photos`): the engine still sees that photos came and answers them as it always does."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user action. `event_key` is the platform's delivery id; a repeated key is handled once."""

    chat: ChatRef
    event_key: str
    language: str | None = None
    text: str | None = None
    command: str | None = None
    args: str = ""
    location: Location | None = None
    photos: tuple[Photo, ...] = ()
    button: str | None = None
    contact: str | None = None
    unsupported: str | None = None
    """A kind of input the bot cannot use (sticker, voice, file…); named so the engine can answer it."""
    display_name: str = ""
    geocoded: Geocoded | None = None
    """Internal, never from an adapter: the geocoder's answer to a lookup an earlier step asked for."""
    bot: str = ""
    """Which bot or community received it (Telegram bot id, VK group id): `event_key` is unique only per bot,
    so after the operator switches bots on the same database old keys do not swallow new updates."""


@dataclass(frozen=True, slots=True)
class Document:
    """A file sent with a reply (the resident's `/mydata` export). Channels that cannot send files degrade
    it (VK: the content as text), never drop it."""

    filename: str
    content: bytes
    mime_type: str = "application/json"


Button = tuple[str, str]
"""(label, data). `data` is at most 64 bytes so it fits Telegram callback data."""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    ask_location: bool = False
    photos: tuple[Photo, ...] = ()
    location: Location | None = None
    chat: ChatRef | None = None
    """Set only on outbox messages: the recipient. Replies to the sender leave it empty."""
    language: str | None = None
    """The language of the texts, for whatever a channel adds in its own words (Telegram's *Send my
    location* button); None when the maker did not say (the channel then uses the chat's language)."""
    extra: dict[str, str] = field(default_factory=dict)
    document: Document | None = None
    """A file to send after the text (direct replies only: the outbox does not carry files)."""
