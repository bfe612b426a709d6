"""What the core needs from the outside world, as Protocols (DESIGN.md §2: storage implements these).

A `UnitOfWork` is one open transaction with a small port per concern (delivery ids, dialogs, tickets, staff,
supporters, outbox): the engine runs one update's step against it, synchronously, and the storage layer
commits it (or rolls it back) as a whole. Keeping the step synchronous lets storage batch the steps of many
updates into one commit (SQLite group commit) without changing the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.domain.tickets import Status, Ticket, TicketEvent
from core.geo import Bounds, Place
from core.messages import ChatRef, Reply

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TicketSummary:
    number: int
    status: Status
    category: str
    subcategory: str | None
    created_at: datetime
    address: str
    organisation: str | None
    deadline: datetime | None
    supporters: int = 0
    """Residents who joined the ticket as the same problem ("me too"); it raises the ticket's priority."""
    joined: bool = False
    """In a resident's own list: a ticket they support rather than one they reported."""


@dataclass(frozen=True, slots=True)
class NewTicket:
    category: str
    subcategory: str | None
    lat: float | None
    lon: float | None
    address: str
    location_source: str
    description: str
    photos: tuple[str, ...]
    author: ChatRef
    language: str
    organisation: str | None
    status: Status
    created_at: datetime
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class NearbyTicket:
    """An open ticket near a point, offered to a resident about to report the same problem ("me too")."""

    number: int
    distance_m: float
    address: str
    description: str
    status: Status
    created_at: datetime
    supporters: int


class ProcessedEvents(Protocol):
    """Delivery ids already handled: what makes handling an update idempotent."""

    def claim(self, channel: str, bot: str, event_key: str, at: datetime) -> bool:
        """Record a delivery id of this channel's bot (or community); False when it was seen before."""

    def seen(self, channel: str, bot: str, event_key: str) -> bool:
        """Whether the delivery id was claimed already (read-only)."""

    def prune(self, before: datetime) -> int:
        """Forget delivery ids recorded before `before` (far past any redelivery); returns how many."""


class Dialogs(Protocol):
    """Each chat's dialog state (our own table, not a library's FSM)."""

    def load(self, chat: ChatRef) -> dict[str, Any] | None:
        """The chat's dialog state, locked against concurrent updates until the transaction ends."""

    def claim_and_load(
        self, chat: ChatRef, bot: str, event_key: str, at: datetime
    ) -> tuple[bool, dict[str, Any] | None]:
        """`ProcessedEvents.claim` of the update's delivery id, then `load`: what every update begins with,
        together so that a server database answers both in one round trip."""

    def save(self, chat: ChatRef, state: dict[str, Any], at: datetime) -> None: ...


class Tickets(Protocol):
    """Tickets, their events and photos, and the queries staff and timers run over them."""

    def create(self, ticket: NewTicket) -> int:
        """Insert the ticket and its photos; returns its public number."""

    def get(self, number: int, *, with_events: bool = True) -> Ticket | None: ...

    def lock(self, number: int) -> Ticket | None:
        """`get` holding the ticket's row lock (PostgreSQL) until the transaction ends."""

    def update(self, number: int, expected: Status, changes: Mapping[str, Any]) -> bool:
        """Change the ticket if its status is still `expected`; False when it moved on meanwhile.
        Keys: status, updated_at, organisation, taken_by, resolved_at, rating, overdue_notified, and the
        place: lat, lon, address, location_source."""

    def set_status(self, number: int, status: Status, at: datetime) -> None: ...

    def add_event(self, number: int, event: TicketEvent) -> None: ...

    def add_photos(self, number: int, photos: Sequence[str], kind: str) -> None: ...

    def list(self, status: Status | None = None, limit: int = 100) -> Sequence[TicketSummary]: ...

    def of(self, chat: ChatRef, limit: int) -> Sequence[TicketSummary]:
        """The chat's own reports and the tickets it supports (`joined`), newest first."""

    def queue(self, organisations: Sequence[str], now: datetime, limit: int) -> Sequence[TicketSummary]:
        """Tickets waiting for these organisations (not resolved, not closed): overdue ones first, then the
        most supported, then the earliest deadline."""

    def to_autoclose(self, resolved_before: datetime, limit: int) -> Sequence[int]: ...

    def newly_overdue(self, now: datetime, limit: int) -> Sequence[int]: ...

    def nearby(
        self, category: str, subcategory: str | None, lat: float, lon: float, radius_m: float, limit: int
    ) -> Sequence[NearbyTicket]:
        """Open tickets of exactly this (sub)category within `radius_m` metres, nearest first."""


