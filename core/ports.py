"""What the core needs from the outside world, as Protocols (DESIGN.md §2: storage implements these).

A `Store` is one open transaction: the engine runs one update's step against it, synchronously, and the
storage layer commits it (or rolls it back) as a whole. Keeping the step synchronous lets storage batch the
steps of many updates into one commit (SQLite group commit) without changing the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from core.domain.tickets import Status, Ticket, TicketEvent
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


class Store(Protocol):
    """One transaction's view of the database."""

    def claim_event(self, channel: str, bot: str, event_key: str, at: datetime) -> bool:
        """Record a delivery id of this channel's bot (or community); False when it was seen before."""

    def event_seen(self, channel: str, bot: str, event_key: str) -> bool:
        """Whether the delivery id was claimed already (read-only)."""

    def prune_events(self, before: datetime) -> int:
        """Forget delivery ids recorded before `before` (far past any redelivery); returns how many."""

    def load_dialog(self, chat: ChatRef) -> dict[str, Any] | None:
        """The chat's dialog state, locked against concurrent updates until the transaction ends."""

    def save_dialog(self, chat: ChatRef, state: dict[str, Any], at: datetime) -> None: ...

    def create_ticket(self, ticket: NewTicket) -> int:
        """Insert the ticket and its photos; returns its public number."""

    def add_event(self, number: int, event: TicketEvent) -> None: ...

    def set_status(self, number: int, status: Status, at: datetime) -> None: ...

    def get_ticket(self, number: int, *, with_events: bool = True) -> Ticket | None: ...

    def tickets_of(self, chat: ChatRef, limit: int) -> Sequence[TicketSummary]:
        """The chat's own reports and the tickets it supports (`joined`), newest first."""

    def list_tickets(self, status: Status | None = None, limit: int = 100) -> Sequence[TicketSummary]: ...

    def enqueue(self, reply: Reply, at: datetime) -> None:
        """Queue a message to someone other than the sender (`reply.chat`), delivered after commit."""

    # --- the staff side (issue 3): staff, invites, ticket changes, queues, timers -----------------------
    def create_invite(self, invite: Invite, code_hash: str) -> None: ...

    def find_invite(self, code_hash: str) -> Invite | None:
        """The invite with this code hash, locked until the transaction ends."""

    def use_invite(self, code_hash: str, by: str, at: datetime) -> bool:
        """Mark it used; False when someone used it first."""

    def staff_code_failures(self, chat: ChatRef, since: datetime) -> Sequence[datetime]:
        """When this chat sent a wrong `/staff CODE` after `since`, oldest first."""

    def record_staff_code_failure(self, chat: ChatRef, at: datetime, forget_before: datetime) -> None:
        """Remember a wrong `/staff CODE` from this chat; forget every chat's tries before `forget_before`."""

    def bind_staff(self, member: NewStaff) -> StaffMember:
        """Make (channel, user) staff of an organisation, replacing an earlier binding of the same person."""

    def get_staff(self, chat: ChatRef) -> StaffMember | None:
        """The active staff member talking in this chat, if any."""

    def staff_by_id(self, staff_id: int) -> StaffMember | None: ...

    def staff_of(self, organisation: str) -> Sequence[StaffMember]:
        """Active staff of the organisation (any role)."""

    def dispatchers(self) -> Sequence[StaffMember]: ...

    def set_staff_language(self, staff_id: int, language: str) -> None: ...

    def remove_staff(self, staff_id: int, at: datetime) -> int:
        """End the person's staff access now (the row stays: history keeps the name) and drop the outbox
        messages still waiting for them as staff; returns how many were dropped."""

    def lock_ticket(self, number: int) -> Ticket | None:
        """`get_ticket` holding the ticket's row lock (PostgreSQL) until the transaction ends."""

    def update_ticket(self, number: int, expected: Status, changes: Mapping[str, Any]) -> bool:
        """Change the ticket if its status is still `expected`; False when it moved on meanwhile.
        Keys: status, updated_at, organisation, taken_by, resolved_at, rating, overdue_notified, and the
        place: lat, lon, address, location_source."""

    def add_ticket_photos(self, number: int, photos: Sequence[str], kind: str) -> None: ...

    def queue(self, organisations: Sequence[str], now: datetime, limit: int) -> Sequence[TicketSummary]:
        """Tickets waiting for these organisations (not resolved, not closed): overdue ones first, then the
        most supported, then the earliest deadline."""

    def tickets_to_autoclose(self, resolved_before: datetime, limit: int) -> Sequence[int]: ...

    def tickets_newly_overdue(self, now: datetime, limit: int) -> Sequence[int]: ...

    # --- places and "me too" (issue 6) -------------------------------------------------------------
    def nearby_tickets(
        self, category: str, subcategory: str | None, lat: float, lon: float, radius_m: float, limit: int
    ) -> Sequence[NearbyTicket]:
        """Open tickets of exactly this (sub)category within `radius_m` metres, nearest first."""

    def subscribe(self, number: int, chat: ChatRef, language: str, at: datetime) -> bool:
        """Make `chat` a supporter of the ticket (it then gets the ticket's notifications); False when it
        already was one."""

    def subscribers_of(self, number: int) -> list[ChatRef]:
        """Who supports the ticket besides its author, oldest first: notify them with the author."""

    def is_subscribed(self, number: int, chat: ChatRef) -> bool: ...


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

    async def run(self, job: Callable[[Store], T]) -> T: ...


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

    async def deliver(self, message: OutgoingMessage) -> None:
        """Send it, or raise DeliveryError. Photos are read from the photo store by sha256."""
