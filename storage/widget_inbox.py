"""The widget channel's inbox: what the outbox delivered to a widget resident — streamed to the open panel,
kept for the next visit, counted as unread until the panel shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from core.ports import InboxItem
from storage.repository import Repository
from storage.tables import WidgetInboxRow

inbox = WidgetInboxRow.__table__


class SqlWidgetInbox(Repository):
    """The `WidgetInbox` port on the unit of work's connection."""

    def append(self, chat_id: str, payload: dict[str, Any], at: datetime) -> int:
        result = self.conn.execute(
            insert(inbox).returning(inbox.c.id), {"chat_id": chat_id, "payload": payload, "created_at": at}
        )
        return int(result.scalar_one())

    def after(self, chat_id: str, after_id: int, limit: int) -> list[InboxItem]:
        rows = self.conn.execute(
            select(inbox.c.id, inbox.c.payload, inbox.c.read_at)
            .where(inbox.c.chat_id == chat_id, inbox.c.id > after_id)
            .order_by(inbox.c.id)
            .limit(limit)
        ).all()
        return [InboxItem(r.id, dict(r.payload), r.read_at is not None) for r in rows]

    def unread(self, chat_id: str) -> int:
        return int(
            self.conn.execute(
                select(func.count())
                .select_from(inbox)
                .where(inbox.c.chat_id == chat_id, inbox.c.read_at.is_(None))
            ).scalar_one()
        )

    def mark_read(self, chat_id: str, up_to: int, at: datetime) -> int:
        result = self.conn.execute(
            update(inbox)
            .where(inbox.c.chat_id == chat_id, inbox.c.id <= up_to, inbox.c.read_at.is_(None))
            .values(read_at=at)
        )
        return int(result.rowcount or 0)
