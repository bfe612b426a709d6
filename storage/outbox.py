"""The outbox: messages to people other than the sender, delivered after the change that caused them commits
(DESIGN.md §6).

Writing
    The engine (core/lifecycle.py, core/notify.py) calls `Store.enqueue(reply, at)` inside the update's
    transaction; `reply.chat` is the recipient. If the transaction rolls back, the message never existed.

Rows (table `outbox`)
    channel, chat_id, user_id  the recipient, as a `ChatRef`
    payload                    JSON, `encode_reply` below:
        {"v": 1,
         "text": "…",                               always present, may be long (up to ~3,500 characters)
         "buttons": [[["label", "data"], …], …],    rows of inline buttons; data ≤ 64 bytes, e.g. "st:take:12"
         "photos": ["<sha256>", …],                 0–10 photos in the photo store (PhotoStore.read(sha))
         "location": {"lat": 52.28, "lon": 104.28} | null,
         "ask_location": false,
         "language": "ru" | null,                   the language of the texts (Reply.language)
         "extra": {}}
    status                     pending → sent | dead | dropped (never sent: `otklik staff remove` ended the
                               recipient's staff access; `extra.staff` marks messages to a staff member);
                               attempts = failed deliveries so far
    next_attempt_at            when the row may be tried (again); a claim pushes it forward by a short lease
                               (20 s), renewed while the delivery runs (a long album upload keeps it), so a
                               row of a worker that died mid-delivery is retried within the lease
    backoff_since              set while the row waits because of a transient failure (when it failed); a
                               success on its channel whose delivery started after that makes it due at
                               once (the channel is back: no need to wait out the back-off). A success
                               that ran alongside the failure proves nothing and cuts nothing.
    last_error                 the last DeliveryError's text

The ChannelSender contract (core/ports.py) — what a Telegram or VK adapter implements
    `deliver(OutgoingMessage)` gets `message.reply` (a `core.messages.Reply` with `.chat` = recipient),
    `message.id` (stable across retries: use it to avoid double sends if the platform supports it) and
    `message.attempt` (failures so far). Render, in this order:
      1. photos — one photo, or an album of 2–10 (split longer lists), read from the photo store by sha256
         and uploaded (cache the platform's file id per sha256 to avoid re-uploads); no caption needed;
      2. location — a map pin (Telegram sendLocation / VK lat+long) when `location` is set;
      3. text — one message with `buttons` as an inline keyboard (Telegram callback_data = data; VK callback
         button payload = data). Pressing a button must come back as `Incoming(button=data)` from that chat.
         Text longer than the platform's limit is split, buttons go on the last part.
    Photos and buttons cannot share a Telegram message with an album, hence the separate text message.
    Return normally when delivered. Raise `DeliveryError(reason, retry_after=seconds)` for a rate limit
    (Telegram 429 `retry_after`, VK error 6/9), `DeliveryError(reason, permanent=True)` when it can never
    succeed (bot blocked, chat not found, user deactivated, photo missing), `DeliveryError(reason)` for
    anything transient (network, 5xx). Any other exception counts as transient and is logged.
    A sender may declare `max_per_second` (per-bot rate, default 30 Telegram / 20 VK) and `chat_interval`
    (seconds between messages to one chat, default 1.0; 0 for the console). `otklik outbox flush` builds
    senders of configured channels without starting them: `deliver` must open what it needs lazily.

Delivery (`OutboxWorker`)
    Claims due rows in batches — `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers share the queue,
    the single writer on SQLite — taking at most one row per chat, the oldest pending one, so each chat gets
    its messages in order and never two at once. After a success the chat's next rows wait `chat_interval`
    (stored in `next_attempt_at`, so it holds across processes); a per-channel limiter spaces calls to
    `max_per_second`. Failures back off exponentially (base × 2^(n−1), capped) until the channel next
    succeeds, or wait `retry_after` when the platform said so (that wait is kept: it is the platform's
    rule); after `max_attempts` failures, or a permanent one, the row is dead
    (`otklik outbox list --failed`). Delivery is at least once: a crash between sending and recording sends
    the message again after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, select, update

from core.messages import ChatRef, Location, Photo, Reply
from core.ports import ChannelSender, DeliveryError, OutgoingMessage
from storage.tables import OutboxRow

log = logging.getLogger(__name__)

outbox = OutboxRow.__table__
PAYLOAD_VERSION = 1

MAX_ATTEMPTS = 8
BASE_DELAY = 5.0
MAX_DELAY = 3600.0
LEASE = 20.0
"""Seconds a claimed row is reserved for its worker; renewed every LEASE / 4 while the delivery runs."""
BATCH = 32
CHANNEL_RATES = {"telegram": 30.0, "vk": 20.0, "console": 0.0}  # calls per second; 0 = unlimited
DEFAULT_CHANNEL_RATE = 20.0
CHAT_INTERVALS = {"console": 0.0}
DEFAULT_CHAT_INTERVAL = 1.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# --- payload ---------------------------------------------------------------------------------------------
def encode_reply(reply: Reply) -> dict[str, Any]:
    return {
        "v": PAYLOAD_VERSION,
        "text": reply.text,
        "buttons": [[[label, data] for label, data in row] for row in reply.buttons],
        "photos": [p.sha256 for p in reply.photos],
        "location": (
            {"lat": reply.location.lat, "lon": reply.location.lon} if reply.location is not None else None
        ),
        "ask_location": reply.ask_location,
        "language": reply.language,
        "extra": dict(reply.extra),
    }


def decode_reply(chat: ChatRef, payload: Mapping[str, Any]) -> Reply:
    location = payload.get("location")
    return Reply(
        text=str(payload.get("text", "")),
        buttons=tuple(
            tuple((str(label), str(data)) for label, data in row) for row in payload.get("buttons", ())
        ),
        ask_location=bool(payload.get("ask_location", False)),
        photos=tuple(Photo(sha) for sha in payload.get("photos", ())),
        location=Location(float(location["lat"]), float(location["lon"])) if location else None,
        chat=chat,
        language=payload.get("language") or None,
        extra={str(k): str(v) for k, v in (payload.get("extra") or {}).items()},
    )


# --- rows: claim, outcome, listing (each runs inside Database.run) ---------------------------------------
def _heads(channels: Sequence[str]) -> tuple[Any, Any]:
    """The outbox as `o` and the condition "o is its chat's oldest pending row, in one of these channels"."""
    o = outbox.alias("o")
    p = outbox.alias("p")
    earlier = (
        select(p.c.id)
        .where(
            p.c.channel == o.c.channel, p.c.chat_id == o.c.chat_id, p.c.status == "pending", p.c.id < o.c.id
        )
        .exists()
    )
    return o, (o.c.status == "pending") & o.c.channel.in_(list(channels)) & ~earlier


def claim(
    store: Any, channels: Sequence[str], now: datetime, limit: int, lease: float
) -> list[OutgoingMessage]:
    """Due rows of these channels, at most one per chat (its oldest pending), leased to the caller."""
    if not channels:
        return []
    o, heads = _heads(channels)
    query = (
        select(o.c.id, o.c.channel, o.c.chat_id, o.c.user_id, o.c.payload, o.c.attempts)
        .where(heads, o.c.next_attempt_at <= now)
        .order_by(o.c.id)
        .limit(limit)
    )
    if not store.is_sqlite:
        query = query.with_for_update(skip_locked=True, of=o)
    rows = store.conn.execute(query).all()
    if not rows:
        return []
    store.conn.execute(
        update(outbox)
        .where(outbox.c.id.in_([r.id for r in rows]))
        .values(next_attempt_at=now + timedelta(seconds=lease), backoff_since=None)
    )
    return [
        OutgoingMessage(
            id=int(r.id),
            reply=decode_reply(ChatRef(r.channel, r.chat_id, r.user_id), r.payload),
            attempt=int(r.attempts),
        )
        for r in rows
    ]


def renew_lease(store: Any, message_id: int, until: datetime) -> None:
    """Keep a row whose delivery is still running reserved until `until`."""
    store.conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.status == "pending")
        .values(next_attempt_at=until)
    )


def mark_sent(
    store: Any,
    message_id: int,
    chat: ChatRef,
    now: datetime,
    chat_interval: float,
    started_at: datetime | None = None,
) -> None:
    """`started_at`: when this delivery was claimed; rows of the channel that failed transiently before it
    become due now — the channel works again, they need not wait out their back-off."""
    store.conn.execute(
        update(outbox).where(outbox.c.id == message_id).values(status="sent", sent_at=now, last_error="")
    )
    if started_at is not None:
        store.conn.execute(
            update(outbox)
            .where(
                outbox.c.channel == chat.channel,
                outbox.c.status == "pending",
                outbox.c.backoff_since < started_at,
                outbox.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now, backoff_since=None)
        )
    if chat_interval > 0:
        ready = now + timedelta(seconds=chat_interval)
        store.conn.execute(
            update(outbox)
            .where(
                outbox.c.channel == chat.channel,
                outbox.c.chat_id == chat.chat_id,
                outbox.c.status == "pending",
                outbox.c.next_attempt_at < ready,
            )
            .values(next_attempt_at=ready)
        )


def mark_failed(
    store: Any,
    message_id: int,
    error: str,
    retry_at: datetime | None,
    now: datetime | None = None,
    transient: bool = True,
) -> None:
    """`retry_at` None: the row is dead. `transient` (with `now`, the failure's time): the wait ends early
    when a later delivery on the channel succeeds (False for the platform's own `retry_after`)."""
    if now is None:
        transient = False
    values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "last_error": error[:2000]}
    if retry_at is None:
        values["status"] = "dead"
    else:
        values["next_attempt_at"] = retry_at
        values["backoff_since"] = now if transient else None
    store.conn.execute(update(outbox).where(outbox.c.id == message_id).values(values))


def next_due(store: Any, channels: Sequence[str]) -> datetime | None:
    """When the next row of these channels becomes claimable (None: nothing is pending)."""
    if not channels:
        return None
    o, heads = _heads(channels)
    return _utc(store.conn.execute(select(func.min(o.c.next_attempt_at)).where(heads)).scalar())


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    chat: ChatRef
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str
    text: str


def list_entries(store: Any, statuses: str | Sequence[str] = (), limit: int = 100) -> list[OutboxEntry]:
    """The newest `limit` rows with one of `statuses` (all of them when empty), newest first."""
    query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if statuses:
        query = query.where(outbox.c.status.in_([statuses] if isinstance(statuses, str) else statuses))
    rows = store.conn.execute(query)
    return [
        OutboxEntry(
            id=int(r.id),
            chat=ChatRef(r.channel, r.chat_id, r.user_id),
            status=r.status,
            attempts=int(r.attempts),
            created_at=_utc(r.created_at),  # type: ignore[arg-type]
            next_attempt_at=_utc(r.next_attempt_at),  # type: ignore[arg-type]
            sent_at=_utc(r.sent_at),
            last_error=r.last_error,
            text=str((r.payload or {}).get("text", "")),
        )
        for r in rows
    ]


def status_counts(store: Any) -> dict[str, int]:
    return {
        str(status): int(n)
        for status, n in store.conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    }


# --- the worker -------------------------------------------------------------------------------------------
class _Spacer:
    """At most `rate` calls per second through this channel (in this process)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass(frozen=True, slots=True)
class FlushReport:
    sent: int
    retrying: int
    dead: int
    pending: int


class OutboxWorker:
    def __init__(
        self,
        db: Any,
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
    ) -> None:
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
        self._spacers = {
            name: _Spacer(
                float(getattr(sender, "max_per_second", CHANNEL_RATES.get(name, DEFAULT_CHANNEL_RATE)))
            )
            for name, sender in self.senders.items()
        }

    def chat_interval(self, channel: str) -> float:
        sender = self.senders.get(channel)
        default = CHAT_INTERVALS.get(channel, DEFAULT_CHAT_INTERVAL)
        return float(getattr(sender, "chat_interval", default))

    def backoff(self, failures: int) -> float:
        """Seconds before the next try after `failures` failures (1 → base)."""
        return min(self.max_delay, self.base_delay * 2 ** max(0, failures - 1))

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver it; the number of rows claimed."""
        started_at = self.clock()
        messages = await self.db.run(
            partial(claim, channels=list(self.senders), now=started_at, limit=self.batch, lease=self.lease)
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
                log.exception("outbox message %s to %s failed", message.id, chat.key)
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
            finally:
                done.set()
                await keeper  # a renewal in flight lands before the outcome, never after it
        now = self.clock()
        if error is None:
            self.stats["sent"] += 1
            await self.db.run(
                partial(
                    mark_sent,
                    message_id=message.id,
                    chat=chat,
                    now=now,
                    chat_interval=self.chat_interval(chat.channel),
                    started_at=started_at,
                )
            )
            return
        failures = message.attempt + 1
        retry_at: datetime | None
        if error.permanent or failures >= self.max_attempts:
            retry_at = None
            self.stats["dead"] += 1
            log.warning("outbox message %s to %s is dead: %s", message.id, chat.key, error)
        else:
            delay = error.retry_after if error.retry_after is not None else self.backoff(failures)
            retry_at = now + timedelta(seconds=max(0.0, delay))
            self.stats["retrying"] += 1
        await self.db.run(
            partial(
                mark_failed,
                message_id=message.id,
                error=str(error),
                retry_at=retry_at,
                now=now,
                transient=error.retry_after is None,
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
                await self.db.run(partial(renew_lease, message_id=message_id, until=until))
            except Exception:  # the database hiccupped: the next renewal may succeed
                log.warning("outbox message %s: renewing its lease failed", message_id, exc_info=True)

    async def run(self, stopping: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stopping` is set; poll every `idle` seconds when there is nothing to do."""
        while not stopping.is_set():
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("outbox worker: claim failed")
                claimed = 0
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=idle)

    async def flush(self, linger: float = 2.0) -> FlushReport:
        """Deliver everything due now, and what becomes due within `linger` seconds (chat spacing, short
        retry_after); leave later retries for the worker."""
        before = Counter(self.stats)
        channels = list(self.senders)
        while True:
            if await self.run_once():
                continue
            due = await self.db.run(partial(next_due, channels=channels))
            if due is None:
                break
            wait = (due - self.clock()).total_seconds()
            if wait > linger:
                break
            await asyncio.sleep(max(wait, 0.01))
        counts = await self.db.run(status_counts)
        done = self.stats - before
        return FlushReport(
            sent=done["sent"], retrying=done["retrying"], dead=done["dead"], pending=counts.get("pending", 0)
        )
