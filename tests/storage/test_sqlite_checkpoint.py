"""SQLite's automatic WAL checkpoint ran inside the single writer's commit, so every update queued behind that
commit waited for the copy (and its fsync): nearly all of the slowest updates held one. The writer's
connection checkpoints no more; a background connection copies the WAL into the database as commits come."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.messages import ChatRef
from storage import database
from storage.database import Database
from storage.migrate import upgrade


async def test_wal_checkpoint_runs_beside_the_writer_not_in_its_commit(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    try:
        autocheckpoint = await db.run(lambda store: store.raw.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert autocheckpoint == (0,)  # the writer's commits never checkpoint
        before = path.stat().st_size
        state = {"text": "x" * 4000}  # about a page per update
        now = datetime.now(UTC)
        for n in range(800):  # ~3.2 MB of WAL: below SQLite's own 1000-page threshold, too
            chat = ChatRef("test", f"c{n}", f"c{n}")
            await db.run(lambda store, chat=chat: store.dialogs.save(chat, state, now))

        deadline = time.monotonic() + 20
        while path.stat().st_size < before + 2_000_000:  # copied into the database file by the checkpointer
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            await asyncio.sleep(0.05)
    finally:
        db.close()


def wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time it writes the file from the
    start again."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


async def test_the_wal_starts_over_while_the_writer_keeps_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside a busy writer a passive checkpoint seldom reaches the WAL's end, and SQLite writes the file from
    its start again only after one has: the writer finishes one itself once the WAL is long. (Whether the
    checkpointer or the writer got there first depends on timing; what is pinned is that the WAL starts
    over while commits keep coming, instead of growing to a truncation that makes the writer wait.)"""
    monkeypatch.setattr(database, "CHECKPOINT_JOBS", 50)
    monkeypatch.setattr(database, "WAL_RESET_PAGES", 100)
    path = tmp_path / "restart.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    try:
        state = {"text": "x" * 2000}
        now = datetime.now(UTC)

        async def resident(n: int) -> None:
            chat = ChatRef("test", f"c{n}", f"c{n}")
            for step in range(40):
                await db.run(lambda store, step=step: store.dialogs.save(chat, {**state, "s": step}, now))

        await db.run(lambda store: None)  # the writer has started, and with it the WAL
        first = wal_restarts(path)
        deadline = time.monotonic() + 60
        while wal_restarts(path) == first:  # rounds of 640 commits, 16 in flight: the writer never waits
            assert time.monotonic() < deadline, "the WAL was never started over"
            await asyncio.gather(*(resident(n) for n in range(16)))
    finally:
        db.close()
