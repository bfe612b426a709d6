"""A platform's send rate shared by every worker on one PostgreSQL database (DESIGN.md §12).

Telegram allows a bot about 30 messages a second (more with paid broadcasts: TELEGRAM_RATE) and VK a community
20 requests a second — per bot, not per process. Each worker's `CallSpacer` would multiply that by the number
of workers, so on PostgreSQL every call books the next free slot in one row (`rate_slots`), in one statement
on the server's clock (the workers' clocks may disagree): the slot starts at max(next_at, now), next_at moves
one interval on, and the caller sleeps until its slot. Slots are handed out in the order the row lock is
granted; the lock is held only for that statement's transaction.

At a high rate a round trip per call would cost more than the call itself and queue every worker on that one
row, so a worker books a block of slots at once — as many as fit in `BLOCK` seconds (one at 30/s, 50 at
1,000/s) — and hands them out in order. A slot not used within `BLOCK` of its time is dropped (its capacity
lost, never spent late in a burst).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from sqlalchemy import text

from storage.database import Database

BLOCK = 0.05
"""Seconds of slots a worker books in one statement."""

BOOK = text(
    """
    INSERT INTO rate_slots (name, next_at) VALUES (:name, clock_timestamp() + make_interval(secs => :span))
    ON CONFLICT (name) DO UPDATE
        SET next_at = greatest(rate_slots.next_at, clock_timestamp()) + make_interval(secs => :span)
    RETURNING extract(epoch FROM rate_slots.next_at - clock_timestamp())::float8 - :span
    """
)


def book(conn: Any, name: str, gap: float, slots: int = 1) -> float:
    """Book the next `slots` slots on `name`, `gap` s apart and after the previous one: seconds to wait for
    the first (≤ 0: now)."""
    return float(conn.execute(BOOK, {"name": name, "span": gap * slots}).scalar())


class SharedPace:
    """At most `rate` calls a second on `name` across every worker on the database (0: unlimited)."""

    def __init__(self, db: Database, name: str, rate: float) -> None:
        self.db = db
        self.name = name[:64]
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self.block = max(1, int(rate * BLOCK))
        self._slots: deque[float] = deque()  # booked and not yet used: their times on this event loop
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.gap:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:  # one booking at a time; the others take its slots
            while self._slots and self._slots[0] < loop.time() - BLOCK:
                self._slots.popleft()
            if not self._slots:
                delay = await self.db.run(lambda uow: book(uow.conn, self.name, self.gap, self.block))
                first = loop.time() + delay
                self._slots.extend(first + n * self.gap for n in range(self.block))
            slot = self._slots.popleft()
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
