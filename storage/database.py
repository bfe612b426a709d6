"""Running transactions off the event loop.

SQLite allows one writer, so every job goes through one thread and one connection, and the jobs waiting in
its queue share one commit (each inside its own savepoint, so one failing job rolls back alone). That is
what lets dialog state be saved on every update at thousands of updates per second (DESIGN.md §10).
PostgreSQL takes jobs on a small thread pool, each in its own transaction on the connection its thread keeps
(opened and closed by the per-update statements themselves where they can: storage/pg_session.py); per-chat
order comes from row locks (`SELECT … FOR UPDATE`) taken by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from storage import pg_session
from storage.store import SqlUnitOfWork
from storage.urls import normalise_url

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 128
PG_RETRIES = 3
QUERY_CANCELED = "57014"
"""PostgreSQL's code for a statement cancelled, here by `statement_timeout`: not retried (it would time out
again)."""
CHECKPOINT_JOBS = 250
"""Jobs committed (a few WAL pages each) before the background checkpointer copies the WAL back. A checkpoint
starts with a burst of work (sorting the WAL's frames, copying the pages) that holds up the update the writer
is committing meanwhile, the longer the more frames it copies: one at a time, updates held up by checkpoints
every 1,000 jobs made the slowest 0.1 % (p99.9 2.5 ms, bench/engine.py --concurrency 1), every 250 jobs
1.5 ms, every 125 jobs 1.9 ms (more fsyncs). It is also the most a power loss can undo (WAL with
synchronous=NORMAL: the WAL is synced when a checkpoint starts). 64 updates in flight pay ~4 % of their
throughput for it against 1,000."""
CHECKPOINT_IDLE = 1.0
"""Seconds without a commit after which fewer jobs are checkpointed too, so that a quiet database does not
keep its WAL."""
WAL_RESET_PAGES = 16_000
"""A WAL longer than this (~64 MB) is started over: a passive checkpoint beside a writer that never stops
never copies the WAL to its end, and SQLite writes from the start of the file again only after one has. The
writer copies the little that is left itself, between two batches (a few ms; about once a checkpoint when
updates come one at a time, ~16 pages each, far less often batched), instead of waiting in SQLite's busy
handler (sleeps of 1, 2, 5, 10, 15, 20, 25 ms…) for a checkpoint that holds its write lock; the file is
then rewritten in place rather than grown."""
WAL_LIMIT_PAGES = 40_000
"""A WAL longer than this (~160 MB) is truncated, even if the writer has to wait for it: a reader that never
lets a checkpoint finish must not let the file grow without bound."""


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control from pysqlite so SAVEPOINT works (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 16 MiB of page cache (SQLite's default is 2 MiB): at a million stored dialogs the B-tree pages an update
    # walks no longer fit in 2 MiB, and every miss is a read from the OS (bench/engine.py --seed 1000000).
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    # On the driver's connection: through SQLAlchemy's execution machinery this cost more than the commit.
    driver = conn.connection.driver_connection
    if not driver.in_transaction:  # type: ignore[union-attr]  # else the SQLite writer began it (raw)
        driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


class Database:
    """Storage entry point: `await db.run(job)` runs `job(uow)` (a `SqlUnitOfWork`) in one transaction and
    returns the result."""

    def __init__(self, url: str | URL, *, pool_size: int = 8, statement_timeout: float = 0) -> None:
        """`pool_size`: PostgreSQL connections and threads (DATABASE_POOL_SIZE); `statement_timeout`: seconds
        before the server cancels a statement, 0 for none (DATABASE_STATEMENT_TIMEOUT; not on SQLite)."""
        self.url = normalise_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.statement_timeout = statement_timeout
        if self.is_sqlite:
            self.engine = create_engine(
                self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            event.listen(self.engine, "connect", _tune_sqlite)
            event.listen(self.engine, "begin", _begin_immediate)
            self._writer: _SqliteWriter | None = None
        else:
            # No pre-ping: it would cost a round trip (and a transaction) per job. A pooled connection that
            # died is met by the job's first statement instead; SQLAlchemy invalidates it (and the rest of the
            # pool) and the job runs again on a fresh one (`_is_retryable`).
            connect_args: dict[str, str] = {}
            if statement_timeout > 0:  # every session of the pool, set at connect: no statement per job
                connect_args["options"] = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=0, connect_args=connect_args
            )
            pg_session.install(self.engine)
            self._local = threading.local()
            self._held: list[Connection] = []
            self._held_lock = threading.Lock()
            self._jobs: queue.SimpleQueue[_PgJob | None] = queue.SimpleQueue()
            self._workers: list[threading.Thread] = []
            self._pool_size = pool_size
            self._closed = False
        self.outbox_queued = asyncio.Event()

    async def run(self, job: Callable[[SqlUnitOfWork], T]) -> T:
        loop = asyncio.get_running_loop()
        queued = 0

        def counted(uow: SqlUnitOfWork) -> T:
            nonlocal queued
            before = uow.queued  # a SQLite batch shares one unit of work between its jobs
            try:
                return job(uow)
            finally:
                queued = uow.queued - before

        if self.is_sqlite:
            if self._writer is None:
                self._writer = _SqliteWriter(self.engine, self.url.database)
            future: asyncio.Future[T] = loop.create_future()
            self._writer.submit(counted, future, loop)
            result = await future
        else:
            future = loop.create_future()
            self._submit((counted, future, loop))
            result = await future
        if queued:
            self.outbox_queued.set()
        return result

    def run_sync(self, job: Callable[[SqlUnitOfWork], T]) -> T:
        """The same, for command-line tools and tests outside an event loop (never inside one)."""
        if not self.is_sqlite and not getattr(self._local, "worker", False):
            # On PostgreSQL the workers hold the pool's connections: a call from elsewhere runs on a worker.
            done: Future[T] = Future()
            self._submit((job, done, None))
            return done.result()
        attempt = 0
        while True:
            try:
                if not self.is_sqlite:
                    return self._run_held(job)
                with self.engine.begin() as conn:
                    return job(SqlUnitOfWork(conn, is_sqlite=True))
            except (OperationalError, IntegrityError) as exc:
                if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
                    log.error(
                        "a statement ran longer than DATABASE_STATEMENT_TIMEOUT (%gs) and was cancelled; "
                        "its transaction is rolled back",
                        self.statement_timeout,
                    )
                    raise
                attempt += 1
                if self.is_sqlite or attempt >= PG_RETRIES or not _is_retryable(exc):
                    raise
                log.info("retrying a transaction after %s", type(exc.orig).__name__)

    def _submit(self, item: _PgJob) -> None:
        if self._closed:
            raise RuntimeError("the database is closed")
        if not self._workers:  # started on first use: an admin command that never asks starts none
            with self._held_lock:
                while len(self._workers) < self._pool_size:
                    worker = threading.Thread(target=self._work, name="otklik-db", daemon=True)
                    worker.start()
                    self._workers.append(worker)
        self._jobs.put(item)

    def _work(self) -> None:
        """A PostgreSQL worker thread. A queue and a callback into the event loop, not `run_in_executor`:
        the executor's futures, their chaining and locks cost ~20 µs of CPU per job (issue 17)."""
        self._local.worker = True
        while (item := self._jobs.get()) is not None:
            job, future, loop = item
            if loop is not None and future.cancelled():  # its caller gave up before it started
                continue
            try:
                value, ok = self.run_sync(job), True
            except BaseException as exc:
                value, ok = exc, False
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody is waiting any more
                    loop.call_soon_threadsafe(_settle_all, [(future, ok, value)])
            elif ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _run_held(self, job: Callable[[SqlUnitOfWork], T]) -> T:
        """PostgreSQL: `job` in a transaction on this worker thread's own connection, checked out of the pool
        once and kept, not per job: the pool's checkout, reset and check-in cost about as much CPU as a round
        trip to the server (issue 17). A connection found dead is dropped; the retry takes a fresh one."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.engine.connect()
            with self._held_lock:
                self._held.append(conn)
        pg_session.reset(conn)
        try:
            with conn.begin():
                result = job(SqlUnitOfWork(conn, is_sqlite=False))
                pg_session.commit(conn)
                return result
        finally:
            if conn.invalidated:
                self._local.conn = None
                with self._held_lock:
                    self._held.remove(conn)
                conn.close()

    def close(self) -> None:
        if self.is_sqlite:
            if self._writer is not None:
                self._writer.stop()
                self._writer = None
        else:
            self._closed = True
            for _ in self._workers:
                self._jobs.put(None)
            for worker in self._workers:
                worker.join()
            self._workers.clear()
            with self._held_lock:  # the workers are gone: their connections go back to the pool, then closed
                for conn in self._held:
                    conn.close()
                self._held.clear()
        self.engine.dispose()


def _is_retryable(exc: DBAPIError) -> bool:
    """Deadlocks, serialisation failures and unique races on first insert are safe to run again, and so is a
    job whose connection was lost (a server restart, an idle connection cut): a transaction cut before its
    commit left nothing behind, and an engine step that did commit is recognised by its delivery id."""
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None)
    return code in {"40001", "40P01", "23505"}


_Job = tuple[Callable[[SqlUnitOfWork], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_PgJob = tuple[
    Callable[[SqlUnitOfWork], Any], "asyncio.Future[Any] | Future[Any]", asyncio.AbstractEventLoop | None
]


class _SqliteWriter:
    """One thread, one connection: drains the queue and commits every batch once (group commit).

    SQLite's automatic WAL checkpoint would run inside the commit that crosses its threshold — copying the WAL
    into the database file and syncing it while every update queued behind it waits (the slowest updates were
    nearly all such commits). While the writer runs, automatic checkpoints are off on its connection and a
    `_Checkpointer` thread does them on a connection of its own; the writer only says that it committed, and
    ends a checkpoint itself between two batches when the WAL is to be started over (`WAL_RESET_PAGES`)."""

    def __init__(self, engine: Any, path: str | None) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._checkpointer = _Checkpointer(path) if path and path != ":memory:" else None
        self._thread = threading.Thread(target=self._loop, name="otklik-sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[SqlUnitOfWork], Any], future: asyncio.Future[Any], loop: Any) -> None:
        self._queue.put((job, future, loop))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._checkpointer is not None:
            self._checkpointer.stop()

    def _loop(self) -> None:
        with self._engine.connect() as conn:
            store = SqlUnitOfWork(conn, is_sqlite=True)
            if self._checkpointer is not None:
                store.raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                self._drain(conn, store)
            finally:  # the connection outlives the writer (run_sync uses it): SQLite checkpoints again
                if self._checkpointer is not None:
                    store.raw.execute("PRAGMA wal_autocheckpoint=1000")

    def _drain(self, conn: Connection, store: SqlUnitOfWork) -> None:
        checkpointer = self._checkpointer
        while True:
            first = self._queue.get()
            if first is None:
                return
            if checkpointer is not None and checkpointer.reset_due:
                checkpointer.finish(store.raw)
            batch = [first]
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._run_batch(conn, store, batch)
            if checkpointer is not None:
                checkpointer.note(len(batch))
            if stopping:
                return

    def _run_batch(self, conn: Connection, store: SqlUnitOfWork, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        # The transaction and the savepoints on the raw cursor: SQLAlchemy's cost more than the job's own
        # statements. A job that runs a SQLAlchemy statement makes SQLAlchemy begin its own view of this
        # transaction (`_begin_immediate` sees that one is open), which is closed after the COMMIT.
        raw = store.raw
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                for job, _future, _loop in batch:
                    raw.execute("SAVEPOINT job")
                    try:
                        result = job(store)
                    except BaseException as exc:  # the job's own failure: undo it alone
                        raw.execute("ROLLBACK TO job")
                        raw.execute("RELEASE job")
                        outcomes.append((False, exc))
                    else:
                        raw.execute("RELEASE job")
                        outcomes.append((True, result))
                raw.execute("COMMIT")
            except BaseException:
                if raw.connection.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            finally:
                if conn.in_transaction():  # nothing left to do in SQLite: only SQLAlchemy's bookkeeping
                    conn.rollback()
        except BaseException as exc:  # the commit itself failed: nobody's work is saved
            log.exception("SQLite batch commit failed")
            outcomes = [(False, exc)] * len(batch)
        # One wake-up of each event loop per batch, not per job: each is a write to the loop's self-pipe
        # (issue 17: a tenth of the writer's CPU in bench/peers.py).
        settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (ok, value), (_job, future, loop) in zip(outcomes, batch, strict=True):
            settled.setdefault(loop, []).append((future, ok, value))
        for loop, results in settled.items():
            loop.call_soon_threadsafe(_settle_all, results)


class _Checkpointer:
    """Passive WAL checkpoints off the writer's path, on a connection of its own: after `CHECKPOINT_JOBS`
    committed jobs, or `CHECKPOINT_IDLE` seconds after the last commit when fewer came. A passive checkpoint
    never blocks the writer. Beside a busy writer it never reaches the WAL's end (the writer appends while it
    copies), so SQLite would never start the file over: past `WAL_RESET_PAGES` the writer is asked to
    `finish` — copy the rest itself between two batches, after which its next commit writes from the start of
    the file. Only when readers keep even that from finishing and the WAL passes `WAL_LIMIT_PAGES` does the
    checkpointer wait for them and truncate it."""

    def __init__(self, path: str) -> None:
        self._due = threading.Event()
        self._pending = 0  # jobs committed since the last checkpoint (written by the writer thread only)
        self._stopping = False
        self.reset_due = False
        """Set here, read and cleared by the writer: the WAL is long enough to be started over."""
        self._path = path
        self._thread = threading.Thread(target=self._loop, name="otklik-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def note(self, jobs: int) -> None:
        """The writer committed `jobs` jobs."""
        self._pending += jobs
        if self._pending >= CHECKPOINT_JOBS:
            self._due.set()

    def finish(self, raw: Any) -> None:
        """On the writer's thread, outside a transaction: copy what the last passive checkpoint left. Passive
        too (no busy handler: a reader holding an old snapshot only means the file is started over later);
        tried again at the next batch if the checkpointer's own checkpoint was running (nothing copied)."""
        self.reset_due = self._checkpoint(raw)[0] == 1

    def stop(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            seen = 0
            while not self._stopping:
                due = self._due.wait(CHECKPOINT_IDLE)
                self._due.clear()
                pending = self._pending
                if self.reset_due:  # the writer finishes this one: a checkpoint here would only be in its way
                    pass
                elif pending and (due or pending == seen):  # enough jobs, or none for a whole interval
                    self._pending = 0  # a race with `note` only shifts a few jobs to the next checkpoint
                    pending = 0
                    _busy, wal_pages = self._checkpoint(conn)
                    if wal_pages > WAL_LIMIT_PAGES:
                        self._truncate(conn)
                    elif wal_pages > WAL_RESET_PAGES:
                        self.reset_due = True
                seen = pending
            self._checkpoint(conn)
        finally:
            conn.close()

    @staticmethod
    def _checkpoint(conn: Any) -> tuple[int, int]:
        """A passive checkpoint on `conn` (a connection or a cursor): whether another checkpoint was running
        (1) and the WAL's length in pages."""
        try:
            ((busy, wal_pages, _copied),) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # the next commit brings the next try; the writer is not held up by this
            log.warning("SQLite WAL checkpoint failed", exc_info=True)
            return 0, 0
        return int(busy), int(wal_pages)

    @staticmethod
    def _truncate(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            log.warning("SQLite WAL checkpoint failed", exc_info=True)


def _settle_all(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in results:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
