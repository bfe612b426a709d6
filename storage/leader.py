"""Who runs the leader-only jobs (polling, timers, photo collection): one worker per database at a time
(DESIGN.md §12).

PostgreSQL: a session-level advisory lock held on a connection of its own. Whoever holds it is the leader;
the others ask again every few seconds. The lock lives exactly as long as that connection: a worker killed
by SIGKILL has its socket closed by the kernel, its backend ends and the lock is free at once; a host that
vanishes is noticed by TCP keepalives (server and client side, ~10 s) when the connection is idle, and by
TCP's user timeout (10 s) when a query is in flight (without it, a stalled connection with the leader's
`SELECT 1` unanswered waits out TCP's retransmissions, about 15 minutes). The leader checks its connection
every few seconds and steps down when it is gone. SQLite has one process: it is always the leader.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, pool, text
from sqlalchemy.engine import URL

from storage.urls import normalise_url

log = logging.getLogger(__name__)

LEADER_KEY = 0x6F746B6C696B01
"""The advisory lock key of leadership ("otklik" + 1); advisory locks are per database."""
MIGRATION_KEY = 0x6F746B6C696B02
"""The advisory lock key `otklik db upgrade` holds while it migrates."""
KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10_000,
}
"""Client-side TCP keepalives and user timeout (libpq, ms): a dead database host is noticed in about 10 s,
idle or with a query in flight."""
SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 2",
    "SET tcp_user_timeout = 10000",
)
"""Server-side keepalives for this session: the backend of a vanished leader ends, and frees the lock, in
about 10 s."""


def is_postgres(url: str | URL) -> bool:
    return normalise_url(url).get_backend_name() == "postgresql"


class AlwaysLeader:
    """SQLite (one process): the only worker is the leader."""

    def acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLeaderLock:
    """The `LeaderLock` port on PostgreSQL. Blocking calls: run them off the event loop."""

    def __init__(self, url: str | URL, key: int = LEADER_KEY, timeout: float = 5.0) -> None:
        self.key = key
        self.engine = create_engine(
            normalise_url(url),
            poolclass=pool.NullPool,
            connect_args={**KEEPALIVE, "connect_timeout": max(1, int(timeout))},
        )
        self.timeout_ms = int(timeout * 1000)
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # acquire/held/release may come from different pool threads

    def acquire(self) -> bool:
        """Try once: True when this process holds leadership now (already or newly)."""
        with self._lock:
            if self._conn is not None:
                return self._alive()
            try:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except Exception as exc:
                log.info("leader election: database unreachable (%s)", type(exc).__name__)
                return False
            try:
                conn.exec_driver_sql(f"SET statement_timeout = {self.timeout_ms}")
                for statement in SERVER_KEEPALIVE:
                    conn.exec_driver_sql(statement)
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            except Exception as exc:
                log.info("leader election failed (%s)", type(exc).__name__)
                _close(conn)
                return False
            if not got:
                _close(conn)
                return False
            self._conn = conn
            return True

    def held(self) -> bool:
        """Leadership still holds: the lock's connection answers (a lost connection lost the lock)."""
        with self._lock:
            return self._conn is not None and self._alive()

    def _alive(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.exec_driver_sql("SELECT 1").scalar()
            return True
        except Exception as exc:
            log.warning("leadership lost: its database connection failed (%s)", type(exc).__name__)
            _close(self._conn)
            self._conn = None
            return False

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                _close(self._conn)  # closing the session frees its advisory locks
                self._conn = None
            self.engine.dispose()


def _close(conn: Connection) -> None:
    try:
        conn.invalidate()  # never back to a pool: the session (and its locks) must end
        conn.close()
    except Exception:
        log.debug("closing a leader connection failed", exc_info=True)


def leader_lock(url: str | URL) -> AdvisoryLeaderLock | AlwaysLeader:
    return AdvisoryLeaderLock(url) if is_postgres(url) else AlwaysLeader()


@contextmanager
def migration_lock(url: str | URL) -> Iterator[None]:
    """Held around `otklik db upgrade`: a second worker starting at the same moment waits for the first to
    finish, then finds nothing to do. A no-op on SQLite (one process, and its own file lock)."""
    if not is_postgres(url):
        yield
        return
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool, connect_args=dict(KEEPALIVE))
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_KEY})
    finally:
        engine.dispose()


def holders(conn: Any, key: int = LEADER_KEY) -> int:
    """How many sessions hold `key` (0 or 1): for health checks and tests."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = :k AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"k": key},
        ).scalar()
    )
