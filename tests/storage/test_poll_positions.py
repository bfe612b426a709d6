"""Long-poll positions (storage/poll_positions.py) on SQLite and PostgreSQL: a save never moves a position
back, so a deposed leader finishing an old batch cannot undo what the new leader saved."""

from __future__ import annotations

import asyncio

import pytest

from storage.database import Database
from storage.poll_positions import DbPollPositions, load_position, save_position

NAME = "vk:4242"


async def test_a_deposed_leaders_older_ts_does_not_move_the_saved_position_back(db: Database) -> None:
    positions = DbPollPositions(db)
    await positions.save(NAME, "99")  # the old leader's last batch before it lost its lock
    await positions.save(NAME, "120")  # the new leader, resumed from 99, handled up to 120
    await positions.save(NAME, "105")  # the old leader, not stopped yet, finishes a batch it had in hand
    assert await positions.load(NAME) == "120"
    # compared as numbers, not as text ("99" > "120" as strings)
    await positions.save(NAME, "1000")
    assert await positions.load(NAME) == "1000"


def test_a_save_says_whether_it_was_written(db: Database) -> None:
    with db.engine.begin() as conn:
        assert save_position(conn, NAME, "7")  # the first save inserts
        assert save_position(conn, NAME, "7")  # the same position again (a batch with no new ts): written
        assert not save_position(conn, NAME, "6")
        assert save_position(conn, "vk:1", "3")  # another community's poll is its own
        assert load_position(conn, NAME) == "7"
        assert load_position(conn, "vk:1") == "3"
        with pytest.raises(ValueError, match="integer"):
            save_position(conn, NAME, "abc")


async def test_two_workers_saving_at_once_keep_the_highest(db: Database) -> None:
    other = Database(db.url)  # a second worker's pool
    try:
        saves = [
            DbPollPositions(db if n % 2 else other).save(NAME, str(ts))
            for n, ts in enumerate([5, 50, 12, 49, 3, 48, 30])
        ]
        await asyncio.gather(*saves)
    finally:
        other.close()
    assert await DbPollPositions(db).load(NAME) == "50"
