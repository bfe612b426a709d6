"""An in-memory unit of work: every port of core/ports.py over plain dicts and lists.

It keeps the SQL store's semantics where the engine can see them — a claimed delivery id is claimed once,
`update` only moves a ticket still in the expected status, lists come back in the same order — and makes the
"locked" reads trivial: `InMemoryDatabase` runs one job at a time. A failing job leaves nothing behind, as a
rolled-back transaction would: each job works on a copy of the data, kept only when the job returns.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from core.domain.tickets import CLOSED_STATUSES, Status, Ticket, TicketEvent
from core.messages import ChatRef, Reply
from core.ports import Consent, Invite, NearbyTicket, NewStaff, NewTicket, StaffMember, TicketSummary

T = TypeVar("T")

WAITING = (Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.REOPENED)
TICKET_FIELDS = {
    "status",
    "updated_at",
    "organisation",
    "taken_by",
    "resolved_at",
    "rating",
    "overdue_notified",
    "lat",
    "lon",
    "address",
    "location_source",
}


@dataclass
class Supporter:
    chat: ChatRef
    language: str
    at: datetime


@dataclass
class StoredTicket:
    ticket: Ticket
    updated_at: datetime
    photos: list[tuple[str, str]] = field(default_factory=list)
    """(sha256, kind) in position order."""


@dataclass
class Data:
    """Everything the fake remembers: one instance per `InMemoryDatabase`."""

    events: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    dialogs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, StoredTicket] = field(default_factory=dict)
    supporters: dict[int, list[Supporter]] = field(default_factory=dict)
    staff: dict[int, StaffMember] = field(default_factory=dict)
    invites: dict[str, Invite] = field(default_factory=dict)
    code_failures: list[tuple[ChatRef, datetime]] = field(default_factory=list)
    outbox: list[Reply] = field(default_factory=list)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    privacy_log: list[tuple[str, str, str, int, datetime]] = field(default_factory=list)
    hidden: set[tuple[int, int]] = field(default_factory=set)


class MemoryEvents:
    def __init__(self, data: Data) -> None:
        self.data = data

    def claim(self, channel: str, bot: str, event_key: str, at: datetime) -> bool:
        if (channel, bot, event_key) in self.data.events:
            return False
        self.data.events[(channel, bot, event_key)] = at
        return True

    def seen(self, channel: str, bot: str, event_key: str) -> bool:
        return (channel, bot, event_key) in self.data.events

    def prune(self, before: datetime) -> int:
        old = [key for key, at in self.data.events.items() if at < before]
        for key in old:
            del self.data.events[key]
        return len(old)


class MemoryDialogs:
    def __init__(self, data: Data) -> None:
        self.data = data

    def load(self, chat: ChatRef) -> dict[str, Any] | None:
        state = self.data.dialogs.get((chat.channel, chat.chat_id))
        return copy.deepcopy(state) if state else None

    def claim_and_load(
        self, chat: ChatRef, bot: str, event_key: str, at: datetime
    ) -> tuple[bool, dict[str, Any] | None]:
        return MemoryEvents(self.data).claim(chat.channel, bot, event_key, at), self.load(chat)

    def save(self, chat: ChatRef, state: dict[str, Any], at: datetime) -> None:
        self.data.dialogs[(chat.channel, chat.chat_id)] = copy.deepcopy(state)


class MemorySupporters:
    def __init__(self, data: Data) -> None:
        self.data = data

    def add(self, number: int, chat: ChatRef, language: str, at: datetime) -> bool:
        if self.includes(number, chat):
            return False
        self.data.supporters.setdefault(number, []).append(Supporter(chat, language, at))
        return True

    def of(self, number: int) -> list[ChatRef]:
        return [chat for chat, _language in self.with_languages(number)]

    def with_languages(self, number: int) -> list[tuple[ChatRef, str]]:
        found = sorted(
            self.data.supporters.get(number, []), key=lambda s: (s.at, s.chat.channel, s.chat.chat_id)
        )
        return [(s.chat, s.language) for s in found]

    def includes(self, number: int, chat: ChatRef) -> bool:
        return any(
            (s.chat.channel, s.chat.chat_id) == (chat.channel, chat.chat_id)
            for s in self.data.supporters.get(number, [])
        )


class MemoryTickets:
    def __init__(self, data: Data, supporters: MemorySupporters) -> None:
        self.data = data
        self.supporters = supporters

    def create(self, ticket: NewTicket) -> int:
        number = max(self.data.tickets, default=0) + 1
        self.data.tickets[number] = StoredTicket(
            Ticket(
                number=number,
                category=ticket.category,
                subcategory=ticket.subcategory,
                lat=ticket.lat,
                lon=ticket.lon,
                address=ticket.address,
                location_source=ticket.location_source,
                description=ticket.description,
                photos=(),
                author_channel=ticket.author.channel,
                author_chat_id=ticket.author.chat_id,
                author_user_id=ticket.author.user_id,
                organisation=ticket.organisation,
                status=ticket.status,
                created_at=ticket.created_at,
                deadline=ticket.deadline,
                language=ticket.language,
            ),
            updated_at=ticket.created_at,
            photos=[(sha, "report") for sha in ticket.photos],
        )
        return number

    def get(self, number: int, *, with_events: bool = True) -> Ticket | None:
        stored = self.data.tickets.get(number)
        if stored is None:
            return None
        supporter_chats = tuple(self.supporters.with_languages(number))
        return replace(
            stored.ticket,
            photos=self._photos(stored, "report"),
            resolution_photos=self._photos(stored, "resolution"),
            supporters=len(supporter_chats),
            supporter_chats=supporter_chats,
            events=[copy.copy(e) for e in stored.ticket.events] if with_events else [],
        )

    @staticmethod
    def _photos(stored: StoredTicket, kind: str) -> tuple[str, ...]:
        return tuple(sha for sha, of_kind in stored.photos if of_kind == kind)

    def lock(self, number: int) -> Ticket | None:
        return self.get(number)  # one job at a time: nobody else can hold it

    def update(self, number: int, expected: Status, changes: Mapping[str, Any]) -> bool:
        stored = self.data.tickets.get(number)
        if stored is None or stored.ticket.status != expected:
            return False
        unknown = set(changes) - TICKET_FIELDS
        if unknown:
            raise KeyError(f"not a ticket column: {sorted(unknown)}")
        for key, value in changes.items():
            if key == "updated_at":
                stored.updated_at = value
            elif key == "status":
                stored.ticket.status = Status(value)
            else:
                setattr(stored.ticket, key, value)
        return True

    def set_status(self, number: int, status: Status, at: datetime) -> None:
        stored = self.data.tickets[number]
        stored.ticket.status, stored.updated_at = status, at

    def add_event(self, number: int, event: TicketEvent) -> None:
        self.data.tickets[number].ticket.events.append(copy.copy(event))

    def add_photos(self, number: int, photos: Sequence[str], kind: str) -> None:
        self.data.tickets[number].photos.extend((sha, kind) for sha in photos)

    def _summary(self, ticket: Ticket, *, joined: bool = False) -> TicketSummary:
        return TicketSummary(
            number=ticket.number,
            status=ticket.status,
            category=ticket.category,
            subcategory=ticket.subcategory,
            created_at=ticket.created_at,
            address=ticket.address,
            organisation=ticket.organisation,
            deadline=ticket.deadline,
            supporters=len(self.data.supporters.get(ticket.number, [])),
            joined=joined,
        )

    def _newest_first(self) -> builtins.list[Ticket]:
        return [self.data.tickets[n].ticket for n in sorted(self.data.tickets, reverse=True)]

    def list(self, status: Status | None = None, limit: int = 100) -> Sequence[TicketSummary]:
        found = [t for t in self._newest_first() if status is None or t.status == status]
        return [self._summary(t) for t in found[:limit]]

    def of(self, chat: ChatRef, limit: int) -> Sequence[TicketSummary]:
        own = [
            self._summary(t)
            for t in self._newest_first()
            if (t.author_channel, t.author_chat_id) == (chat.channel, chat.chat_id)
        ][:limit]
        joined = [
            self._summary(t, joined=True)
            for t in self._newest_first()
            if self.supporters.includes(t.number, chat)
        ][:limit]
        return sorted([*own, *joined], key=lambda t: t.number, reverse=True)[:limit]

    def queue(self, organisations: Sequence[str], now: datetime, limit: int) -> Sequence[TicketSummary]:
        waiting = [
            self._summary(t)
            for t in self.data_tickets()
            if t.organisation in organisations and t.status in WAITING
        ]

        def order(t: TicketSummary) -> tuple[Any, ...]:
            overdue = t.deadline is not None and t.deadline < now
            return (not overdue, -t.supporters, t.deadline is None, t.deadline or now, t.number)

        return sorted(waiting, key=order)[:limit]

    def data_tickets(self) -> builtins.list[Ticket]:
        return [self.data.tickets[n].ticket for n in sorted(self.data.tickets)]

    def to_autoclose(self, resolved_before: datetime, limit: int) -> Sequence[int]:
        return [
            t.number
            for t in self.data_tickets()
            if t.status == Status.RESOLVED and t.resolved_at is not None and t.resolved_at <= resolved_before
        ][:limit]

    def newly_overdue(self, now: datetime, limit: int) -> Sequence[int]:
        return [
            t.number
            for t in self.data_tickets()
            if t.status in WAITING and t.deadline is not None and t.deadline < now and not t.overdue_notified
        ][:limit]

    def nearby(
        self, category: str, subcategory: str | None, lat: float, lon: float, radius_m: float, limit: int
    ) -> Sequence[NearbyTicket]:
        near = []
        for t in self.data_tickets():
            if t.category != category or t.subcategory != subcategory or t.status in CLOSED_STATUSES:
                continue
            if t.lat is None or t.lon is None:
                continue
            metres = _metres(lat, lon, t.lat, t.lon)
            if metres <= radius_m:
                near.append((metres, t))
        near.sort(key=lambda pair: (pair[0], pair[1].number))
        return [
            NearbyTicket(
                number=t.number,
                distance_m=metres,
                address=t.address,
                description=t.description,
                status=t.status,
                created_at=t.created_at,
                supporters=len(self.data.supporters.get(t.number, [])),
            )
            for metres, t in near[:limit]
        ]


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance: close enough to the SQL store's geodesic one for a fake."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


class MemoryStaff:
    def __init__(self, data: Data) -> None:
        self.data = data

    def create_invite(self, invite: Invite, code_hash: str) -> None:
        self.data.invites[code_hash] = invite

    def find_invite(self, code_hash: str) -> Invite | None:
        return self.data.invites.get(code_hash)

    def use_invite(self, code_hash: str, by: str, at: datetime) -> bool:
        invite = self.data.invites.get(code_hash)
        if invite is None or invite.used_at is not None:
            return False
        self.data.invites[code_hash] = replace(invite, used_at=at)
        return True

    def code_failures(self, chat: ChatRef, since: datetime) -> Sequence[datetime]:
        return sorted(
            at
            for who, at in self.data.code_failures
            if (who.channel, who.chat_id) == (chat.channel, chat.chat_id) and at > since
        )

    def record_code_failure(self, chat: ChatRef, at: datetime, forget_before: datetime) -> None:
        self.data.code_failures = [(c, t) for c, t in self.data.code_failures if t >= forget_before]
        self.data.code_failures.append((chat, at))

    @staticmethod
    def _person(chat: ChatRef) -> tuple[str, str]:
        return chat.channel, chat.user_id or chat.chat_id

    def bind(self, member: NewStaff) -> StaffMember:
        same = [m for m in self.data.staff.values() if self._person(m.chat) == self._person(member.chat)]
        staff_id = same[0].id if same else max(self.data.staff, default=0) + 1
        bound = StaffMember(
            id=staff_id,
            chat=member.chat,
            organisation=member.organisation,
            role=member.role,
            name=member.name,
            language=member.language,
        )
        self.data.staff[staff_id] = bound
        return bound

    def _active(self) -> builtins.list[StaffMember]:
        return [self.data.staff[i] for i in sorted(self.data.staff) if self.data.staff[i].removed_at is None]

    def get(self, chat: ChatRef) -> StaffMember | None:
        return next((m for m in self._active() if self._person(m.chat) == self._person(chat)), None)

    def by_id(self, staff_id: int) -> StaffMember | None:
        return self.data.staff.get(staff_id)

    def of(self, organisation: str) -> Sequence[StaffMember]:
        return [m for m in self._active() if m.organisation == organisation]

    def dispatchers(self) -> Sequence[StaffMember]:
        return [m for m in self._active() if m.is_dispatcher]

    def all(self, *, removed: bool = False) -> Sequence[StaffMember]:
        """Active staff; with `removed`, also those whose access was ended (as `otklik staff list`)."""
        members = [self.data.staff[i] for i in sorted(self.data.staff)]
        return [m for m in members if removed or m.removed_at is None]

    def set_language(self, staff_id: int, language: str) -> None:
        self.data.staff[staff_id] = replace(self.data.staff[staff_id], language=language)

    def remove(self, staff_id: int, at: datetime) -> int:
        member = self.data.staff.get(staff_id)
        if member is None or member.removed_at is not None:
            return 0
        self.data.staff[staff_id] = replace(member, removed_at=at)
        mine = [
            r
            for r in self.data.outbox
            if r.chat is not None
            and (r.chat.channel, r.chat.chat_id) == (member.chat.channel, member.chat.chat_id)
            and r.extra.get("staff") == str(staff_id)
        ]
        self.data.outbox = [r for r in self.data.outbox if all(r is not m for m in mine)]
        return len(mine)


class MemoryOutbox:
    def __init__(self, data: Data) -> None:
        self.data = data

    def enqueue(self, reply: Reply, at: datetime) -> None:
        self.enqueue_many([reply], at)

    def enqueue_many(self, replies: Sequence[Reply], at: datetime) -> None:
        if any(reply.chat is None for reply in replies):
            raise ValueError("an outbox message needs a recipient (Reply.chat)")
        self.data.outbox.extend(replies)


class MemoryResidents:
    """Consent and forgetting over the dicts (the SQL store's `SqlResidents` semantics, minus photo rows)."""

    def __init__(self, data: Data) -> None:
        self.data = data

    def consent(self, chat: ChatRef) -> Consent | None:
        return self.data.consents.get((chat.channel, chat.chat_id))

    def record_consent(self, chat: ChatRef, agreed: bool, version: str, at: datetime) -> None:
        self.data.consents[(chat.channel, chat.chat_id)] = Consent(agreed, version, at)

    def about(self, chat: ChatRef) -> dict[str, Any]:
        state = self.data.dialogs.get((chat.channel, chat.chat_id)) or {}
        consent = self.consent(chat)
        own = [s.ticket for s in self.data.tickets.values() if s.ticket.author == chat]
        return {
            "chats": [{"channel": chat.channel, "chat_id": chat.chat_id, "user_id": chat.user_id}],
            "language": state.get("lang"),
            "draft": state.get("slots") or None,
            "consent": {"agreed": consent.agreed, "version": consent.version, "at": consent.at.isoformat()}
            if consent
            else None,
            "tickets": [
                {"number": t.number, "description": t.description, "photos": list(t.photos)} for t in own
            ],
            "supported_tickets": [
                {"number": n}
                for n, rows in self.data.supporters.items()
                if any(s.chat.key == chat.key for s in rows)
            ],
        }

    def forget(self, chat: ChatRef, at: datetime, source: str) -> int:
        key = (chat.channel, chat.chat_id)
        self.data.dialogs.pop(key, None)
        self.data.consents.pop(key, None)
        for number, rows in self.data.supporters.items():
            self.data.supporters[number] = [s for s in rows if s.chat.key != chat.key]
        self.data.outbox = [r for r in self.data.outbox if r.chat is None or r.chat.key != chat.key]
        self.data.code_failures = [(c, t) for c, t in self.data.code_failures if c.key != chat.key]
        numbers = [n for n, s in self.data.tickets.items() if s.ticket.author.key == chat.key]
        self._anonymise(numbers, f"resident:{chat.key}")
        self.log("forget", source, chat.channel, len(numbers), at)
        return len(numbers)

    def _anonymise(self, numbers: Sequence[int], actor: str | None = None) -> None:
        for number in numbers:
            ticket = self.data.tickets[number].ticket
            ticket.author_channel = ticket.author_chat_id = ticket.author_user_id = ""
        for stored in self.data.tickets.values():
            stored.ticket.events = [
                replace(e, actor="resident")
                if e.actor == actor or (stored.ticket.number in numbers and e.actor.startswith("resident:"))
                else e
                for e in stored.ticket.events
            ]

    def anonymise_closed(self, before: datetime, at: datetime, limit: int) -> list[int]:
        numbers = sorted(
            n
            for n, s in self.data.tickets.items()
            if s.ticket.status in CLOSED_STATUSES and s.updated_at < before and s.ticket.author_channel
        )[:limit]
        self._anonymise(numbers)
        for number in numbers:
            self.data.supporters.pop(number, None)
        if numbers:
            self.log("retention", "timer", "", len(numbers), at)
        return numbers

    def prune_idle(self, before: datetime, at: datetime) -> int:
        """The fake keeps no dialog timestamps or delivered messages: nothing to prune."""
        return 0

    def forget_removed_staff(self, before: datetime, at: datetime) -> int:
        gone = [
            m
            for m in self.data.staff.values()
            if m.removed_at is not None
            and m.removed_at < before
            and not m.chat.chat_id.startswith("removed-")
        ]
        for m in gone:
            ghost = ChatRef(m.chat.channel, f"removed-{m.id}", f"removed-{m.id}")
            self.data.staff[m.id] = replace(m, chat=ghost, name=f"staff of {m.organisation}")
        return len(gone)

    def hide_photo(self, number: int, position: int, at: datetime, source: str) -> bool:
        stored = self.data.tickets.get(number)
        if stored is None or not 1 <= position <= len(stored.photos):
            return False
        self.data.hidden.add((number, position))
        self.log("photo_hidden", source, "", 1, at)
        return True

    def log(self, action: str, source: str, channel: str, tickets: int, at: datetime) -> None:
        self.data.privacy_log.append((action, source, channel, tickets, at))


class MemoryUnitOfWork:
    """The ports of one job, over the database's data."""

    def __init__(self, data: Data) -> None:
        self.events = MemoryEvents(data)
        self.dialogs = MemoryDialogs(data)
        self.supporters = MemorySupporters(data)
        self.tickets = MemoryTickets(data, self.supporters)
        self.staff = MemoryStaff(data)
        self.outbox = MemoryOutbox(data)
        self.residents = MemoryResidents(data)


class InMemoryDatabase:
    """The `Database` port without a database: `await db.run(job)` runs `job(uow)` and keeps what it changed,
    or — when the job raises — nothing, like a rolled-back transaction."""

    def __init__(self) -> None:
        self.data = Data()
        self._lock = asyncio.Lock()
        self.outbox_queued = asyncio.Event()  # the fake has no delivery worker to wake

    async def run(self, job: Callable[[MemoryUnitOfWork], T]) -> T:
        async with self._lock:
            return self.run_sync(job)

    def run_sync(self, job: Callable[[MemoryUnitOfWork], T]) -> T:
        working = copy.deepcopy(self.data)
        result = job(MemoryUnitOfWork(working))
        self.data = working
        return result

    def close(self) -> None:
        """Nothing to release; here so tests can treat it like the SQL `Database`."""

    def take_outbox(self, chat: ChatRef) -> builtins.list[Reply]:
        """The messages queued for `chat`, oldest first, taken out (the fake has no delivery)."""
        mine = [r for r in self.data.outbox if r.chat is not None and r.chat.key == chat.key]
        self.data.outbox = [r for r in self.data.outbox if all(r is not m for m in mine)]
        return mine
