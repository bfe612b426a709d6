"""Long-poll positions in the database (the `PollPositions` port; DESIGN.md §12).

A long poll (VK's Bots Long Poll `ts`) is run by the elected leader; when leadership moves to a worker on
another host, that worker reads the position here and resumes where the previous leader stopped. One row per
poll, written by one upsert after each handled batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from storage.database import Database
from storage.tables import poll_positions


def load_position(conn: Any, name: str) -> str | None:
    return conn.execute(select(poll_positions.c.position).where(poll_positions.c.name == name)).scalar()


def save_position(conn: Any, name: str, position: str) -> None:
    from sqlalchemy.dialects import postgresql, sqlite  # not at start-up: postgresql imports its drivers

    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    values = {"name": name, "position": position, "updated_at": datetime.now(UTC)}
    statement = insert(poll_positions).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"position": statement.excluded.position, "updated_at": statement.excluded.updated_at},
        )
    )


class DbPollPositions:
    """`PollPositions` on the database: each read and write in its own short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, name: str) -> str | None:
        return await self.db.run(lambda uow: load_position(uow.conn, name))

    async def save(self, name: str, position: str) -> None:
        await self.db.run(lambda uow: save_position(uow.conn, name, position))
