"""The PostgreSQL pieces several workers share: the leadership lock and the booked send rate."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from sqlalchemy import create_engine, pool, text

from storage.database import Database
from storage.leader import AdvisoryLeaderLock, AlwaysLeader, leader_lock
from storage.rate import SharedPace, book
from storage.urls import normalise_url


@pytest.fixture
def pg(db: Database) -> Database:
    if db.is_sqlite:
        pytest.skip("advisory locks and the shared rate are PostgreSQL's; SQLite has one process")
    return db


def test_sqlite_always_leads() -> None:
    assert isinstance(leader_lock("sqlite:///x.sqlite3"), AlwaysLeader)


def test_one_holder_at_a_time_and_a_lost_connection_loses_leadership(pg: Database) -> None:
    first, second = AdvisoryLeaderLock(pg.url), AdvisoryLeaderLock(pg.url)
    try:
        assert first.acquire()
        assert first.acquire()  # already held: still true, no second lock taken
        assert not second.acquire()
        first.release()
        assert second.acquire()
        assert second.held()

        engine = create_engine(normalise_url(pg.url), poolclass=pool.NullPool)
        with engine.connect() as conn:  # the database drops the leader's session (a restart, a proxy)
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        engine.dispose()
        assert not second.held()  # noticed: it steps down rather than believe it still leads
        assert first.acquire()  # and the lock is free for whoever asks next
    finally:
        first.release()
        second.release()


def test_a_stalled_leader_connection_times_out_with_a_query_in_flight(pg: Database) -> None:
    """Keepalives probe only an idle connection: with the leader's `SELECT 1` unanswered on a stalled one,
    TCP's user timeout, on both ends, is what makes the leader step down (and the database free the lock)
    within seconds instead of after TCP's retransmissions (~15 minutes)."""
    lock = AdvisoryLeaderLock(pg.url)
    try:
        assert lock.acquire()
        assert lock._conn is not None
        server = lock._conn.exec_driver_sql("SHOW tcp_user_timeout").scalar()
        dsn = lock._conn.connection.driver_connection.info.dsn  # type: ignore[union-attr]
        assert server == "10000", server  # milliseconds
        assert "tcp_user_timeout=10000" in dsn, dsn
    finally:
        lock.release()


async def test_the_send_rate_is_shared_by_every_worker(pg: Database) -> None:
    other = Database(pg.url)  # a second worker's pool
    try:
        paces = [SharedPace(pg, "outbox:test", 20), SharedPace(other, "outbox:test", 20)]
        started = time.monotonic()
        await asyncio.gather(*(paces[n % 2].wait() for n in range(21)))
        elapsed = time.monotonic() - started
    finally:
        other.close()
    # 21 calls at 20/s: the last slot starts a second after the first, whichever worker booked it. Two
    # workers pacing alone would have finished in half that.
    assert elapsed >= 0.9, elapsed


async def test_a_busy_worker_does_not_send_late_slots_in_a_burst(pg: Database) -> None:
    """Regression (bench/cluster.py, one worker: 33 outbox messages in one second at 30/s): slots that passed
    while the event loop was busy went out all at once when it was free again."""
    pace = SharedPace(pg, "outbox:late", 20)  # a slot every 50 ms
    loop = asyncio.get_running_loop()
    await pace.wait()  # the next slots lie ahead: +50, +100, +150 ms
    went: list[float] = []

    async def call() -> None:
        await pace.wait()
        went.append(loop.time())

    calls = [asyncio.create_task(call()) for _ in range(3)]
    await asyncio.sleep(0.02)  # booked, waiting for their slots
    time.sleep(0.3)  # the worker's loop is busy past all three slots
    await asyncio.gather(*calls)
    gaps = [later - earlier for earlier, later in itertools.pairwise(went)]
    assert len(went) == 3 and min(gaps) >= 0.045, gaps


async def test_a_slot_is_placed_when_booked_not_when_a_busy_loop_reads_the_answer(pg: Database) -> None:
    """Regression (bench/cluster.py, three workers: 160 outbox messages in five seconds at 30/s): a worker
    placed its slot on its clock when its busy event loop got to the booking's answer, so it went that much
    later, into other workers' slots."""
    pace = SharedPace(pg, "outbox:placed", 2)  # a slot every 500 ms
    loop = asyncio.get_running_loop()
    await pace.wait()  # the next slot: 500 ms from now
    call = asyncio.create_task(pace.wait())
    await asyncio.sleep(0)  # the booking goes to a database thread
    time.sleep(0.6)  # which answers at once; the busy loop reads the answer past the slot
    free = loop.time()
    await call
    assert loop.time() - free < 0.2  # the slot has passed: no waiting for a slot placed 350 ms later


async def test_a_pace_within_the_bots_books_each_slot_in_both(pg: Database) -> None:
    """Regression (bench/cluster.py, three workers: 30.2-30.8 outbox messages a second over five): a
    notification took its outbox slot, then queued for a bot slot behind the answers and went that much
    later. A slot of a pace `within` the bot's is free in both and moves both on."""
    bot = SharedPace(pg, "telegram:joint", 20)  # 50 ms apart
    outbox = SharedPace(pg, "outbox:joint", 5, within=bot)  # 200 ms apart
    loop = asyncio.get_running_loop()
    await pg.run(lambda uow: book(uow.conn, "telegram:joint", bot.gap, 6))  # answers hold the next 300 ms
    started = loop.time()
    await outbox.wait()
    assert loop.time() - started >= 0.25  # after the bot's booked slots, not in them
    after_joint = await pg.run(lambda uow: book(uow.conn, "telegram:joint", bot.gap))
    assert after_joint >= 0.03  # and the bot's next slot is one of its intervals after the joint one
    started = loop.time()
    await outbox.wait()  # the outbox's own interval holds too
    assert loop.time() - started >= 0.15
