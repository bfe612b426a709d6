"""Rows into core types, shared by the store's parts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from core.domain.tickets import Status
from core.ports import TicketSummary
from storage.tables import supporters, tickets

SUPPORTERS = (
    select(func.count())
    .where(supporters.c.ticket_number == tickets.c.number)
    .correlate(tickets)
    .scalar_subquery()
    .label("supporters")
)
"""The ticket's supporter count ("me too") as a column of a `select(tickets, SUPPORTERS)`."""


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def sqlite_timestamp(value: datetime) -> str:
    """The text form SQLAlchemy's SQLite DateTime writes and reads (UTC, no offset). `isoformat` gives the
    same text as `strftime("%Y-%m-%d %H:%M:%S.%f")` in under half the time, and this runs twice per update."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def ticket_columns(r: Any) -> dict[str, Any]:
    """The fields every view of a ticket row reads alike: codes as they are, status typed, times in UTC."""
    return {
        "number": r.number,
        "status": Status(r.status),
        "category": r.category_code,
        "subcategory": r.subcategory_code,
        "address": r.address,
        "organisation": r.organisation_code,
        "created_at": utc(r.created_at),
        "deadline": utc(r.deadline),
    }


def ticket_summary(r: Any) -> TicketSummary:
    return TicketSummary(**ticket_columns(r), supporters=int(getattr(r, "supporters", 0) or 0))
