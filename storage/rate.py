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

A slot's time is when its call may go, not when it goes: a worker whose event loop is busy wakes late, and
calls whose slots passed meanwhile would all go in the same moment — the platform counts arrivals, and one
busy worker's outbox was seen at 33 messages in a second and 30.6 a second over five (`bench/cluster.py`,
one worker, 1 December). So the worker lets its own calls go one at a time, each at its slot and at least
one interval after the one before actually went.

A pace can live inside another: the outbox's 30 notifications a second are also messages of the bot, whose
own rate (TELEGRAM_RATE) its answers use. A notification that took its outbox slot and then queued for a
bot slot behind a busy worker's answers went out later by as long as that queue was, into other
notifications' slots (three workers: 30.2-30.8 a second over five). So `SharedPace(..., within=the bot's
pace)` books each slot in both rows at once, at the later of their next free times (`BOOK_WITHIN`), and
the call then goes at that slot without waiting for the bot's pace again.
"""

from __future__ import annotations

import asyncio
import time
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

BOOK_WITHIN = text(
    """
    WITH locked AS (
        SELECT next_at FROM rate_slots WHERE name IN (:name, :outer) ORDER BY name FOR UPDATE
    ), slot AS (
        SELECT greatest(max(next_at), clock_timestamp()) AS at FROM locked
    )
    UPDATE rate_slots
        SET next_at = slot.at + make_interval(secs => CASE name WHEN :name THEN :gap ELSE :outer_gap END)
    FROM slot WHERE name IN (:name, :outer)
    RETURNING extract(epoch FROM slot.at - clock_timestamp())::float8
    """
)
"""One slot in two rows at once (`within`): at the later of their next free times, each row's next moved one
of its own intervals on from there."""

ENSURE = text(
    "INSERT INTO rate_slots (name, next_at) VALUES (:name, clock_timestamp()), (:outer, clock_timestamp()) "
    "ON CONFLICT (name) DO NOTHING"
)


def book(conn: Any, name: str, gap: float, slots: int = 1) -> float:
    """Book the next `slots` slots on `name`, `gap` s apart and after the previous one: seconds to wait for
    the first (≤ 0: now)."""
    return float(conn.execute(BOOK, {"name": name, "span": gap * slots}).scalar())


def book_within(conn: Any, name: str, gap: float, outer: str, outer_gap: float) -> float:
    """Book the next slot on `name` that is also free on `outer`: seconds to wait for it (≤ 0: now)."""
    conn.execute(ENSURE, {"name": name, "outer": outer})
    params = {"name": name, "gap": gap, "outer": outer, "outer_gap": outer_gap}
    return float(conn.execute(BOOK_WITHIN, params).scalar())


class SharedPace:
    """At most `rate` calls a second on `name` across every worker on the database (0: unlimited); `within`:
    each of these calls also takes a slot of that pace (which its callers then do not wait for again)."""

    def __init__(self, db: Database, name: str, rate: float, within: SharedPace | None = None) -> None:
        self.db = db
        self.name = name[:64]
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self.within = within if within is not None and within.gap else None
        self.block = 1 if self.within else max(1, int(rate * BLOCK))
        self._slots: deque[float] = deque()  # booked and not yet used: their times on this event loop
        self._went = float("-inf")  # when this worker's last call actually went, on its event loop
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.gap:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:  # one call at a time, in the order they came; the others take its slots
            while self._slots and self._slots[0] < loop.time() - BLOCK:
                self._slots.popleft()
            if not self._slots:
                first = await self.db.run(self._book)
                self._slots.extend(first + n * self.gap for n in range(self.block))
            delay = max(self._slots.popleft(), self._went + self.gap) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._went = loop.time()

    def _book(self, uow: Any) -> float:
        """In the database thread: the first booked slot on this process's monotonic clock, which is the event
        loop's (asyncio's `loop.time()`). Read here, as the answer comes, and not once the event loop gets to
        it: a busy loop takes tens of milliseconds to, and a slot placed that much late is a call sent that
        much late — into the slots of other workers, whose loops were less busy (`bench/cluster.py`, three
        workers: 160 outbox messages in five seconds at 30/s)."""
        if self.within is not None:
            delay = book_within(uow.conn, self.name, self.gap, self.within.name, self.within.gap)
        else:
            delay = book(uow.conn, self.name, self.gap, self.block)
        return time.monotonic() + delay
