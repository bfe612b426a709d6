"""Tickets and statistics as plain documents for the admin CLI (and, later, the web side)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any

from core.domain.policy import is_overdue
from core.domain.tickets import Ticket
from core.ports import TicketFilter, TicketSummary, UnitOfWork
from core.stats import document

SHOWN = "%Y-%m-%d %H:%M %Z"
"""How the CLI prints a moment for people: the city's local time with its zone (`2026-12-01 10:00 +08`)."""


def iso(value: datetime | None, tz: tzinfo = UTC) -> str | None:
    """ISO 8601 in the city's local time with its offset (`2026-12-01T10:00:00+08:00`)."""
    return value.astimezone(tz).isoformat() if value else None


def shown(value: datetime | str | None, tz: tzinfo = UTC, fmt: str = SHOWN) -> str:
    """A moment (or its ISO text) as people read it, in the city's time zone; "—" for none."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(tz).strftime(fmt)


def _identity(t: TicketSummary | Ticket) -> dict[str, Any]:
    """The keys every ticket output starts with, in this order."""
    return {
        "number": t.number,
        "status": t.status.value,
        "category": t.category,
        "subcategory": t.subcategory,
    }


def ticket_row(t: TicketSummary, tz: tzinfo = UTC) -> dict[str, Any]:
    _iso = partial(iso, tz=tz)
    return {
        **_identity(t),
        "address": t.address,
        "organisation": t.organisation,
        "created_at": _iso(t.created_at),
        "deadline": _iso(t.deadline),
        "overdue": is_overdue(t, datetime.now(UTC)),
        "supporters": t.supporters,  # residents who joined it as the same problem ("me too")
    }


def ticket_document(t: Ticket, tz: tzinfo = UTC) -> dict[str, Any]:
    _iso = partial(iso, tz=tz)
    return {
        **_identity(t),
        "lat": t.lat,
        "lon": t.lon,
        "address": t.address,
        "location_source": t.location_source,
        "description": t.description,
        "photos": list(t.public_photos(t.photos)),  # hidden photos stay out of every export
        "hidden_photos": len(t.hidden_photos),
        "organisation": t.organisation,
        "author": f"{t.author_channel}:{t.author_chat_id}" if t.author_channel else None,  # None: left
        "created_at": _iso(t.created_at),
        "deadline": _iso(t.deadline),
        "rating": t.rating,
        "overdue": is_overdue(t, datetime.now(UTC)),
        "taken_by": t.taken_by,
        "resolved_at": _iso(t.resolved_at),
        "resolution_photos": list(t.public_photos(t.resolution_photos)),
        "supporters": t.supporters,  # residents who joined it as the same problem ("me too")
        "events": [
            {
                "action": e.action.value,
                "at": _iso(e.at),
                "actor": e.actor,
                "from_status": e.from_status.value if e.from_status else None,
                "to_status": e.to_status.value,
                "comment": e.comment,
                "photos": list(t.public_photos(e.photos)),
                "data": dict(e.data),
            }
            for e in t.events
        ],
    }


def stats_document(store: UnitOfWork, now: datetime | None = None, timezone: str = "UTC") -> dict[str, Any]:
    """Counts and the response, resolution, rating and reopen figures of core/stats.py, aggregated by the
    database through the same query as the web's dashboard."""
    figures = store.ticket_search.stats(TicketFilter(), now or datetime.now(UTC), timezone)
    return document(figures)


def stats_lines(doc: dict[str, Any]) -> list[str]:
    """`otklik stats` for people."""

    def hours(h: dict[str, Any]) -> str:
        if not h["count"]:
            return "—"
        return f"median {h['median']} h, p90 {h['p90']} h (of {h['count']})"

    def share(s: dict[str, Any]) -> str:
        return "—" if s["share"] is None else f"{s['share'] * 100:.0f}% (of {s['of']})"

    lines = [f"tickets: {doc['total']}"]
    for section in ("by_status", "by_category", "by_organisation"):
        lines.append(f"{section.replace('_', ' ')}:")
        lines.extend(f"  {key:<30} {n}" for key, n in doc[section].items())
    scopes = [("all", doc), *doc["organisations"].items()]
    for name, m in scopes:
        rating = "—" if m["rating"]["mean"] is None else f"{m['rating']['mean']} (of {m['rating']['count']})"
        lines += [
            f"{name}:",
            f"  first response        {hours(m['first_response_hours'])}",
            f"  resolution            {hours(m['resolution_hours'])}",
            f"  resolved in deadline  {share(m['resolved_within_deadline'])}",
            f"  mean rating           {rating}",
            f"  reopened              {share(m['reopen_rate'])}",
            f"  overdue now           {m['overdue']}",
        ]
    return lines
