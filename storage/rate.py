"""A platform's send rate shared by every worker on one PostgreSQL database (DESIGN.md §12).

Telegram allows a bot about 30 messages a second and VK a community 20 requests a second — per bot, not per
process. Each worker's `CallSpacer` would multiply that by the number of workers, so on PostgreSQL every call
books the next free slot in one row (`rate_slots`), in one statement on the server's clock (the workers'
clocks may disagree): the slot starts at max(next_at, now), next_at moves one interval on, and the caller
sleeps until its slot. Slots are handed out in the order the row lock is granted; the lock is held only for
that statement's transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from storage.database import Database

BOOK = text(
    """
    INSERT INTO rate_slots (name, next_at) VALUES (:name, clock_timestamp() + make_interval(secs => :gap))
    ON CONFLICT (name) DO UPDATE
        SET next_at = greatest(rate_slots.next_at, clock_timestamp()) + make_interval(secs => :gap)
    RETURNING extract(epoch FROM rate_slots.next_at - clock_timestamp())::float8 - :gap
    """
)


def book(conn: Any, name: str, gap: float) -> float:
    """Book the next slot on `name`, `gap` s after the previous one: seconds to wait for it (≤ 0: now)."""
    return float(conn.execute(BOOK, {"name": name, "gap": gap}).scalar())


class SharedPace:
    """At most `rate` calls a second on `name` across every worker on the database (0: unlimited)."""

    def __init__(self, db: Database, name: str, rate: float) -> None:
        self.db = db
        self.name = name[:64]
        self.gap = 1.0 / rate if rate > 0 else 0.0

    async def wait(self) -> None:
        if not self.gap:
            return
        delay = await self.db.run(lambda uow: book(uow.conn, self.name, self.gap))
        if delay > 0:
            await asyncio.sleep(delay)
