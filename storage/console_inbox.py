"""The console channel's inbox: what the outbox delivered to a console user, until `otklik chat` shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from storage.repository import Repository
from storage.tables import console_inbox


def append(store: Any, chat_id: str, payload: dict[str, Any], at: datetime) -> None:
    store.conn.execute(insert(console_inbox), {"chat_id": chat_id, "payload": payload, "created_at": at})


def take_unread(store: Any, chat_id: str, at: datetime) -> list[dict[str, Any]]:
    """Unread messages of this user, oldest first, now marked read."""
    rows = store.conn.execute(
        select(console_inbox.c.id, console_inbox.c.payload)
        .where(console_inbox.c.chat_id == chat_id, console_inbox.c.read_at.is_(None))
        .order_by(console_inbox.c.id)
    ).all()
    if rows:
        store.conn.execute(
            update(console_inbox).where(console_inbox.c.id.in_([r.id for r in rows])).values(read_at=at)
        )
    return [dict(r.payload) for r in rows]


class SqlConsoleInbox(Repository):
    """The `ConsoleInbox` port on the unit of work's connection."""

    def append(self, chat_id: str, payload: dict[str, Any], at: datetime) -> None:
        append(self, chat_id, payload, at)

    def take_unread(self, chat_id: str, at: datetime) -> list[dict[str, Any]]:
        return take_unread(self, chat_id, at)
