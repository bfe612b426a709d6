"""The outbox and its worker: rows written with the transaction, retries with back-off, `retry_after`,
dead letters, one message at a time per chat in order, and SKIP LOCKED claims on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bots.delivery import LEASE, DeliveryWorker
from core.messages import ChatRef, Location, Photo, Reply
from core.ports import DeliveryError, OutgoingMessage
from storage.database import Database
from storage.outbox import decode_reply, encode_reply
from storage.store import SqlUnitOfWork
from tests.conftest import NOW, PG_URL
from tests.fakes import wait_for
from tests.support import Clock


class FlakySender:
    """A channel that fails as scripted: each entry of `script` is the outcome of one delivery (None: ok)."""

    channel = "test"
    max_per_second = 0.0

    def __init__(self, script: list[Exception | None] | None = None, chat_interval: float = 0.0) -> None:
        self.script = list(script or [])
        self.chat_interval = chat_interval
        self.calls: list[tuple[int, str, str, int]] = []
        self.delivered: list[str] = []

    async def deliver(self, message: OutgoingMessage) -> None:
        assert message.reply.chat is not None
        self.calls.append((message.id, message.reply.chat.chat_id, message.reply.text, message.attempt))
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.delivered.append(message.reply.text)


def to(chat_id: str, text: str) -> Reply:
    return Reply(text=text, chat=ChatRef("test", chat_id, chat_id))


async def enqueue(db: Database, *replies: Reply) -> None:
    def job(store: SqlUnitOfWork) -> None:
        for reply in replies:
            store.outbox.enqueue(reply, NOW)

    await db.run(job)


async def rows(db: Database, status: str = "pending") -> list:  # type: ignore[type-arg]
    return await db.run(lambda store: store.outbox.entries(status))


def test_payload_round_trip() -> None:
    reply = Reply(
        text="Обращение № 7",
        buttons=((("1", "vd:rate:7:1"), ("2", "vd:rate:7:2")), (("❌ Не устранено", "vd:nf:7"),)),
        photos=(Photo("a" * 64), Photo("b" * 64)),
        location=Location(52.28, 104.28),
        chat=ChatRef("vk", "42", "42"),
        language="ru",
        extra={"lang": "ru"},
    )
    assert decode_reply(reply.chat, encode_reply(reply)) == reply  # type: ignore[arg-type]


async def test_many_messages_queued_at_once_are_rows_in_order_and_wake_the_worker(db: Database) -> None:
    db.outbox_queued.clear()
    await db.run(lambda store: store.outbox.enqueue_many([to("A", "a1"), to("B", "b1"), to("A", "a2")], NOW))
    assert db.outbox_queued.is_set()
    queued = [(e.chat.chat_id, e.text) for e in reversed(await rows(db))]
    assert queued == [("A", "a1"), ("B", "b1"), ("A", "a2")]
    sender = FlakySender()
    worker = DeliveryWorker(db, {"test": sender}, clock=Clock(NOW))
    await worker.flush()
    assert sender.delivered == ["a1", "b1", "a2"]
    with pytest.raises(ValueError, match="recipient"):
        await db.run(lambda store: store.outbox.enqueue_many([to("A", "x"), Reply(text="nobody")], NOW))
    assert await rows(db) == []


async def test_a_message_is_written_only_if_its_transaction_commits(db: Database) -> None:
    def failing(store: SqlUnitOfWork) -> None:
        store.outbox.enqueue(to("1", "never"), NOW)
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await db.run(failing)
    await enqueue(db, to("1", "kept"))
    assert [e.text for e in await rows(db)] == ["kept"]


async def test_transient_failures_back_off_exponentially_then_deliver(db: Database) -> None:
    clock = Clock(NOW)
    sender = FlakySender([DeliveryError("timeout"), DeliveryError("502")])
    worker = DeliveryWorker(db, {"test": sender}, clock=clock, base_delay=5, max_attempts=5)
    await enqueue(db, to("1", "hello"))

    assert await worker.run_once() == 1
    [row] = await rows(db)
    assert row.attempts == 1 and row.last_error == "timeout"
    assert (row.next_attempt_at - NOW).total_seconds() == 5
    assert await worker.run_once() == 0  # not due yet
    clock.advance(seconds=5)
    assert await worker.run_once() == 1
    [row] = await rows(db)
    assert row.attempts == 2 and (row.next_attempt_at - clock.now).total_seconds() == 10
    clock.advance(seconds=9)
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert sender.delivered == ["hello"] and [c[3] for c in sender.calls] == [0, 1, 2]
    assert await rows(db) == [] and len(await rows(db, "sent")) == 1


async def test_retry_after_from_the_platform_is_honoured(db: Database) -> None:
    clock = Clock(NOW)
    sender = FlakySender([DeliveryError("429 Too Many Requests", retry_after=42)])
    worker = DeliveryWorker(db, {"test": sender}, clock=clock)
    await enqueue(db, to("1", "hi"))
    await worker.run_once()
    [row] = await rows(db)
    assert (row.next_attempt_at - NOW).total_seconds() == 42
    clock.advance(seconds=41)
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 1 and sender.delivered == ["hi"]


async def test_dead_letter_after_n_failures_and_at_once_when_permanent(db: Database) -> None:
    clock = Clock(NOW)
    sender = FlakySender(
        [
            DeliveryError("down"),
            DeliveryError("down"),
            DeliveryError("down"),
            DeliveryError("blocked", permanent=True),
        ]
    )
    worker = DeliveryWorker(db, {"test": sender}, clock=clock, base_delay=1, max_attempts=3)
    await enqueue(db, to("1", "first"), to("2", "second"))
    await worker.run_once()  # 1: down (attempt 1); 2: down (attempt 1)
    clock.advance(seconds=1)
    await worker.run_once()  # 1: down (attempt 2) ; 2: blocked → dead at once
    dead = await rows(db, "dead")
    assert [(e.text, e.attempts, e.last_error) for e in dead] == [("second", 2, "blocked")]
    clock.advance(seconds=2)
    await worker.run_once()  # 1: succeeds (the script ran out)
    assert sender.delivered == ["first"]

    worker = DeliveryWorker(db, {"test": FlakySender([DeliveryError("x")] * 3)}, clock=clock, max_attempts=3)
    await enqueue(db, to("3", "doomed"))
    for _ in range(3):
        clock.advance(hours=1)
        await worker.run_once()
    assert [e.text for e in await rows(db, "dead")] == ["doomed", "second"]
    assert worker.stats["dead"] == 1
    clock.advance(days=1)
    assert await worker.run_once() == 0


async def test_an_unexpected_exception_counts_as_a_transient_failure(db: Database) -> None:
    clock = Clock(NOW)
    worker = DeliveryWorker(db, {"test": FlakySender([KeyError("bug")])}, clock=clock)
    await enqueue(db, to("1", "x"))
    await worker.run_once()
    [row] = await rows(db)
    assert row.attempts == 1 and "KeyError" in row.last_error


async def test_one_message_per_chat_at_a_time_in_order_and_spaced(db: Database) -> None:
    clock = Clock(NOW)
    sender = FlakySender(chat_interval=1.0)
    worker = DeliveryWorker(db, {"test": sender}, clock=clock)
    await enqueue(db, to("A", "a1"), to("A", "a2"), to("B", "b1"), to("A", "a3"))
    assert await worker.run_once() == 2
    assert sorted(sender.delivered) == ["a1", "b1"]
    assert await worker.run_once() == 0  # a2 waits a second after a1
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert [t for t in sender.delivered if t.startswith("a")] == ["a1", "a2", "a3"]


async def test_a_failing_head_holds_back_its_chat_only(db: Database) -> None:
    clock = Clock(NOW)
    sender = FlakySender([DeliveryError("down")])
    worker = DeliveryWorker(db, {"test": sender}, clock=clock)
    await enqueue(db, to("A", "a1"), to("A", "a2"), to("B", "b1"))
    await worker.run_once()
    clock.advance(seconds=1)
    await worker.run_once()
    assert sender.delivered == ["b1"]  # a2 must not overtake a1
    clock.advance(seconds=10)
    await worker.run_once()
    await worker.run_once()
    assert sender.delivered == ["b1", "a1", "a2"]


async def test_a_claim_takes_each_chats_oldest_pending_row_in_every_channel(db: Database) -> None:
    """The heads are found by stepping from chat to chat (a backlog of 135,000 rows made grouping them cost
    23-47 ms per claim): chats whose rows were all sent, or whose first rows were, are stepped over right."""
    other = ChatRef("other", "A", "A")
    await enqueue(
        db, to("A", "a1"), to("B", "b1"), to("C", "c1"), to("A", "a2"), to("B", "b2"), to("D", "d1")
    )
    await enqueue(db, Reply(text="o1", chat=other), Reply(text="o2", chat=other))

    def send(store: SqlUnitOfWork, texts: set[str]) -> None:
        for entry in store.outbox.entries("pending"):
            if entry.text in texts:
                store.outbox.mark_sent(entry.id, entry.chat, NOW, 0)

    await db.run(lambda store: send(store, {"b1", "c1", "d1"}))

    def claim(store: SqlUnitOfWork) -> list[str]:
        return [m.reply.text for m in store.outbox.claim(["test", "other", "test"], NOW, limit=10, lease=60)]

    assert sorted(await db.run(claim)) == ["a1", "b2", "o1"]
    assert await db.run(claim) == []  # leased


async def test_rows_of_channels_without_a_sender_stay_pending(db: Database) -> None:
    worker = DeliveryWorker(db, {"test": FlakySender()}, clock=Clock(NOW))
    await enqueue(db, Reply(text="tg", chat=ChatRef("telegram", "9", "9")), to("1", "here"))
    report = await worker.flush()
    assert (report.sent, report.pending) == (1, 1)
    assert [e.chat.channel for e in await rows(db)] == ["telegram"]


async def test_a_message_queued_here_wakes_the_resting_worker(db: Database) -> None:
    """Regression: an idle worker slept its whole poll interval (a second) before delivering what a staff
    action in this very process had just queued. Here it rests up to a minute: only the wake-up delivers."""
    sender = FlakySender()
    worker = DeliveryWorker(db, {"test": sender})
    stopping = asyncio.Event()
    running = asyncio.create_task(worker.run(stopping, idle=60.0))
    try:
        await asyncio.sleep(0)  # the worker starts: its first, empty claim reaches the database first
        await enqueue(db, to("1", "right away"))
        await wait_for(lambda: sender.delivered == ["right away"], what="the queued message delivered")
    finally:
        stopping.set()
        await running


class StuckSender(FlakySender):
    """A channel whose delivery runs until the test lets it finish (a long album upload, a hung request)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def deliver(self, message: OutgoingMessage) -> None:
        self.calls.append((message.id, "", message.reply.text, message.attempt))
        await self.release.wait()
        self.delivered.append(message.reply.text)


