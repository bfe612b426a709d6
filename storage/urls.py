"""Database URLs as operators write them, turned into the driver-qualified form SQLAlchemy needs."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def normalise_url(url: str | URL) -> URL:
    """`postgresql://…` and `postgres://…` use psycopg 3; SQLite stays on the stdlib driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername.startswith("sqlite+"):
        parsed = parsed.set(drivername="sqlite")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"
