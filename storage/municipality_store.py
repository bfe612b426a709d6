"""The loaded municipality configuration in the database.

The whole configuration is one JSON document in the single `municipality` row (id 1), so every worker reads
the same configuration without the TOML file. Categories and organisations are also mirrored into their own
tables because tickets reference them by foreign key; rows that leave the configuration are only marked
inactive, never deleted, so old tickets keep their category and organisation.

Plain ORM `get`/`select` and attribute updates, no dialect-specific upserts: the same code runs on SQLite and
PostgreSQL. The caller owns the transaction (commit or roll back); these functions only flush.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.municipality import Municipality
from storage.tables import CategoryRow, MunicipalityRow, OrganisationRow

ROW_ID = 1


def save_municipality(session: Session, municipality: Municipality, *, now: datetime | None = None) -> bool:
    """Store the configuration; False (and nothing written) when the stored one has the same checksum, which
    makes `otklik config load` and the start-up demo load idempotent."""
    checksum = municipality.checksum()
    row = session.get(MunicipalityRow, ROW_ID)
    if row is not None and row.checksum == checksum:
        return False
    loaded_at = now or datetime.now(UTC)
    document = municipality.to_document()
    if row is None:
        session.add(
            MunicipalityRow(
                id=ROW_ID,
                code=municipality.code,
                document=document,
                checksum=checksum,
                loaded_at=loaded_at,
            )
        )
    else:
        row.code = municipality.code
        row.document = document
        row.checksum = checksum
        row.loaded_at = loaded_at
    _sync_categories(session, municipality)
    _sync_organisations(session, municipality)
    session.flush()
    return True


def load_municipality(session: Session) -> Municipality | None:
    """The stored configuration, or None when none was loaded yet."""
    row = session.get(MunicipalityRow, ROW_ID)
    if row is None:
        return None
    return Municipality.from_document(row.document)


def _sync_categories(session: Session, municipality: Municipality) -> None:
    existing = {r.code: r for r in session.scalars(select(CategoryRow))}
    for position, category in enumerate(municipality.categories):
        row = existing.pop(category.code, None)
        if row is None:
            row = CategoryRow(code=category.code)
            session.add(row)
        row.parent_code = category.parent
        row.name_ru = category.names["ru"]
        row.name_en = category.name("en")
        row.sla_days = category.sla_days
        row.position = position
        row.active = True
    for row in existing.values():
        row.active = False


def _sync_organisations(session: Session, municipality: Municipality) -> None:
    existing = {r.code: r for r in session.scalars(select(OrganisationRow))}
    for organisation in municipality.organisations:
        row = existing.pop(organisation.code, None)
        if row is None:
            row = OrganisationRow(code=organisation.code)
            session.add(row)
        row.name_ru = organisation.names["ru"]
        row.name_en = organisation.name("en")
        row.kind = organisation.kind
        row.active = True
    for row in existing.values():
        row.active = False
