"""Rows into core types, shared by the store's parts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from core.domain.tickets import Status
from core.ports import TicketSummary
from storage.tables import SupporterRow, TicketRow

_tickets = TicketRow.__table__
_supporters = SupporterRow.__table__

SUPPORTERS = (
    select(func.count())
    .where(_supporters.c.ticket_number == _tickets.c.number)
    .correlate(_tickets)
    .scalar_subquery()
    .label("supporters")
)
"""The ticket's supporter count ("me too") as a column of a `select(tickets, SUPPORTERS)`."""


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def ticket_summary(r: Any) -> TicketSummary:
    return TicketSummary(
        number=r.number,
        status=Status(r.status),
        category=r.category_code,
        subcategory=r.subcategory_code,
        created_at=utc(r.created_at),  # type: ignore[arg-type]
        address=r.address,
        organisation=r.organisation_code,
        deadline=utc(r.deadline),
        supporters=int(getattr(r, "supporters", 0) or 0),
    )
