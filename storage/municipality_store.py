"""The loaded municipality configuration in the database.

The whole configuration is one JSON document in the single `municipality` row (id 1), so every worker reads
the same configuration without the TOML file. Categories and organisations are also mirrored into their own
tables because tickets reference them by foreign key; rows that leave the configuration are only marked
inactive, never deleted, so old tickets keep their category and organisation.

Plain Core select/insert/update on the caller's connection, no dialect-specific upserts: the same code runs
on SQLite and PostgreSQL. The caller owns the transaction (commit or roll back).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from core.municipality import Municipality
from storage.tables import categories, organisations
from storage.tables import municipality as document_row

ROW_ID = 1


def save_municipality(conn: Connection, municipality: Municipality, *, now: datetime | None = None) -> bool:
    """Store the configuration; False (and nothing written) when the stored one has the same checksum, which
    makes `otklik config load` and the start-up demo load idempotent."""
    checksum = municipality.checksum()
    by_id = document_row.c.id == ROW_ID
    stored = conn.execute(select(document_row.c.checksum).where(by_id)).scalar_one_or_none()
    if stored == checksum:
        return False
    values = {
        "code": municipality.code,
        "document": municipality.to_document(),
        "checksum": checksum,
        "loaded_at": now or datetime.now(UTC),
    }
    if stored is None:
        conn.execute(insert(document_row).values(id=ROW_ID, **values))
    else:
        conn.execute(update(document_row).where(by_id).values(**values))
    _sync(
        conn,
        categories,
        {
            category.code: {
                "parent_code": category.parent,
                "name_ru": category.names["ru"],
                "name_en": category.name("en"),
                "sla_days": category.sla_days,
                "position": position,
            }
            for position, category in enumerate(municipality.categories)
        },
    )
    _sync(
        conn,
        organisations,
        {
            organisation.code: {
                "name_ru": organisation.names["ru"],
                "name_en": organisation.name("en"),
                "kind": organisation.kind,
            }
            for organisation in municipality.organisations
        },
    )
    return True


def load_municipality(conn: Connection) -> Municipality | None:
    """The stored configuration, or None when none was loaded yet."""
    document = conn.execute(
        select(document_row.c.document).where(document_row.c.id == ROW_ID)
    ).scalar_one_or_none()
    return None if document is None else Municipality.from_document(document)


def _sync(conn: Connection, table: Table, wanted: dict[str, dict[str, Any]]) -> None:
    """Rows keyed by `code`: the wanted ones written and active, every other one kept but inactive."""
    existing = set(conn.execute(select(table.c.code)).scalars())
    for code, values in wanted.items():
        if code in existing:
            conn.execute(update(table).where(table.c.code == code).values(active=True, **values))
        else:
            conn.execute(insert(table).values(code=code, active=True, **values))
    gone = existing - wanted.keys()
    if gone:
        conn.execute(update(table).where(table.c.code.in_(gone)).values(active=False))
