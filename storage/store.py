"""`SqlUnitOfWork`: the core's unit of work over one SQLAlchemy connection inside an open transaction, and the
ports of its per-update path (delivery ids, dialog state).

Core statements, not ORM sessions: the per-update path (claim event, load and save dialog) is three short
statements, prepared once and reused from SQLAlchemy's compiled cache.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql

from core.messages import ChatRef
from storage.channel_photos import SqlChannelPhotos
from storage.console_inbox import SqlConsoleInbox
from storage.open311 import SqlOpen311
from storage.outbox import SqlOutbox
from storage.photos import SqlPhotoRegistry
from storage.places import SqlSupporters
from storage.repository import Repository
from storage.residents import SqlResidents
from storage.staff_store import SqlStaff
from storage.tables import DialogRow, ProcessedEventRow, TicketRow
from storage.tickets import SqlTickets
from storage.web_store import SqlTicketSearch, SqlWebLogins
from storage.widget_inbox import SqlWidgetInbox

dialogs = DialogRow.__table__
events = ProcessedEventRow.__table__
tickets = TicketRow.__table__


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


class SqlEvents(Repository):
    """Delivery ids already handled (the `ProcessedEvents` port)."""

    def claim(self, channel: str, bot: str, event_key: str, at: datetime) -> bool:
        if self.is_sqlite:
            claimed = self.raw.execute(RAW_CLAIM, (channel, bot, event_key, sqlite_timestamp(at))).fetchone()
            return claimed is not None
        result = self.conn.execute(
            PG_CLAIM, {"channel": channel, "bot": bot, "event_key": event_key, "at": at}
        )
        return result.first() is not None

    def seen(self, channel: str, bot: str, event_key: str) -> bool:
        found = self.conn.execute(
            select(events.c.at).where(
                events.c.channel == channel, events.c.bot == bot, events.c.event_key == event_key
            )
        )
        return found.first() is not None

    def prune(self, before: datetime) -> int:
        return self.conn.execute(delete(events).where(events.c.at < before)).rowcount


class SqlDialogs(Repository):
    """Dialog state per chat (the `Dialogs` port)."""

    def load(self, chat: ChatRef) -> dict[str, Any] | None:
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

    def save(self, chat: ChatRef, state: dict[str, Any], at: datetime) -> None:
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


class SqlUnitOfWork:
    """One transaction's ports, all on the same connection: what `Database.run` hands a job. Each port is made
    on first use: an ordinary update touches two of them, and a unit of work is made per update."""

    def __init__(self, conn: Connection, *, is_sqlite: bool) -> None:
        self.conn = conn
        self.is_sqlite = is_sqlite
        self._cursor: Any = None

    @cached_property
    def events(self) -> SqlEvents:
        return SqlEvents(self)

    @cached_property
    def dialogs(self) -> SqlDialogs:
        return SqlDialogs(self)

    @cached_property
    def tickets(self) -> SqlTickets:
        return SqlTickets(self)

    @cached_property
    def staff(self) -> SqlStaff:
        return SqlStaff(self)

    @cached_property
    def supporters(self) -> SqlSupporters:
        return SqlSupporters(self)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self)

    @cached_property
    def open311(self) -> SqlOpen311:
        return SqlOpen311(self)

    @cached_property
    def residents(self) -> SqlResidents:
        return SqlResidents(self)

    @cached_property
    def web_logins(self) -> SqlWebLogins:
        return SqlWebLogins(self)

    @cached_property
    def ticket_search(self) -> SqlTicketSearch:
        return SqlTicketSearch(self)

    # what channel adapters record about photos (`AdapterUnitOfWork`)
    @cached_property
    def photo_registry(self) -> SqlPhotoRegistry:
        return SqlPhotoRegistry(self)

    @cached_property
    def channel_photos(self) -> SqlChannelPhotos:
        return SqlChannelPhotos(self)

    @cached_property
    def console_inbox(self) -> SqlConsoleInbox:
        return SqlConsoleInbox(self)

    @cached_property
    def widget_inbox(self) -> SqlWidgetInbox:
        return SqlWidgetInbox(self)

    @property
    def raw(self) -> Any:
        """The sqlite3 cursor of this connection, inside the same transaction as `conn`."""
        if self._cursor is None:
            self._cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self._cursor
