"""The packaged migrations build exactly the schema storage/tables.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool

from storage.migrate import current_revision, head_revisions, is_up_to_date, make_config, upgrade
from storage.tables import Base
from storage.urls import normalise_url


def _schema_differences(url: str) -> list:
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
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
    assert _tables(database_url) == {*Base.metadata.tables, "alembic_version"}


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
