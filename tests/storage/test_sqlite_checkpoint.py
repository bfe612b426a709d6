"""SQLite's automatic WAL checkpoint ran inside the single writer's commit, so every update queued behind that
commit waited for the copy (and its fsync): nearly all of the slowest updates held one. The writer's
connection checkpoints no more; a background connection copies the WAL into the database as commits come."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from core.messages import ChatRef
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
