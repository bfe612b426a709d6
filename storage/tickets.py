"""`SqlTickets` (the `Tickets` port): tickets, their events and photos, and the queries staff, timers and
reports run over them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update

from core.domain.policy import WAITING
from core.domain.tickets import Action, Status, Ticket, TicketEvent
from core.messages import ChatRef
from core.ports import NearbyTicket, NewTicket, TicketSummary
from storage import pg_session
from storage.places import nearby_tickets
from storage.repository import Repository
from storage.rows import SUPPORTERS, sqlite_timestamp, ticket_summary, utc
from storage.tables import supporters, ticket_events, ticket_photos, tickets

RAW_INSERT_TICKET = (
    "INSERT INTO tickets (category_code, subcategory_code, lat, lon, address, location_source, description, "
    "author_channel, author_chat_id, author_user_id, language, organisation_code, status, created_at, "
    "updated_at, deadline, overdue_notified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
RAW_INSERT_TICKET_PHOTO = (
    "INSERT INTO ticket_photos (ticket_number, position, sha256, kind, hidden) VALUES (?, ?, ?, ?, 0)"
)
RAW_INSERT_EVENT = (
    "INSERT INTO ticket_events (ticket_number, action, at, actor, from_status, to_status, comment, photos, "
    "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""SQLite: filing a ticket through the raw cursor, as PostgreSQL's prepared statements (storage/pg_session.py)
take the same values: SQLAlchemy's execution of the three inserts cost several times SQLite's work."""

TICKET_COLUMNS = {
    "status": "status",
    "updated_at": "updated_at",
    "organisation": "organisation_code",
    "taken_by": "taken_by",
    "resolved_at": "resolved_at",
    "rating": "rating",
    "overdue_notified": "overdue_notified",
    "lat": "lat",
    "lon": "lon",
    "address": "address",
    "location_source": "location_source",
}


