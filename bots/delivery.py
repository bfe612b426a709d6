"""Delivery: the worker that takes outbox rows (written by the engine in the update's transaction) to their
recipients through each channel's `ChannelSender` (DESIGN.md §6; the row format is in storage/outbox.py).

It claims due rows in batches — `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers share the queue,
the single writer on SQLite — at most one row per chat, the oldest pending one, so each chat gets its
messages in order and never two at once. After a success the chat's next rows wait the sender's
`chat_interval` (kept on the row, so it holds across processes); a `CallSpacer` per channel keeps calls under
the sender's `max_per_second`. Failures back off exponentially (base × 2^(n−1), capped) until the channel next
succeeds, or wait `retry_after` when the platform said so; after `max_attempts` failures, or a permanent one,
the row is dead (`otklik outbox list --failed`). Delivery is at least once: a crash between sending and
recording sends the message again after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bots.pacing import CallSpacer
from core.personal_data import pseudonym
from core.ports import ChannelSender, Database, DeliveryError, OutgoingMessage, Pace

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_DELAY = 5.0
MAX_DELAY = 3600.0
LEASE = 20.0
"""Seconds a claimed row is reserved for its worker; renewed every LEASE / 4 while the delivery runs."""
BATCH = 32


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FlushReport:
    sent: int
    retrying: int
    dead: int
    pending: int


class DeliveryWorker:
    """Claims due outbox rows and hands them to their channel's sender, with retries, back-off and pacing."""

    def __init__(
        self,
        db: Database,
        senders: Mapping[str, ChannelSender],
        *,
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = MAX_ATTEMPTS,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        lease: float = LEASE,
        renew_every: float | None = None,
        batch: int = BATCH,
        concurrency: int = 16,
        pace: Callable[[str, float], Pace] = CallSpacer.for_channel,
    ) -> None:
        """`pace(channel, max_per_second)` spaces each channel's calls: in this process by default, shared by
        every worker on PostgreSQL (`otklik run` passes `App.pace`)."""
        self.db = db
        self.senders = dict(senders)
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.renew_every = renew_every if renew_every is not None else lease / 4
        self.batch = batch
        self.stats: Counter[str] = Counter()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._spacers = {name: pace(name, sender.max_per_second) for name, sender in self.senders.items()}

    def chat_interval(self, channel: str) -> float:
        return self.senders[channel].chat_interval

    def backoff(self, failures: int) -> float:
        """Seconds before the next try after `failures` failures (1 → base)."""
        return min(self.max_delay, self.base_delay * 2 ** max(0, failures - 1))

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver it; the number of rows claimed."""
        started_at = self.clock()
        channels = list(self.senders)
        messages = await self.db.run(
            lambda uow: uow.outbox.claim(channels, now=started_at, limit=self.batch, lease=self.lease)
        )
        if messages:
            await asyncio.gather(*(self._deliver(m, started_at) for m in messages))
        return len(messages)

    async def _deliver(self, message: OutgoingMessage, started_at: datetime) -> None:
        chat = message.reply.chat
        assert chat is not None
        sender = self.senders[chat.channel]
        error: DeliveryError | None = None
        async with self._semaphore:
            await self._spacers[chat.channel].wait()
            done = asyncio.Event()
            keeper = asyncio.create_task(self._keep_lease(message.id, done))
            try:
                await sender.deliver(message)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a bug or an unexpected library error: retry, and say so in the log
                log.exception("outbox message %s to %s failed", message.id, pseudonym(chat.key))
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
            finally:
                done.set()
                await keeper  # a renewal in flight lands before the outcome, never after it
        now = self.clock()
        if error is None:
            self.stats["sent"] += 1
            interval = self.chat_interval(chat.channel)
            await self.db.run(
                lambda uow: uow.outbox.mark_sent(
                    message.id, chat, now=now, chat_interval=interval, started_at=started_at
                )
            )
            return
        failures = message.attempt + 1
        retry_at: datetime | None
        if error.permanent or failures >= self.max_attempts:
            retry_at = None
            self.stats["dead"] += 1
            log.warning("outbox message %s to %s is dead: %s", message.id, pseudonym(chat.key), error)
        else:
            delay = error.retry_after if error.retry_after is not None else self.backoff(failures)
            retry_at = now + timedelta(seconds=max(0.0, delay))
            self.stats["retrying"] += 1
        reason, transient = str(error), error.retry_after is None
        await self.db.run(
            lambda uow: uow.outbox.mark_failed(
                message.id, reason, retry_at=retry_at, now=now, transient=transient
            )
        )

    async def _keep_lease(self, message_id: int, done: asyncio.Event) -> None:
        """Renew the row's lease every `renew_every` seconds until `done`, so a long delivery (an album
        upload) is not taken by another worker while the lease stays short for a worker that died."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=self.renew_every)
                return
            until = self.clock() + timedelta(seconds=self.lease)
            try:
                await self.db.run(lambda uow, until=until: uow.outbox.renew_lease(message_id, until))
            except Exception:  # the database hiccupped: the next renewal may succeed
                log.warning("outbox message %s: renewing its lease failed", message_id, exc_info=True)

    async def run(self, stopping: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stopping` is set. With nothing to do, rest until this process queues a message
        (`Database.outbox_queued`) or `idle` seconds pass (rows queued by other processes)."""
        queued = self.db.outbox_queued
        while not stopping.is_set():
            queued.clear()  # before claiming: what is queued meanwhile wakes the rest below at once
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("outbox worker: claim failed")
                claimed = 0
            if not claimed:
                await _first(stopping, queued, timeout=idle)

    async def flush(self, linger: float = 2.0) -> FlushReport:
        """Deliver everything due now, and what becomes due within `linger` seconds (chat spacing, short
        retry_after); leave later retries for the worker."""
        before = Counter(self.stats)
        channels = list(self.senders)
        while True:
            if await self.run_once():
                continue
            due = await self.db.run(lambda uow: uow.outbox.next_due(channels))
            if due is None:
                break
            wait = (due - self.clock()).total_seconds()
            if wait > linger:
                break
            await asyncio.sleep(max(wait, 0.01))
        counts = await self.db.run(lambda uow: uow.outbox.status_counts())
        done = self.stats - before
        return FlushReport(
            sent=done["sent"], retrying=done["retrying"], dead=done["dead"], pending=counts.get("pending", 0)
        )


async def _first(*events: asyncio.Event, timeout: float) -> None:
    """Return when any of the events is set, or after `timeout` seconds."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
