"""The packaged migrations build exactly the schema storage/tables.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool

from storage.migrate import current_revision, head_revisions, is_up_to_date, make_config, upgrade
from storage.tables import metadata
from storage.urls import normalise_url


def _schema_differences(url: str) -> list:
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_builds_the_declared_schema(database_url: str) -> None:
    upgrade(database_url)

    assert _schema_differences(database_url) == []
    assert _tables(database_url) == {*metadata.tables, "alembic_version"}


def test_up_to_date_only_after_upgrade(database_url: str) -> None:
    assert len(head_revisions()) == 1, "migrations must form a single line"
    assert current_revision(database_url) is None
    assert not is_up_to_date(database_url)

    upgrade(database_url)

    assert is_up_to_date(database_url)
    assert current_revision(database_url) == head_revisions()[0]


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)

    assert is_up_to_date(database_url)
    assert _schema_differences(database_url) == []


def test_downgrade_to_base_and_back(database_url: str) -> None:
    """Keeps the generated downgrade() honest, which autogenerate alone does not check."""
    upgrade(database_url)
    command.downgrade(make_config(database_url), "base")
    assert _tables(database_url) <= {"alembic_version"}
    assert current_revision(database_url) is None

    upgrade(database_url)
    assert _schema_differences(database_url) == []


def test_missing_url_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="no database URL"):
        command.upgrade(make_config(), "head")


# --- the ticket rating is 1..5 or NULL in the database itself -------------------------------------
def _insert_ticket(url: str, rating: int | None) -> None:
    """A ticket row written straight into the database, past every check the code makes."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from storage.tables import categories, tickets

    at = datetime(2026, 12, 1, tzinfo=UTC)
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            if conn.execute(select(categories.c.code).where(categories.c.code == "roads")).first() is None:
                conn.execute(
                    insert(categories).values(
                        code="roads", name_ru="Дороги", name_en="Roads", sla_days=5, position=0, active=True
                    )
                )
            conn.execute(
                insert(tickets).values(
                    category_code="roads", address="", location_source="typed", description="Яма у дома.",
                    author_channel="test", author_chat_id="1", author_user_id="1", language="ru",
                    status="closed", rating=rating, created_at=at, updated_at=at, overdue_notified=False,
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def _ratings(url: str) -> list[int | None]:
    from sqlalchemy import select

    from storage.tables import tickets as table

    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(table.c.rating).order_by(table.c.number)).scalars())
    finally:
        engine.dispose()


def test_the_database_refuses_rating_12(database_url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    upgrade(database_url)
    for rating in (None, 1, 5):
        _insert_ticket(database_url, rating)
    for forged in (12, 0, -1):
        with pytest.raises(IntegrityError, match="rating_range"):
            _insert_ticket(database_url, forged)
    assert _ratings(database_url) == [None, 1, 5]


def test_the_rating_check_migration_clears_forged_ratings_and_downgrades(database_url: str) -> None:
    """A database attacked before the fix still upgrades: the forged rating is dropped, the real ones stay."""
    upgrade(database_url, "0001")
    for rating in (4, 12, None):
        _insert_ticket(database_url, rating)

    upgrade(database_url, "0002")
    assert _ratings(database_url) == [4, None, None]
    upgrade(database_url)  # the later revisions stack on it
    assert _schema_differences(database_url) == []

    command.downgrade(make_config(database_url), "0001")
    _insert_ticket(database_url, 12)  # no constraint any more
    assert _ratings(database_url) == [4, None, None, 12]


def test_supporters_move_to_their_own_table_and_back(database_url: str) -> None:
    """The "me too" rows of a database from before the rename survive the upgrade and the downgrade."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    upgrade(database_url, "0005")
    _insert_ticket(database_url, None)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    row = {"n": 1, "ch": "telegram", "chat": "42", "user": "42", "lang": "en", "at": at}
    values = "(:n, :ch, :chat, :user, :lang, :at)"
    columns = "(ticket_number, channel, chat_id, user_id, language, created_at)"

    def rows(table: str) -> list[tuple[object, ...]]:
        engine = create_engine(normalise_url(database_url), poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                found = conn.execute(text(f"SELECT ticket_number, channel, chat_id, language FROM {table}"))
                return [tuple(r) for r in found]
        finally:
            engine.dispose()

    engine = create_engine(normalise_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO subscriptions {columns} VALUES {values}"), row)
    finally:
        engine.dispose()

    upgrade(database_url)  # to head: the schema is compared with the models, which have later tables too
    assert "subscriptions" not in _tables(database_url)
    assert rows("supporters") == [(1, "telegram", "42", "en")]
    upgrade(database_url)  # later revisions add tables of their own: compare with the models at head
    assert _schema_differences(database_url) == []

    command.downgrade(make_config(database_url), "0005")
    assert "supporters" not in _tables(database_url)
    assert rows("subscriptions") == [(1, "telegram", "42", "en")]


# --- 0013: the long-poll positions every worker shares --------------------------------------------------
def test_poll_positions_migration_up_and_down(database_url: str) -> None:
    """The table where the long-poll leader keeps its place comes with 0013, a saved position reads back,
    and the downgrade to 0012 takes it away again."""
    from storage.poll_positions import load_position, save_position

    upgrade(database_url, "0012")
    assert "poll_positions" not in _tables(database_url)
    upgrade(database_url, "0013")
    engine = create_engine(normalise_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            save_position(conn, "vk:1", "41")
            save_position(conn, "vk:1", "42")  # an upsert: one row per poll
        with engine.connect() as conn:
            assert load_position(conn, "vk:1") == "42" and load_position(conn, "vk:2") is None
    finally:
        engine.dispose()
    command.downgrade(make_config(database_url), "0012")
    assert "poll_positions" not in _tables(database_url)
    upgrade(database_url)
    assert _schema_differences(database_url) == []
