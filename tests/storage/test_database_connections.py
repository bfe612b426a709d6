"""The PostgreSQL pool runs without pre-ping (a round trip per job): a connection the server dropped is met by
the job's first statement, and the job runs again on a fresh connection instead of failing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from core.messages import ChatRef
from storage.database import Database

TAG = "otklik-dropped-connection-test"


def _kill_every_other_backend(db: Database) -> int:
    """What a server restart or an idle-connection timeout does to the pooled connections."""
    return db.run_sync(
        lambda store: len(
            store.conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = %(tag)s",
                {"tag": TAG},
            ).all()
        )
    )


@pytest.fixture
def pg_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only (TEST_DATABASE_URL): SQLite has no server to drop a connection")
    return database_url


def test_dropped_connection_without_pre_ping_is_retried(db: Database, pg_url: str) -> None:
    tagged = Database(f"{pg_url}{'&' if '?' in pg_url else '?'}application_name={TAG}")
    chat = ChatRef("test", "dropped-1", "u1")
    now = datetime.now(UTC)
    try:

        def first(store):  # type: ignore[no-untyped-def]
            store.dialogs.claim_and_load(chat, "", "before-drop", now)
            store.dialogs.save(chat, {"lang": "en"}, now)

        tagged.run_sync(first)  # its pooled connection is idle now
        assert _kill_every_other_backend(db) >= 1

        fresh, state = tagged.run_sync(lambda store: store.dialogs.claim_and_load(chat, "", "after", now))
        repeated, _ = tagged.run_sync(
            lambda store: store.dialogs.claim_and_load(chat, "", "before-drop", now)
        )

        assert (fresh, state, repeated) == (True, {"lang": "en"}, False)
    finally:
        tagged.close()


async def test_the_workers_keep_their_connections_and_calls_from_elsewhere_share_them(pg_url: str) -> None:
    """Each worker thread keeps one connection of the pool (no checkout per job); `run_sync` from another
    thread runs on a worker, so the pool's size still bounds the connections and nothing waits for one."""
    tag = f"{TAG}-held"
    small = Database(f"{pg_url}{'&' if '?' in pg_url else '?'}application_name={tag}", pool_size=2)

    def backend(store):  # type: ignore[no-untyped-def]
        return store.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    try:
        pids = {await small.run(backend) for _ in range(20)}
        pids.add(small.run_sync(backend))  # the workers hold both connections: this runs on one of them
        count = small.run_sync(
            lambda store: store.conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %(tag)s", {"tag": tag}
            ).scalar()
        )
        assert len(pids) <= 2 and count <= 2
    finally:
        small.close()


async def test_a_job_whose_caller_gave_up_before_it_started_does_not_run(pg_url: str) -> None:
    """As with the executor before: cancelling `db.run` while its job waits in the queue drops the job."""
    one = Database(pg_url, pool_size=1)
    ran: list[str] = []

    def slow(store):  # type: ignore[no-untyped-def]
        store.conn.exec_driver_sql("SELECT pg_sleep(0.3)")
        ran.append("slow")

    try:
        first = asyncio.ensure_future(one.run(slow))
        second = asyncio.ensure_future(one.run(lambda store: ran.append("dropped")))
        await asyncio.sleep(0.05)  # both queued, the first one running
        second.cancel()
        await first
        await one.run(lambda store: ran.append("next"))
        assert ran == ["slow", "next"]
    finally:
        one.close()
