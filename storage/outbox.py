"""The outbox: messages to people other than the sender, delivered after the change that caused them commits
(DESIGN.md §6).

Writing
    The engine (core/lifecycle.py, core/notify.py) calls `uow.outbox.enqueue(reply, at)` inside the update's
    transaction; `reply.chat` is the recipient. If the transaction rolls back, the message never existed.

Rows (table `outbox`)
    channel, chat_id, user_id  the recipient, as a `ChatRef`
    payload                    JSON, `encode_reply` (core/payload.py):
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
    A sender declares its pace: `max_per_second` (per-bot rate: 30 Telegram, 20 VK) and `chat_interval`
    (seconds between messages to one chat: 1.0, 0 for the console). `otklik outbox flush` builds
    senders of configured channels without starting them: `deliver` must open what it needs lazily.

Delivery
    bots/delivery.py (`DeliveryWorker`) claims, delivers and records outcomes through the `SqlOutbox` methods
    below: `claim` (FOR UPDATE SKIP LOCKED on PostgreSQL, one row per chat), `renew_lease`, `mark_sent`,
    `mark_failed`, `next_due`; `entries` and `status_counts` serve `otklik outbox list|flush`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, insert, select, union_all, update

from core.messages import ChatRef, Reply
from core.payload import PAYLOAD_VERSION, decode_reply, encode_reply
from core.ports import OutgoingMessage
from storage.repository import Repository
from storage.tables import outbox

__all__ = ["PAYLOAD_VERSION", "SqlOutbox", "decode_reply", "encode_reply"]


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=16)
def _heads(channels: tuple[str, ...]) -> tuple[Any, Any]:
    """The outbox as `o` and the condition "o is its chat's oldest pending row, in one of these channels".

    The heads are found by stepping from one chat with pending rows to the next through the index on
    (channel, status, chat_id, id) — a recursive query: the next chat id after this one, then that chat's
    oldest row —, so that a claim costs an index probe per chat, not a pass over the pending rows: grouping
    them cost ~23-47 ms of the server's CPU per claim at a backlog of 135,000 notifications to 40 staff
    (`bench/cluster.py`, 5,000 residents: 2.7 ms now), and a worker claims after every ticket it files.
    `status = 'pending'` is repeated on `o` so that a row another worker sent meanwhile is rechecked and
    skipped when `claim` locks it. Built once per set of channels (building it cost more than running it)."""
    o = outbox.alias("o")
    heads = [_chat_heads(channel, n) for n, channel in enumerate(dict.fromkeys(channels))]
    return o, (o.c.status == "pending") & o.c.id.in_(union_all(*heads) if len(heads) > 1 else heads[0])


def _chat_heads(channel: str, n: int) -> Select[Any]:
    """The oldest pending row of each chat of `channel` with one (`n` names the query's parts)."""

    def pending(table: Any) -> Any:
        return (table.c.status == "pending") & (table.c.channel == channel)

    first, following, oldest = outbox.alias(f"first{n}"), outbox.alias(f"next{n}"), outbox.alias(f"oldest{n}")
    chats = (
        select(func.min(first.c.chat_id).label("chat_id"))
        .where(pending(first))
        .cte(f"chats{n}", recursive=True)
    )
    step = select(func.min(following.c.chat_id)).where(
        pending(following), following.c.chat_id > chats.c.chat_id
    )
    chats = chats.union_all(select(step.scalar_subquery()).where(chats.c.chat_id.is_not(None)))
    head = select(func.min(oldest.c.id)).where(pending(oldest), oldest.c.chat_id == chats.c.chat_id)
    return select(head.scalar_subquery()).where(chats.c.chat_id.is_not(None))


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


class SqlOutbox(Repository):
    """The outbox table: `enqueue` for the engine (the `Outbox` port), the rest for delivery and the CLI."""

    def enqueue(self, reply: Reply, at: datetime) -> None:
        """An outbox row for `reply.chat`, committed (or rolled back) with the change that caused it."""
        self.enqueue_many([reply], at)

    def enqueue_many(self, replies: Sequence[Reply], at: datetime) -> None:
        """Rows for several messages in one statement (executemany: psycopg sends them in one pipeline). A new
        ticket's card goes to every staff member of its organisation: one INSERT each cost a worker ~0.3 ms
        of CPU and a round trip (11-16 ms for 40 recipients, 2.5-3.3 ms in one statement)."""
        rows = []
        for reply in replies:
            if reply.chat is None:
                raise ValueError("an outbox message needs a recipient (Reply.chat)")
            rows.append(
                {
                    "channel": reply.chat.channel,
                    "chat_id": reply.chat.chat_id,
                    "user_id": reply.chat.user_id,
                    "payload": encode_reply(reply),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                    "last_error": "",
                }
            )
        if not rows:
            return
        self.uow.queued += len(rows)
        self.conn.execute(insert(outbox), rows[0] if len(rows) == 1 else rows)

    def claim(
        self, channels: Sequence[str], now: datetime, limit: int, lease: float
    ) -> list[OutgoingMessage]:
        """Due rows of these channels, at most one per chat (its oldest pending), leased to the caller."""
        if not channels:
            return []
        o, heads = _heads(tuple(channels))
        query = (
            select(o.c.id, o.c.channel, o.c.chat_id, o.c.user_id, o.c.payload, o.c.attempts)
            .where(heads, o.c.next_attempt_at <= now)
            .order_by(o.c.id)
            .limit(limit)
        )
        if not self.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=o)
        rows = self.conn.execute(query).all()
        if not rows:
            return []
        self.conn.execute(
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

    def renew_lease(self, message_id: int, until: datetime) -> None:
        """Keep a row whose delivery is still running reserved until `until`."""
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == message_id, outbox.c.status == "pending")
            .values(next_attempt_at=until)
        )

    def mark_sent(
        self,
        message_id: int,
        chat: ChatRef,
        now: datetime,
        chat_interval: float,
        started_at: datetime | None = None,
    ) -> None:
        """`started_at`: when this delivery was claimed; rows of the channel that failed transiently before it
        become due now — the channel works again, they need not wait out their back-off."""
        self.conn.execute(
            update(outbox).where(outbox.c.id == message_id).values(status="sent", sent_at=now, last_error="")
        )
        if started_at is not None:
            self.conn.execute(
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
            # Only the chat's next head waits: `claim` takes nothing else of the chat, and when that one is
            # sent in turn it moves the next. (Moving every pending row of the chat rewrote the whole backlog
            # of a busy chat on every message.)
            ready = now + timedelta(seconds=chat_interval)
            following = (
                select(func.min(outbox.c.id))
                .where(
                    outbox.c.channel == chat.channel,
                    outbox.c.chat_id == chat.chat_id,
                    outbox.c.status == "pending",
                )
                .scalar_subquery()
            )
            self.conn.execute(
                update(outbox)
                .where(outbox.c.id == following, outbox.c.next_attempt_at < ready)
                .values(next_attempt_at=ready)
            )

    def mark_failed(
        self,
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
        self.conn.execute(update(outbox).where(outbox.c.id == message_id).values(values))

    def next_due(self, channels: Sequence[str]) -> datetime | None:
        """When the next row of these channels becomes claimable (None: nothing is pending)."""
        if not channels:
            return None
        o, heads = _heads(tuple(channels))
        return _utc(self.conn.execute(select(func.min(o.c.next_attempt_at)).where(heads)).scalar())

    def entries(self, statuses: str | Sequence[str] = (), limit: int = 100) -> list[OutboxEntry]:
        """The newest `limit` rows with one of `statuses` (all of them when empty), newest first."""
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if statuses:
            query = query.where(outbox.c.status.in_([statuses] if isinstance(statuses, str) else statuses))
        rows = self.conn.execute(query)
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

    def status_counts(self) -> dict[str, int]:
        return {
            str(status): int(n)
            for status, n in self.conn.execute(
                select(outbox.c.status, func.count()).group_by(outbox.c.status)
            )
        }

    def oldest_pending(self) -> datetime | None:
        """When the oldest undelivered row was written (None: the queue is empty): the queue's age."""
        return _utc(
            self.conn.execute(
                select(func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
            ).scalar()
        )
