"""`SqlUnitOfWork`: the core's unit of work over one SQLAlchemy connection inside an open transaction, and the
ports of its per-update path (delivery ids, dialog state).

The per-update path (claim the event, load and save the dialog) is three short statements run on every update,
so they bypass SQLAlchemy's execution machinery (~50-100 µs per statement, more than the database's own work)
and go straight to the driver of the same connection, inside the same transaction: sqlite3's cursor on
SQLite; on PostgreSQL, statements prepared once per connection that carry the transaction's BEGIN and COMMIT
with them (storage/pg_session.py). A psycopg error on them is handed to SQLAlchemy's own error handling, so
callers see the same exceptions (and a dead connection is invalidated) as from any other statement.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, delete, select

from core.messages import ChatRef
from storage import pg_session
from storage.channel_photos import SqlChannelPhotos
from storage.console_inbox import SqlConsoleInbox
from storage.open311 import SqlOpen311
from storage.outbox import SqlOutbox
from storage.photos import SqlPhotoRegistry
from storage.places import SqlSupporters
from storage.repository import Repository
from storage.residents import SqlResidents
from storage.rows import sqlite_timestamp
from storage.staff_store import SqlStaff
from storage.tables import processed_events
from storage.tickets import SqlTickets
from storage.web_store import SqlTicketSearch, SqlWebLogins
from storage.widget_inbox import SqlWidgetInbox

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


class SqlEvents(Repository):
    """Delivery ids already handled (the `ProcessedEvents` port)."""

    def claim(self, channel: str, bot: str, event_key: str, at: datetime) -> bool:
        if self.is_sqlite:
            claimed = self.raw.execute(RAW_CLAIM, (channel, bot, event_key, sqlite_timestamp(at))).fetchone()
            return claimed is not None
        return self.uow.pg("otklik_claim", (channel, bot, event_key, at)) is not None

    def seen(self, channel: str, bot: str, event_key: str) -> bool:
        found = self.conn.execute(
            select(processed_events.c.at).where(
                processed_events.c.channel == channel,
                processed_events.c.bot == bot,
                processed_events.c.event_key == event_key,
            )
        )
        return found.first() is not None

    def prune(self, before: datetime) -> int:
        return self.conn.execute(delete(processed_events).where(processed_events.c.at < before)).rowcount


class SqlDialogs(Repository):
    """Dialog state per chat (the `Dialogs` port)."""

    def load(self, chat: ChatRef) -> dict[str, Any] | None:
        key = (chat.channel, chat.chat_id)
        if self.is_sqlite:
            row = self.raw.execute(RAW_LOAD, key).fetchone()
        else:
            row = self.uow.pg("otklik_load", key)
            if row is None:  # a new chat: make its row (or meet a concurrent first message's), then lock it
                self.uow.pg("otklik_ensure_dialog", (*key, chat.user_id, datetime.now(UTC)))
                row = self.uow.pg("otklik_load", key)
        return _state(row[0] if row else None)

    def claim_and_load(
        self, chat: ChatRef, bot: str, event_key: str, at: datetime
    ) -> tuple[bool, dict[str, Any] | None]:
        if self.is_sqlite:
            return self.uow.events.claim(chat.channel, bot, event_key, at), self.load(chat)
        # One statement (one round trip) for the claim and the locked read; a new chat's row is then made and
        # locked in two more.
        key = (chat.channel, chat.chat_id)
        row = self.uow.pg("otklik_claim_and_load", (chat.channel, bot, event_key, at, *key))
        claimed, raw = row if row else ("f", None)  # always one row
        if raw is None:
            self.uow.pg("otklik_ensure_dialog", (*key, chat.user_id, datetime.now(UTC)))
            loaded = self.uow.pg("otklik_load", key)
            raw = loaded[0] if loaded else None
        return claimed == "t", _state(raw)

    def save(self, chat: ChatRef, state: dict[str, Any], at: datetime) -> None:
        raw = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        if self.is_sqlite:
            self.raw.execute(RAW_SAVE, (chat.channel, chat.chat_id, chat.user_id, raw, sqlite_timestamp(at)))
        else:
            # Held back to go with the COMMIT: one round trip for both (storage/pg_session.py).
            pg_session.hold(self.conn, "otklik_save", (raw, at, chat.user_id, chat.channel, chat.chat_id))


def _state(raw: str | None) -> dict[str, Any] | None:
    if not raw or raw == "{}":
        return None
    return json.loads(raw)  # type: ignore[no-any-return]


class SqlUnitOfWork:
    """One transaction's ports, all on the same connection: what `Database.run` hands a job. Each port is made
    on first use: an ordinary update touches two of them, and a unit of work is made per update."""

    def __init__(self, conn: Connection, *, is_sqlite: bool) -> None:
        self.conn = conn
        self.is_sqlite = is_sqlite
        self._cursor: Any = None
        self.queued = 0
        """Outbox rows enqueued through this unit of work (`Database` wakes the delivery worker)."""

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
        """SQLite: the driver's cursor of this connection, inside the same transaction as `conn`."""
        if self._cursor is None:
            self._cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self._cursor

    def pg(self, name: str, params: tuple[Any, ...]) -> tuple[str | None, ...] | None:
        """PostgreSQL: run per-update statement `name` (storage/pg_session.py), its first row as text; its
        errors are SQLAlchemy's, as if it had run through `conn.execute` (a lost connection is invalidated and
        reported as such, a deadlock is an `OperationalError` the retry loop recognises)."""
        return pg_session.run(self.conn, name, params)
