"""The PostgreSQL pool runs without pre-ping (a round trip per job): a connection the server dropped is met by
the job's first statement, and the job runs again on a fresh connection instead of failing."""

from __future__ import annotations

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
