"""Tickets and statistics as plain documents for the admin CLI (and, later, the web side)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.domain.tickets import Ticket
from core.municipality import Municipality
from core.ports import TicketSummary
from storage.store import SqlStore


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_row(municipality: Municipality, t: TicketSummary) -> dict[str, Any]:
    return {
        "number": t.number,
        "status": t.status.value,
        "category": t.category,
        "subcategory": t.subcategory,
        "address": t.address,
        "organisation": t.organisation,
        "created_at": _iso(t.created_at),
        "deadline": _iso(t.deadline),
    }


def ticket_document(t: Ticket) -> dict[str, Any]:
    return {
        "number": t.number,
        "status": t.status.value,
        "category": t.category,
        "subcategory": t.subcategory,
        "lat": t.lat,
        "lon": t.lon,
        "address": t.address,
        "location_source": t.location_source,
        "description": t.description,
        "photos": list(t.photos),
        "organisation": t.organisation,
        "author": f"{t.author_channel}:{t.author_chat_id}",
        "created_at": _iso(t.created_at),
        "deadline": _iso(t.deadline),
        "rating": t.rating,
        "supporters": t.supporters,  # residents who joined it as the same problem ("me too")
        "events": [
            {
                "action": e.action.value,
                "at": _iso(e.at),
                "actor": e.actor,
                "from_status": e.from_status.value if e.from_status else None,
                "to_status": e.to_status.value,
                "comment": e.comment,
                "photos": list(e.photos),
            }
            for e in t.events
        ],
    }


def stats_document(store: SqlStore) -> dict[str, Any]:
    by_status = store.count_by("status")
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_category": store.count_by("category_code"),
    }
