"""What the core needs from the outside world, as Protocols (DESIGN.md §2: storage implements these).

A `UnitOfWork` is one open transaction with a small port per concern (delivery ids, dialogs, tickets, staff,
supporters, outbox): the engine runs one update's step against it, synchronously, and the storage layer
commits it (or rolls it back) as a whole. Keeping the step synchronous lets storage batch the steps of many
updates into one commit (SQLite group commit) without changing the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.domain.tickets import Report, Status, Ticket, TicketEvent
from core.geo import Bounds, Place
from core.messages import ChatRef, Reply
from core.stats import Figures

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
class NewTicket(Report):
    """A report as stored: routed, with its first status and its deadline."""

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

    def enqueue_many(self, replies: Sequence[Reply], at: datetime) -> None:
        """The same for several messages at once (a new ticket's card to each of its organisation's staff):
        one statement for them all, not a round trip each."""


@dataclass(frozen=True, slots=True)
class Consent:
    """A resident's answer to the personal-data notice: agreed or declined, to which version, when."""

    agreed: bool
    version: str
    at: datetime


class Residents(Protocol):
    """Residents' personal data (152-ФЗ): consent, what is kept about a chat, forgetting it, retention.

    Personal data of a resident is their chat identity wherever it is stored (tickets' author, supporters,
    dialog state, outbox and console messages to them, consent): `forget` and `anonymise_closed` remove or
    blank it in one place, so tickets stay for the city's statistics without naming anyone."""

    def consent(self, chat: ChatRef) -> Consent | None:
        """The chat's latest answer to the notice; None when it was never shown an answer."""

    def record_consent(self, chat: ChatRef, agreed: bool, version: str, at: datetime) -> None: ...

    def about(self, chat: ChatRef) -> dict[str, Any]:
        """Everything kept about the chat, as JSON-ready data (`/mydata`)."""

    def forget(self, chat: ChatRef, at: datetime, source: str) -> int:
        """Delete the chat's personal data and anonymise its tickets; logged without personal data. Returns
        how many tickets were anonymised."""

    def anonymise_closed(self, before: datetime, at: datetime, limit: int) -> list[int]:
        """Anonymise tickets closed or rejected before `before` (retention); their numbers."""

    def prune_idle(self, before: datetime, at: datetime) -> int:
        """Retention for chats: delivered messages older than `before`, and the state and consent of chats
        silent since then that no ticket or subscription names any more; how many chats."""

    def forget_removed_staff(self, before: datetime, at: datetime) -> int:
        """Retention for people: staff removed before `before` stay in history only as "staff of ORG" (name,
        chat and user id replaced); how many."""

    def hide_photo(self, number: int, position: int, at: datetime, source: str) -> bool:
        """Hide a ticket's photo (1-based position among all its photos) from residents and public views;
        False when there is no such photo."""

    def log(self, action: str, source: str, channel: str, tickets: int, at: datetime) -> None:
        """Record a personal-data action (forget, mydata, retention, photo_hidden) without naming anyone."""


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What the city's web (and `otklik tickets export`) asks of the ticket list. Organisation scoping is a
    filter too: for staff, `organisations` is their own, set by the caller from the session, not the form."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    """A top-level category code also matches its subcategories' tickets (tickets keep both codes)."""
    organisations: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    """Exclusive upper bound."""
    overdue_at: datetime | None = None
    """Only tickets still waiting past their deadline at this moment."""
    bbox: Bounds | None = None


@dataclass(frozen=True, slots=True)
class TicketPoint:
    """One ticket as the map, the list and the exports show it."""

    number: int
    status: Status
    category: str
    subcategory: str | None
    lat: float | None
    lon: float | None
    address: str
    organisation: str | None
    created_at: datetime
    deadline: datetime | None
    resolved_at: datetime | None
    rating: int | None