async def test_a_row_whose_worker_died_mid_delivery_is_taken_again_within_the_short_lease(
    db: Database,
) -> None:
    clock = Clock(NOW)
    stuck = StuckSender()
    await enqueue(db, to("A", "a1"), to("A", "a2"))
    dying = asyncio.create_task(DeliveryWorker(db, {"test": stuck}, clock=clock).run_once())
    await wait_for(lambda: stuck.calls, 5, "the delivery to start")
    dying.cancel()  # the process is killed mid-delivery; the row stays pending under its lease
    with pytest.raises(asyncio.CancelledError):
        await dying

    sender = FlakySender()
    worker = DeliveryWorker(db, {"test": sender}, clock=clock)
    clock.advance(seconds=LEASE - 1)
    assert await worker.run_once() == 0  # still leased: the other worker might be alive
    clock.advance(seconds=1)
    assert LEASE <= 20
    assert await worker.run_once() == 1 and sender.delivered == ["a1"]
    assert await worker.run_once() == 1 and sender.delivered == ["a1", "a2"]  # order kept


async def test_a_long_delivery_renews_its_lease_and_is_not_taken_twice(db: Database) -> None:
    clock = Clock(NOW)
    slow = StuckSender()
    await enqueue(db, to("A", "album"))
    worker = DeliveryWorker(db, {"test": slow}, clock=clock, renew_every=0.01)
    delivering = asyncio.create_task(worker.run_once())
    await wait_for(lambda: slow.calls, 5, "the delivery to start")

    other = FlakySender()
    second = DeliveryWorker(db, {"test": other}, clock=clock)
    for _ in range(3):  # the upload takes three leases' time
        clock.advance(seconds=LEASE + 1)

        async def renewed() -> bool:
            [row] = await rows(db)
            return row.next_attempt_at > clock.now

        for _ in range(500):
            if await renewed():
                break
            await asyncio.sleep(0.01)
        assert await renewed(), "the lease was not renewed"
        assert await second.run_once() == 0
    slow.release.set()
    assert await delivering == 1
    assert slow.delivered == ["album"] and other.calls == []
    assert await rows(db) == [] and len(await rows(db, "sent")) == 1
    clock.advance(hours=1)
    assert await second.run_once() == 0  # a renewal never lands after the outcome