def _sqlite(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Timestamps as SQLAlchemy's SQLite DateTime writes them."""
    return tuple(sqlite_timestamp(value) if isinstance(value, datetime) else value for value in values)


class SqlTickets(Repository):
    def create(self, ticket: NewTicket) -> int:
        values = (
            ticket.category,
            ticket.subcategory,
            ticket.lat,
            ticket.lon,
            ticket.address,
            ticket.location_source,
            ticket.description,
            ticket.author.channel,
            ticket.author.chat_id,
            ticket.author.user_id,
            ticket.language,
            ticket.organisation,
            ticket.status.value,
            ticket.created_at,
            ticket.created_at,
            ticket.deadline,
        )
        if self.is_sqlite:
            number = self.raw.execute(RAW_INSERT_TICKET, _sqlite(values)).lastrowid
            self.raw.executemany(
                RAW_INSERT_TICKET_PHOTO,
                [(number, position, sha, "report") for position, sha in enumerate(ticket.photos)],
            )
            return int(number)
        # PostgreSQL: the photos are held back to go with the next statement.
        row = pg_session.run(self.conn, "otklik_create_ticket", values)
        assert row is not None and row[0] is not None  # RETURNING: one row
        number = int(row[0])
        for position, sha in enumerate(ticket.photos):
            pg_session.hold(self.conn, "otklik_add_ticket_photo", (number, position, sha, "report"))
        return number

    def add_event(self, number: int, event: TicketEvent) -> None:
        values = (
            number,
            event.action.value,
            event.at,
            event.actor,
            event.from_status.value if event.from_status else None,
            event.to_status.value,
            event.comment,
            json.dumps(list(event.photos)),
            json.dumps(dict(event.data), ensure_ascii=False),
        )
        if self.is_sqlite:
            self.raw.execute(RAW_INSERT_EVENT, _sqlite(values))
        else:  # held back to go with the next statement; nothing reads an event before that
            pg_session.hold(self.conn, "otklik_add_event", values)

    def set_status(self, number: int, status: Status, at: datetime) -> None:
        self.conn.execute(
            update(tickets).where(tickets.c.number == number).values(status=status.value, updated_at=at)
        )

    def get(self, number: int, *, with_events: bool = True) -> Ticket | None:
        row = self.conn.execute(select(tickets).where(tickets.c.number == number)).mappings().first()
        if row is None:
            return None
        photos = self.conn.execute(
            select(ticket_photos.c.sha256)
            .where(ticket_photos.c.ticket_number == number, ticket_photos.c.kind == "report")
            .order_by(ticket_photos.c.position)
        ).scalars()
        supporter_chats = tuple(self.uow.supporters.with_languages(number))
        ticket = Ticket(
            number=row["number"],
            category=row["category_code"],
            subcategory=row["subcategory_code"],
            lat=row["lat"],
            lon=row["lon"],
            address=row["address"],
            location_source=row["location_source"],
            description=row["description"],
            photos=tuple(photos),
            author_channel=row["author_channel"],
            author_chat_id=row["author_chat_id"],
            author_user_id=row["author_user_id"],
            organisation=row["organisation_code"],
            status=Status(row["status"]),
            created_at=utc(row["created_at"]),  # type: ignore[arg-type]
            deadline=utc(row["deadline"]),
            rating=row["rating"],
            language=row["language"],
            taken_by=row["taken_by"],
            resolved_at=utc(row["resolved_at"]),
            overdue_notified=bool(row["overdue_notified"]),
            resolution_photos=self.photos_of_kind(number, "resolution"),
            hidden_photos=frozenset(
                self.conn.execute(
                    select(ticket_photos.c.sha256).where(
                        ticket_photos.c.ticket_number == number, ticket_photos.c.hidden.is_(True)
                    )
                ).scalars()
            ),
            supporters=len(supporter_chats),
            supporter_chats=supporter_chats,
        )
        if with_events:
            ticket.events = [
                TicketEvent(
                    action=Action(e["action"]),
                    at=utc(e["at"]),  # type: ignore[arg-type]
                    actor=e["actor"],
                    from_status=Status(e["from_status"]) if e["from_status"] else None,
                    to_status=Status(e["to_status"]),
                    comment=e["comment"],
                    photos=tuple(e["photos"] or ()),
                    data=dict(e["data"] or {}),
                )
                for e in self.conn.execute(
                    select(ticket_events)
                    .where(ticket_events.c.ticket_number == number)
                    .order_by(ticket_events.c.id)
                ).mappings()
            ]
        return ticket

    def _summaries(self, query: Any) -> list[TicketSummary]:
        return [ticket_summary(r) for r in self.conn.execute(query)]

    def of(self, chat: ChatRef, limit: int) -> Sequence[TicketSummary]:
        """The chat's own reports and the tickets it joined ("me too", marked `joined`), newest first."""
        own = self._summaries(
            select(tickets, SUPPORTERS)
            .where(tickets.c.author_channel == chat.channel, tickets.c.author_chat_id == chat.chat_id)
            .order_by(tickets.c.number.desc())
            .limit(limit)
        )
        joined = [
            replace(t, joined=True)
            for t in self._summaries(
                select(tickets, SUPPORTERS)
                .join(supporters, supporters.c.ticket_number == tickets.c.number)
                .where(supporters.c.channel == chat.channel, supporters.c.chat_id == chat.chat_id)
                .order_by(tickets.c.number.desc())
                .limit(limit)
            )
        ]
        return sorted([*own, *joined], key=lambda t: t.number, reverse=True)[:limit]

    def list(self, status: Status | None = None, limit: int = 100) -> Sequence[TicketSummary]:
        query = select(tickets, SUPPORTERS).order_by(tickets.c.number.desc()).limit(limit)
        if status is not None:
            query = query.where(tickets.c.status == status.value)
        return self._summaries(query)

    def count_by(self, column: str) -> dict[str, int]:
        col = tickets.c[column]
        return {
            str(key): int(n)
            for key, n in self.conn.execute(select(col, func.count()).group_by(col).order_by(col))
        }

    def lock(self, number: int) -> Ticket | None:
        if not self.is_sqlite:  # SQLite: the single writer already serialises every transaction
            locked = self.conn.execute(
                select(tickets.c.number).where(tickets.c.number == number).with_for_update()
            ).first()
            if locked is None:
                return None
        return self.get(number)

    def update(self, number: int, expected: Status, changes: Mapping[str, Any]) -> bool:
        values = {TICKET_COLUMNS[key]: value for key, value in changes.items()}
        if isinstance(values.get("status"), Status):
            values["status"] = values["status"].value
        done = self.conn.execute(
            update(tickets)
            .where(tickets.c.number == number, tickets.c.status == expected.value)
            .values(values)
            .returning(tickets.c.number)
        ).first()
        return done is not None

    def add_photos(self, number: int, photos: Sequence[str], kind: str) -> None:
        if not photos:
            return
        last = self.conn.execute(
            select(func.max(ticket_photos.c.position)).where(ticket_photos.c.ticket_number == number)
        ).scalar()
        start = -1 if last is None else int(last)
        self.conn.execute(
            insert(ticket_photos),
            [
                {"ticket_number": number, "position": start + 1 + i, "sha256": sha, "kind": kind}
                for i, sha in enumerate(photos)
            ],
        )

    def photos_of_kind(self, number: int, kind: str) -> tuple[str, ...]:
        return tuple(
            self.conn.execute(
                select(ticket_photos.c.sha256)
                .where(ticket_photos.c.ticket_number == number, ticket_photos.c.kind == kind)
                .order_by(ticket_photos.c.position)
            ).scalars()
        )

    # --- queues and timers -------------------------------------------------------------------------------
    def queue(self, organisations: Sequence[str], now: datetime, limit: int) -> Sequence[TicketSummary]:
        deadline = tickets.c.deadline
        overdue = case((deadline < now, 0), else_=1)
        rows = self.conn.execute(
            select(tickets, SUPPORTERS)
            .where(
                tickets.c.organisation_code.in_(list(organisations)),
                tickets.c.status.in_(sorted(s.value for s in WAITING)),
            )
            .order_by(overdue, SUPPORTERS.desc(), deadline.is_(None), deadline, tickets.c.number)
            .limit(limit)
        )
        return [ticket_summary(r) for r in rows]

    def to_autoclose(self, resolved_before: datetime, limit: int) -> Sequence[int]:
        return list(
            self.conn.execute(
                select(tickets.c.number)
                .where(tickets.c.status == Status.RESOLVED.value, tickets.c.resolved_at <= resolved_before)
                .order_by(tickets.c.number)
                .limit(limit)
            ).scalars()
        )

    def newly_overdue(self, now: datetime, limit: int) -> Sequence[int]:
        return list(
            self.conn.execute(
                select(tickets.c.number)
                .where(
                    tickets.c.status.in_(sorted(s.value for s in WAITING)),
                    tickets.c.deadline < now,
                    tickets.c.overdue_notified.is_(False),
                )
                .order_by(tickets.c.number)
                .limit(limit)
            ).scalars()
        )

    def held_by(self, staff_id: int) -> list[int]:
        """Tickets in progress that this person took: their colleagues can still resolve or reject them."""
        return list(
            self.conn.execute(
                select(tickets.c.number)
                .where(tickets.c.taken_by == staff_id, tickets.c.status == Status.IN_PROGRESS.value)
                .order_by(tickets.c.number)
            ).scalars()
        )

    def nearby(
        self, category: str, subcategory: str | None, lat: float, lon: float, radius_m: float, limit: int
    ) -> list[NearbyTicket]:
        return nearby_tickets(self, category, subcategory, lat, lon, radius_m, limit)
