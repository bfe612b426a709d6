"""Long-poll positions in the database (the `PollPositions` port; DESIGN.md §12).

A long poll (VK's Bots Long Poll `ts`) is run by the elected leader; when leadership moves to a worker on
another host, that worker reads the position here and resumes where the previous leader stopped. One row per
poll, written by one upsert after each handled batch.

A save never moves the position back. A leader that lost its lock (its connection stalled, the database
dropped its session) runs its long poll on until it notices, a few seconds; a batch it finishes then may be
older than what the new leader saved meanwhile, and writing its `ts` over the newer one would have the next
leader handle the events in between again. VK's `ts` is an increasing integer, so the upsert writes only
over a lower one, compared as numbers (`CAST … AS BIGINT`, the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, cast, select

from storage.database import Database
from storage.tables import poll_positions


def load_position(conn: Any, name: str) -> str | None:
    return conn.execute(select(poll_positions.c.position).where(poll_positions.c.name == name)).scalar()


def save_position(conn: Any, name: str, position: str) -> bool:
    """Record `position` (an integer's digits) unless a later one is saved already: False then, nothing
    written (another worker's poll is ahead — this one's leadership has moved on)."""
    from sqlalchemy.dialects import postgresql, sqlite  # not at start-up: postgresql imports its drivers

    if not position.isdigit():
        raise ValueError(f"a long-poll position is an integer, not {position!r}")
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    values = {"name": name, "position": position, "updated_at": datetime.now(UTC)}
    statement = insert(poll_positions).values(values)
    stored, new = (
        cast(column, BigInteger) for column in (poll_positions.c.position, statement.excluded.position)
    )
    upsert = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"position": statement.excluded.position, "updated_at": statement.excluded.updated_at},
        where=stored <= new,
    )
    # RETURNING, not rowcount: psycopg reports no row count for this statement (-1)
    return conn.execute(upsert.returning(poll_positions.c.name)).first() is not None


class DbPollPositions:
    """`PollPositions` on the database: each read and write in its own short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, name: str) -> str | None:
        return await self.db.run(lambda uow: load_position(uow.conn, name))

    async def save(self, name: str, position: str) -> bool:
        return await self.db.run(lambda uow: save_position(uow.conn, name, position))