class TicketSearch(Protocol):
    """Filtered reads over all tickets for the city's web: the map, the list, exports and the dashboard."""

    def find(self, where: TicketFilter, limit: int, before: int | None = None) -> Sequence[TicketPoint]:
        """Newest first; `before`: only numbers below it (keyset paging, so an export streams in batches)."""

    def markers(self, where: TicketFilter, now: datetime, limit: int) -> Sequence[Any]:
        """Newest first, at most `limit`: (number, status, category or subcategory code, lat, lon, address,
        organisation, overdue at `now` as 0/1) — the map's markers, nothing else."""

    def count(self, where: TicketFilter) -> int: ...

    def stats(self, where: TicketFilter, now: datetime, timezone: str) -> Figures:
        """The statistics' aggregates of the filtered tickets (core/stats.py turns them into the document;
        weeks are the city's local weeks in `timezone`)."""


@dataclass(frozen=True, slots=True)
class WebLink:
    staff_id: int
    expires_at: datetime
    used_at: datetime | None


class WebLogins(Protocol):
    """One-time sign-in links and the browser sessions they open; only sha256 of tokens is stored."""

    def create_link(self, token_hash: str, staff_id: int, at: datetime, expires_at: datetime) -> None: ...

    def find_link(self, token_hash: str) -> WebLink | None: ...

    def use_link(self, token_hash: str, at: datetime) -> bool:
        """Mark it used; False when it was used first by someone else."""

    def open_session(self, token_hash: str, staff_id: int, at: datetime, expires_at: datetime) -> None: ...

    def session_staff(self, token_hash: str, now: datetime) -> int | None:
        """The staff id of a session neither ended nor expired."""

    def end_session(self, token_hash: str, at: datetime) -> None: ...

    def prune(self, before: datetime) -> int:
        """Forget links and sessions that expired or ended before `before`; returns how many."""


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
    residents: Residents
    web_logins: WebLogins
    ticket_search: TicketSearch


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
    role: str  # "staff" | "dispatcher" | "admin"
    name: str
    language: str
    removed_at: datetime | None = None
    """When `otklik staff remove` ended the person's access (None: still staff)."""

    @property
    def is_dispatcher(self) -> bool:
        """An admin (the whole city) may do whatever a dispatcher may."""
        return self.role in ("dispatcher", "admin")

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

    outbox_queued: asyncio.Event
    """Set when a job run here committed outbox rows: the delivery worker wakes at once instead of at its
    next poll (rows queued by another process are found by that poll)."""

    async def run(self, job: Callable[[UnitOfWork], T]) -> T: ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One outbox row on its way out: whom to tell, what, and the row id (a stable key against duplicates)."""

    id: int
    reply: Reply  # reply.chat is the recipient
    attempt: int = 0

    @property
    def recipient(self) -> ChatRef:
        """Whom to deliver to; a row without one can never be delivered (a permanent failure)."""
        if self.reply.chat is None:
            raise DeliveryError("outbox message without a recipient", permanent=True)
        return self.reply.chat


class DeliveryError(Exception):
    """A channel could not deliver. `retry_after` (seconds) when the platform said when to try again;
    `permanent` when it never will succeed (the user blocked the bot, the chat is gone)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


