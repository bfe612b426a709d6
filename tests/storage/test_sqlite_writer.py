"""The SQLite writer commits the jobs waiting in its queue together, each in its own savepoint, with the
transaction and the savepoints on the driver's cursor; jobs may still run SQLAlchemy statements."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import DATETIME as SQLiteDateTime

from core.messages import ChatRef
from storage.database import Database
from storage.migrate import upgrade
from storage.store import SqlUnitOfWork, sqlite_timestamp
from storage.tables import dialogs

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'writer.sqlite3'}"
    upgrade(url)
    return Database(url)


def save(n: int, *, fail: bool = False, through_sqlalchemy: bool = False) -> object:
    def job(store: SqlUnitOfWork) -> int:
        store.dialogs.save(ChatRef("test", f"c{n}", f"c{n}"), {"n": n}, NOW)
        if fail:
            raise ValueError(n)
        if through_sqlalchemy:
            return store.conn.execute(select(func.count()).select_from(dialogs)).scalar_one()
        return n

    return job


async def test_a_failing_job_rolls_back_alone_and_the_batch_commits(db: Database) -> None:
    try:
        jobs = [save(n, fail=n == 3, through_sqlalchemy=n % 2 == 0) for n in range(8)]
        results = await asyncio.gather(*(db.run(job) for job in jobs), return_exceptions=True)  # type: ignore[arg-type]
        assert isinstance(results[3], ValueError)
        assert [r for n, r in enumerate(results) if n % 2 and n != 3] == [1, 5, 7]
        kept = await db.run(lambda store: store.conn.execute(select(dialogs.c.chat_id)).scalars().all())
        assert sorted(kept) == [f"c{n}" for n in range(8) if n != 3]
        # SQLAlchemy's view of the writer's connection was closed with each batch: a job that only runs
        # SQLAlchemy statements, and run_sync on the same connection, begin and commit as ever.
        await db.run(lambda store: store.conn.execute(dialogs.delete().where(dialogs.c.chat_id == "c0")))
        assert (
            db.run_sync(lambda store: store.conn.execute(select(func.count()).select_from(dialogs)).scalar())
            == 6
        )
    finally:
        db.close()


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 5, 3, 4, 12, tzinfo=timezone(timedelta(hours=3))),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_sqlite_timestamp_is_the_text_sqlalchemys_sqlite_datetime_writes(value: datetime) -> None:
    """The raw statements' timestamps must compare with those SQLAlchemy wrote in the same columns."""
    bind = SQLiteDateTime().bind_processor(sqlite.dialect())
    assert sqlite_timestamp(value) == bind(value.astimezone(UTC).replace(tzinfo=None))