class Staff(Protocol):
    """Staff identities and the invites that make them."""

    def create_invite(self, invite: Invite, code_hash: str) -> None: ...

    def find_invite(self, code_hash: str) -> Invite | None:
        """The invite with this code hash, locked until the transaction ends."""

    def use_invite(self, code_hash: str, by: str, at: datetime) -> bool:
        """Mark it used; False when someone used it first."""

    def code_failures(self, chat: ChatRef, since: datetime) -> Sequence[datetime]:
        """When this chat sent a wrong `/staff CODE` after `since`, oldest first."""

    def record_code_failure(self, chat: ChatRef, at: datetime, forget_before: datetime) -> None:
        """Remember a wrong `/staff CODE` from this chat; forget every chat's tries before `forget_before`."""

    def bind(self, member: NewStaff) -> StaffMember:
        """Make (channel, user) staff of an organisation, replacing an earlier binding of the same person."""

    def get(self, chat: ChatRef) -> StaffMember | None:
        """The active staff member talking in this chat, if any."""

    def by_id(self, staff_id: int) -> StaffMember | None: ...

    def of(self, organisation: str) -> Sequence[StaffMember]:
        """Active staff of the organisation (any role)."""

    def dispatchers(self) -> Sequence[StaffMember]: ...

    def set_language(self, staff_id: int, language: str) -> None: ...

    def remove(self, staff_id: int, at: datetime) -> int:
        """End the person's staff access now (the row stays: history keeps the name) and drop the outbox
        messages still waiting for them as staff; returns how many were dropped."""


class Supporters(Protocol):
    """Residents who joined a ticket as the same problem ("me too"): they get its notifications."""

    def add(self, number: int, chat: ChatRef, language: str, at: datetime) -> bool:
        """Make `chat` a supporter of the ticket; False when it already was one."""

    def of(self, number: int) -> list[ChatRef]:
        """Who supports the ticket besides its author, oldest first: notify them with the author."""

    def includes(self, number: int, chat: ChatRef) -> bool: ...


class Outbox(Protocol):
    """Messages to someone other than the sender, delivered after the transaction commits."""

    def enqueue(self, reply: Reply, at: datetime) -> None:
        """Queue a message to `reply.chat`; it exists only if the caller's transaction commits."""


class UnitOfWork(Protocol):
    """One open transaction, seen through focused ports.

    The engine runs one update's step against it, synchronously, and storage commits it (or rolls it back) as
    a whole: a ticket's change, its events and the outbox rows announcing it land together or not at all."""

    events: ProcessedEvents
    dialogs: Dialogs
    tickets: Tickets
    staff: Staff
    supporters: Supporters
    outbox: Outbox


class Geocoder(Protocol):
    """Async geocoding. Adapters live in storage/ (geopy); `None` instead of a geocoder means off."""

    async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
        """The address at a point; None when there is none. Raises GeocoderError when it cannot say."""

    async def search(self, query: str, language: str, bounds: Bounds, limit: int) -> list[Place]:
        """Places matching a typed address, restricted to `bounds`, best first; [] when nothing matches.
        Raises GeocoderError when it cannot say."""


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    chat: ChatRef
    organisation: str
    role: str  # "staff" | "dispatcher"
    name: str
    language: str
    removed_at: datetime | None = None
    """When `otklik staff remove` ended the person's access (None: still staff)."""

    @property
    def is_dispatcher(self) -> bool:
        return self.role == "dispatcher"

    @property
    def actor(self) -> str:
        """How the member appears in ticket events (`TicketEvent.actor`)."""
        return f"staff:{self.id}"


