"""`SqlStore`: the core's `Store` port over one SQLAlchemy connection inside an open transaction.

Core statements, not ORM sessions: the per-update path (claim event, load and save dialog) is three short
statements, prepared once and reused from SQLAlchemy's compiled cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql

from core.domain.tickets import Action, Status, Ticket, TicketEvent
from core.messages import ChatRef
from core.ports import NewTicket, TicketSummary
from storage.places import PlacesStore, subscriptions
from storage.rows import SUPPORTERS, ticket_summary, utc
from storage.staff_store import StaffStore
from storage.tables import DialogRow, ProcessedEventRow, TicketEventRow, TicketPhotoRow, TicketRow

dialogs = DialogRow.__table__
events = ProcessedEventRow.__table__
tickets = TicketRow.__table__
ticket_photos = TicketPhotoRow.__table__
ticket_events = TicketEventRow.__table__


def _claim_stmt(dialect: Any) -> Any:
    # psycopg reports no rowcount for ON CONFLICT DO NOTHING: RETURNING says whether the row is ours.
    return dialect.insert(events).on_conflict_do_nothing().returning(events.c.event_key)


PG_CLAIM = _claim_stmt(postgresql)
LOAD_FOR_UPDATE = (
    select(dialogs.c.state)
    .where(dialogs.c.channel == bindparam("b_channel"), dialogs.c.chat_id == bindparam("b_chat_id"))
    .with_for_update()
)
PG_ENSURE_DIALOG = postgresql.insert(dialogs).on_conflict_do_nothing()
INSERT_TICKET = insert(tickets).returning(tickets.c.number)
PG_SAVE = (
    update(dialogs)
    .where(dialogs.c.channel == bindparam("b_channel"), dialogs.c.chat_id == bindparam("b_chat_id"))
    .values(state=bindparam("b_state"), updated_at=bindparam("b_at"), user_id=bindparam("b_user_id"))
)


# The per-update statements on SQLite run on the raw sqlite3 cursor: SQLAlchemy's execution machinery costs
# ~50-100 µs per statement, more than SQLite itself, and these three run on every update (DESIGN.md §10).
RAW_CLAIM = (
    "INSERT INTO processed_events (channel, bot, event_key, at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
RAW_LOAD = "SELECT state FROM dialogs WHERE channel = ? AND chat_id = ?"
RAW_SAVE = (
    "INSERT INTO dialogs (channel, chat_id, user_id, state, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (channel, chat_id) DO UPDATE SET "
    "state = excluded.state, updated_at = excluded.updated_at, user_id = excluded.user_id"
)


def sqlite_timestamp(value: datetime) -> str:
    """The text form SQLAlchemy's SQLite DateTime writes and reads (UTC, no offset)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqlStore(PlacesStore, StaffStore):
    def __init__(self, conn: Connection, *, is_sqlite: bool) -> None:
        self.conn = conn
        self.is_sqlite = is_sqlite
        self._cursor: Any = None

    @property
    def raw(self) -> Any:
        """The sqlite3 cursor of this connection, inside the same transaction as `conn`."""
        if self._cursor is None:
            self._cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self._cursor

    # --- per-update path -------------------------------------------------------------------------------
    def claim_event(self, channel: str, bot: str, event_key: str, at: datetime) -> bool:
        if self.is_sqlite:
            claimed = self.raw.execute(RAW_CLAIM, (channel, bot, event_key, sqlite_timestamp(at))).fetchone()
            return claimed is not None
        result = self.conn.execute(
            PG_CLAIM, {"channel": channel, "bot": bot, "event_key": event_key, "at": at}
        )
        return result.first() is not None

    def event_seen(self, channel: str, bot: str, event_key: str) -> bool:
        found = self.conn.execute(
            select(events.c.at).where(
                events.c.channel == channel, events.c.bot == bot, events.c.event_key == event_key
            )
        )
        return found.first() is not None

    def prune_events(self, before: datetime) -> int:
        return self.conn.execute(delete(events).where(events.c.at < before)).rowcount

    def load_dialog(self, chat: ChatRef) -> dict[str, Any] | None:
        params = {"b_channel": chat.channel, "b_chat_id": chat.chat_id}
        if self.is_sqlite:
            row = self.raw.execute(RAW_LOAD, (chat.channel, chat.chat_id)).fetchone()
            raw = row[0] if row else None
        else:  # make sure the row exists, so that FOR UPDATE has something to lock even on a first message
            self.conn.execute(
                PG_ENSURE_DIALOG,
                {
                    "channel": chat.channel,
                    "chat_id": chat.chat_id,
                    "user_id": chat.user_id,
                    "state": "{}",
                    "updated_at": datetime.now(UTC),
                },
            )
            raw = self.conn.execute(LOAD_FOR_UPDATE, params).scalar()
        if not raw or raw == "{}":
            return None
        return json.loads(raw)

    def save_dialog(self, chat: ChatRef, state: dict[str, Any], at: datetime) -> None:
        raw = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        if self.is_sqlite:
            self.raw.execute(RAW_SAVE, (chat.channel, chat.chat_id, chat.user_id, raw, sqlite_timestamp(at)))
        else:
            self.conn.execute(
                PG_SAVE,
                {
                    "b_channel": chat.channel,
                    "b_chat_id": chat.chat_id,
                    "b_user_id": chat.user_id,
                    "b_state": raw,
                    "b_at": at,
                },
            )

    # --- tickets ---------------------------------------------------------------------------------------
    def create_ticket(self, ticket: NewTicket) -> int:
        number = self.conn.execute(
            INSERT_TICKET,
            dict(
                category_code=ticket.category,
                subcategory_code=ticket.subcategory,
                lat=ticket.lat,
                lon=ticket.lon,
                address=ticket.address,
                location_source=ticket.location_source,
                description=ticket.description,
                author_channel=ticket.author.channel,
                author_chat_id=ticket.author.chat_id,
                author_user_id=ticket.author.user_id,
                language=ticket.language,
                organisation_code=ticket.organisation,
                status=ticket.status.value,
                created_at=ticket.created_at,
                updated_at=ticket.created_at,
                deadline=ticket.deadline,
            ),
        ).scalar_one()
        if ticket.photos:
            self.conn.execute(
                insert(ticket_photos),
                [
                    {"ticket_number": number, "position": i, "sha256": sha, "kind": "report"}
                    for i, sha in enumerate(ticket.photos)
                ],
            )
        return int(number)

    def add_event(self, number: int, event: TicketEvent) -> None:
        self.conn.execute(
            insert(ticket_events),
            dict(
                ticket_number=number,
                action=event.action.value,
                at=event.at,
                actor=event.actor,
                from_status=event.from_status.value if event.from_status else None,
                to_status=event.to_status.value,
                comment=event.comment,
                photos=list(event.photos),
                data=dict(event.data),
            ),
        )

    def set_status(self, number: int, status: Status, at: datetime) -> None:
        self.conn.execute(
            update(tickets).where(tickets.c.number == number).values(status=status.value, updated_at=at)
        )

    def get_ticket(self, number: int, *, with_events: bool = True) -> Ticket | None:
        row = self.conn.execute(select(tickets).where(tickets.c.number == number)).mappings().first()
        if row is None:
            return None
        photos = self.conn.execute(
            select(ticket_photos.c.sha256)
            .where(ticket_photos.c.ticket_number == number, ticket_photos.c.kind == "report")
            .order_by(ticket_photos.c.position)
        ).scalars()
        followers = tuple(self.followers_of(number))
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
            resolution_photos=self.ticket_photos_of_kind(number, "resolution"),
            supporters=len(followers),
            followers=followers,
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

    def tickets_of(self, chat: ChatRef, limit: int) -> Sequence[TicketSummary]:
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
                .join(subscriptions, subscriptions.c.ticket_number == tickets.c.number)
                .where(subscriptions.c.channel == chat.channel, subscriptions.c.chat_id == chat.chat_id)
                .order_by(tickets.c.number.desc())
                .limit(limit)
            )
        ]
        return sorted([*own, *joined], key=lambda t: t.number, reverse=True)[:limit]

    def list_tickets(self, status: Status | None = None, limit: int = 100) -> Sequence[TicketSummary]:
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
