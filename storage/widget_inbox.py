"""The widget channel's inbox: what the outbox delivered to a widget resident — streamed to the open panel,
kept for the next visit, counted as unread until the panel shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from core.ports import InboxItem
from storage.repository import Repository
from storage.tables import widget_inbox


class SqlWidgetInbox(Repository):
    """The `WidgetInbox` port on the unit of work's connection."""

    def append(self, chat_id: str, payload: dict[str, Any], at: datetime) -> int:
        result = self.conn.execute(
            insert(widget_inbox).returning(widget_inbox.c.id),
            {"chat_id": chat_id, "payload": payload, "created_at": at},
        )
        return int(result.scalar_one())

    def after(self, chat_id: str, after_id: int, limit: int) -> list[InboxItem]:
        rows = self.conn.execute(
            select(widget_inbox.c.id, widget_inbox.c.payload, widget_inbox.c.read_at)
            .where(widget_inbox.c.chat_id == chat_id, widget_inbox.c.id > after_id)
            .order_by(widget_inbox.c.id)
            .limit(limit)
        ).all()
        return [InboxItem(r.id, dict(r.payload), r.read_at is not None) for r in rows]

    def unread(self, chat_id: str) -> int:
        return int(
            self.conn.execute(
                select(func.count())
                .select_from(widget_inbox)
                .where(widget_inbox.c.chat_id == chat_id, widget_inbox.c.read_at.is_(None))
            ).scalar_one()
        )

    def mark_read(self, chat_id: str, up_to: int, at: datetime) -> int:
        result = self.conn.execute(
            update(widget_inbox)
            .where(
                widget_inbox.c.chat_id == chat_id,
                widget_inbox.c.id <= up_to,
                widget_inbox.c.read_at.is_(None),
            )
            .values(read_at=at)
        )
        return int(result.rowcount or 0)