async def test_after_a_transient_failure_a_success_on_the_channel_sends_the_backed_off_rows_at_once(
    db: Database,
) -> None:
    clock = Clock(NOW)
    sender = FlakySender([DeliveryError("timeout"), DeliveryError("429", retry_after=42)])
    worker = DeliveryWorker(db, {"test": sender}, clock=clock, base_delay=60)
    await enqueue(db, to("A", "a1"), to("C", "c1"), to("A", "a2"))
    assert await worker.run_once() == 2  # a1: timeout (back-off 60 s); c1: the platform says 42 s
    clock.advance(seconds=1)
    assert await worker.run_once() == 0

    await enqueue(db, to("B", "b1"))
    assert await worker.run_once() == 1 and sender.delivered == ["b1"]  # the channel works again
    assert await worker.run_once() == 1 and sender.delivered == ["b1", "a1"]
    assert await worker.run_once() == 1 and sender.delivered == ["b1", "a1", "a2"]
    [c1] = await rows(db)  # the platform's retry_after is its rule: kept
    assert c1.chat.chat_id == "C" and (c1.next_attempt_at - NOW).total_seconds() == 42


@pytest.mark.skipif(not PG_URL, reason="SKIP LOCKED is PostgreSQL's; SQLite has one writer")
async def test_concurrent_claims_skip_each_others_rows_on_postgres(db: Database) -> None:
    await enqueue(db, to("A", "a1"), to("B", "b1"), to("C", "c1"))
    with db.engine.connect() as one, db.engine.connect() as two:
        first_tx = one.begin()
        mine = SqlUnitOfWork(one, is_sqlite=False).outbox.claim(["test"], NOW, limit=1, lease=60)
        second_tx = two.begin()
        theirs = SqlUnitOfWork(two, is_sqlite=False).outbox.claim(["test"], NOW, limit=10, lease=60)
        second_tx.commit()
        first_tx.commit()
    assert [m.reply.text for m in mine] == ["a1"]
    assert sorted(m.reply.text for m in theirs) == ["b1", "c1"]


async def test_a_dead_message_is_logged_without_the_recipients_id(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """152-ФЗ: no personal data in logs — the chat id appears only as a keyed hash (`pseudonym`)."""
    from core.personal_data import pseudonym

    worker = DeliveryWorker(
        db, {"test": FlakySender([DeliveryError("blocked", permanent=True)])}, clock=Clock(NOW)
    )
    await enqueue(db, to("9876543210", "bye"))
    with caplog.at_level("WARNING", logger="bots.delivery"):
        await worker.run_once()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "is dead" in logged and "9876543210" not in logged
    assert pseudonym("test:9876543210") in logged and pseudonym("test:9876543210") != pseudonym("test:1")
