"""Whether a database is at the newest schema revision, without importing alembic.

Every command on the embedded database upgrades it first; importing alembic to find out that there is
nothing to do cost an admin command about a third of its start-up. The revisions' ids are read from the
migration files' `revision` / `down_revision` lines (the form `storage.migrate revision` writes), and the
database's from alembic's own `alembic_version` table (an SQLite file read with the standard library: an
engine of SQLAlchemy's own, built and disposed of for one query, cost an admin command ~5 ms); a test checks
that the heads agree with alembic's.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import OperationalError, ProgrammingError

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def script_heads(versions: Path = VERSIONS_DIR) -> frozenset[str]:
    """The revisions no other revision builds on."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in versions.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(source)
        if down is not None:
            below.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - below)


def database_heads(url: str) -> frozenset[str]:
    """The revisions alembic recorded in the database (none for a new one)."""
    from storage.urls import normalise_url

    parsed = normalise_url(url)
    if parsed.drivername == "sqlite" and parsed.database not in (None, "", ":memory:") and not parsed.query:
        return _sqlite_heads(parsed.database)
    engine = create_engine(parsed, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return frozenset(row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version")))
    except (OperationalError, ProgrammingError):  # no such table yet
        return frozenset()
    finally:
        engine.dispose()


def _sqlite_heads(path: str) -> frozenset[str]:
    connection = sqlite3.connect(path)  # as SQLAlchemy's driver does: a missing file is created, empty
    try:
        return frozenset(row[0] for row in connection.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.OperationalError:  # no such table yet
        return frozenset()
    finally:
        connection.close()


def is_current(url: str) -> bool:
    heads = script_heads()
    return bool(heads) and database_heads(url) == heads