@dataclass(frozen=True, slots=True)
class NewStaff:
    chat: ChatRef
    organisation: str
    role: str
    name: str
    language: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Invite:
    organisation: str
    role: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class Database(Protocol):
    """Runs a job in its own transaction, off the event loop."""

    async def run(self, job: Callable[[UnitOfWork], T]) -> T: ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One outbox row on its way out: whom to tell, what, and the row id (a stable key against duplicates)."""

    id: int
    reply: Reply  # reply.chat is the recipient
    attempt: int = 0


class DeliveryError(Exception):
    """A channel could not deliver. `retry_after` (seconds) when the platform said when to try again;
    `permanent` when it never will succeed (the user blocked the bot, the chat is gone)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


class ChannelSender(Protocol):
    """Delivers outbox messages to users of one channel (`telegram`, `vk`, `console`)."""

    channel: str
    max_per_second: float
    """The pace delivery keeps through this sender: calls per second per bot or community (0: unlimited)."""
    chat_interval: float
    """Seconds delivery waits between two messages to one chat (0: none)."""

    async def deliver(self, message: OutgoingMessage) -> None:
        """Send it, or raise DeliveryError. Photos are read from the photo store by sha256."""


# --- photos: the content-addressed photo store, and what the adapters record about photos ----------------
class PhotoNotFound(KeyError, FileNotFoundError):
    """Both a KeyError (unknown address) and a FileNotFoundError, so either `except` reads naturally."""

    def __str__(self) -> str:
        return f"no stored photo {self.args[0]}" if self.args else "no stored photo"


class PhotoRejected(ValueError):
    """The bytes cannot become a stored photo; the message is for logs, not for residents."""


class PhotoTooLarge(PhotoRejected):
    """More bytes than accepted."""


class PhotoTooManyPixels(PhotoRejected):
    """More pixels than accepted, refused from the header before anything is decoded."""


class NotAnImage(PhotoRejected):
    pass


class UnsupportedFormat(NotAnImage):
    """A picture, but in a format whose decoder we do not run on untrusted bytes (TIFF, BMP, PSD, …)."""


class StoredPhotoFile(Protocol):
    sha256: str
    path: Path


class Photos(Protocol):
    """Photos stored content-addressed (sha256): what adapters save from users and read to re-upload."""

    def store(self, data: bytes) -> StoredPhotoFile:
        """Validate, normalise and keep the picture; raises a `PhotoRejected`."""

    def read(self, sha256: str) -> bytes:
        """The stored bytes; raises PhotoNotFound."""

    def exists(self, sha256: str) -> bool: ...


class PhotoRegistry(Protocol):
    def register(self, stored: Any, *, now: datetime | None = None) -> bool:
        """Record a stored photo (so the collector keeps it while referenced); True when it was new."""


class ChannelPhotoIds(Protocol):
    """The platform's id of a photo already uploaded to a channel, so later messages reuse it."""

    def get(self, channel: str, sha256: str) -> str | None: ...

    def remember(self, channel: str, sha256: str, remote_id: str) -> None:
        """Keep the first id recorded: two workers uploading one photo at once both succeed, one id wins."""


class ConsoleInbox(Protocol):
    """What delivery left for a console user, until `otklik chat` shows it."""

    def append(self, chat_id: str, payload: dict[str, Any], at: datetime) -> None: ...

    def take_unread(self, chat_id: str, at: datetime) -> list[dict[str, Any]]:
        """Unread messages of this user, oldest first, now marked read."""


class AdapterUnitOfWork(UnitOfWork, Protocol):
    """The unit of work as channel adapters see it: the core's ports and the photo bookkeeping."""

    photo_registry: PhotoRegistry
    channel_photos: ChannelPhotoIds
    console_inbox: ConsoleInbox
