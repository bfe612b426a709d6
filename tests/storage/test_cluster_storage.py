"""The PostgreSQL pieces several workers share: the leadership lock and the booked send rate."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import create_engine, pool, text

from storage.database import Database
from storage.leader import AdvisoryLeaderLock, AlwaysLeader, leader_lock
from storage.rate import SharedPace
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
