"""Alembic environment. There is no alembic.ini: storage/migrate.py builds the Config in code, so
migrations run the same from a checkout and from an installed package.

The database URL comes from, in order: `config.attributes["url"]` (set by storage.migrate), `-x url=…` on
the alembic command line, or the DATABASE_URL environment variable.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import URL, Connection, create_engine, pool, text

from storage.tables import metadata
from storage.urls import normalise_url

config = context.config
target_metadata = metadata

# Any constant works; it only has to be the same for every process that upgrades this database.
PG_MIGRATION_LOCK = 0x6F746B6C  # "otkl"


def _url() -> URL:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise RuntimeError("no database URL: pass config.attributes['url'], -x url=…, or set DATABASE_URL")
    return normalise_url(url)


def _skip_empty_revision(context_: Any, revision: Any, directives: list[Any]) -> None:
    """`storage.migrate revision` asks for this so an unchanged schema does not produce an empty file."""
    if config.attributes.get("skip_empty") and directives and directives[0].upgrade_ops.is_empty():
        directives[:] = []


def _options() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # Always batch, not only on SQLite: autogenerate then renders ALTERs that SQLite can run (by copying
        # the table), and on PostgreSQL batch operations are plain ALTERs, so one script serves both.
        "render_as_batch": True,
        "compare_type": True,
        "process_revision_directives": _skip_empty_revision,
    }


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"}, **_options())
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_options())
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several app processes may start at once; the second waits here and then finds nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