def numeric_chat_id(message: OutgoingMessage, what: str) -> int:
    """The recipient's chat id as the platform's integer (`what` names it in the error): one that is not an
    integer can never be delivered."""
    try:
        return int(message.recipient.chat_id)
    except ValueError:
        raise DeliveryError(f"not a {what}: {message.recipient.chat_id!r}", permanent=True) from None


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


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One message delivered to a widget resident: its row id (the stream's position), the `Reply` payload
    (core/payload.py) and whether the resident has seen it."""

    id: int
    payload: dict[str, Any]
    read: bool


class WidgetInbox(Protocol):
    """What delivery left for a widget resident: streamed to an open panel, kept for the next visit."""

    def append(self, chat_id: str, payload: dict[str, Any], at: datetime) -> int:
        """Keep one delivered message; returns its id (ids grow: a stream resumes after the last one seen)."""

    def after(self, chat_id: str, after_id: int, limit: int) -> list[InboxItem]:
        """The resident's messages with ids above `after_id`, oldest first."""

    def unread(self, chat_id: str) -> int: ...

    def mark_read(self, chat_id: str, up_to: int, at: datetime) -> int:
        """Mark the resident's messages up to this id as seen; returns how many were unread."""


class AdapterUnitOfWork(UnitOfWork, Protocol):
    """The unit of work as channel adapters see it: the core's ports and the photo bookkeeping."""

    photo_registry: PhotoRegistry
    channel_photos: ChannelPhotoIds
    console_inbox: ConsoleInbox
    widget_inbox: WidgetInbox


# --- Open311: partner systems' API keys, what they filed, and the public view of tickets -----------------
@dataclass(frozen=True, slots=True)
class ApiKey:
    """A partner system's Open311 key: only its sha256 is stored; `name` is the ticket channel's suffix."""

    name: str
    can_write: bool
    rate_per_minute: int
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """What an Open311 POST brought besides the ticket: the link it gave and the optional person fields.
    The person fields are personal data: stored apart from the ticket, never shown by any GET."""

    number: int
    key_name: str
    media_url: str = ""
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    device_id: str = ""
    account_id: str = ""


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """`GET requests`: `numbers` (when given) overrides every other filter."""

    numbers: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[Status] = frozenset()
    limit: int = 1000
    offset: int = 0


@dataclass(frozen=True, slots=True)
class PublicTicket:
    """A ticket as the public may see it: no author, no staff, no person fields."""

    number: int
    status: Status
    category: str
    subcategory: str | None
    description: str
    organisation: str | None
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    address: str
    lat: float | None
    lon: float | None
    photo: str | None
    """sha256 of the first report photo, if any."""
    media_url: str
    """The link an Open311 POST gave ("" otherwise)."""
    note: TicketEvent | None
    """The latest public note: a reject reason, a staff comment to the resident, a resolution comment."""


@dataclass(frozen=True, slots=True)
class PublicUpdate:
    """One change of a ticket as `servicerequestupdates` lists it."""

    id: int
    number: int
    event: TicketEvent
    status: Status


class Open311Store(Protocol):
    def add_key(self, key: ApiKey, key_hash: str) -> bool:
        """False when a key of this name exists (revoked ones included: names are never reused)."""

    def key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    def keys(self) -> Sequence[ApiKey]: ...

    def revoke_key(self, name: str, at: datetime) -> bool:
        """False when no active key has this name."""

    def record(self, submission: Submission, at: datetime) -> None: ...

    def submission(self, number: int) -> Submission | None: ...

    def forget_person(self, numbers: Sequence[int] = (), *, filed_before: datetime | None = None) -> int:
        """Erase the person fields of these tickets' submissions (or of all filed before `filed_before`):
        what "forget me" and retention do to a partner's resident. The link and key stay; returns how many."""

    def search(self, query: RequestQuery) -> Sequence[PublicTicket]: ...

    def updates(self, start: datetime, end: datetime, limit: int, offset: int) -> Sequence[PublicUpdate]:
        """Lifecycle events between `start` and `end`, oldest first."""


class Open311UnitOfWork(UnitOfWork, Protocol):
    open311: Open311Store


# --- several workers on one database (DESIGN.md §12) --------------------------------------------------------
class Pace(Protocol):
    """Spaces calls to one platform so a bot stays under its rate: in this process (`bots.pacing.CallSpacer`)
    or across every worker on the database (`storage.rate.SharedPace`)."""

    async def wait(self) -> None:
        """Return when the caller may make its next call."""


class PollPositions(Protocol):
    """Where a platform's long poll stopped, kept where every worker sees it (the database), so whichever
    worker leads next resumes there: nothing skipped, nothing handled twice beyond the last unsaved batch."""

    async def load(self, name: str) -> str | None:
        """The saved position of the poll `name` (a channel and its bot), None before the first save."""

    async def save(self, name: str, position: str) -> bool:
        """Record the position after the events before it were handled. False, writing nothing, when a later
        position is saved already: another worker polls (a leader deposed before it noticed, or the one that
        took over from it), and this poll should resume from there rather than handle its events again."""


class LeaderLock(Protocol):
    """Leadership for the jobs exactly one worker runs (polling, timers); blocking, called off the loop."""

    def acquire(self) -> bool:
        """Try once, without waiting: True when this process holds leadership now."""

    def held(self) -> bool:
        """Still the leader (its hold on the database is alive)."""

    def release(self) -> None:
        """Step down (and let a standby take over at once)."""
