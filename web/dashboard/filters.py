"""The map's, the list's, the exports' and the dashboard's filters, parsed strictly from a query string:
unknown values are dropped, sizes are bounded, and the organisation scope comes from the session, never
from the form (a staff member asking for another organisation gets their own)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from core.domain.tickets import Status
from core.geo import Bounds
from core.municipality import Municipality
from core.ports import TicketFilter

MAX_VALUES = 30
STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True, slots=True)
class Chosen:
    """The filter, and the form's values to show it again."""

    where: TicketFilter
    form: dict[str, object]


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if len(text) == 10 else None
    except ValueError:
        return None


def parse_bbox(text: str) -> Bounds | None:
    """`west,south,east,north` (Leaflet's `toBBoxString`), finite and on the globe."""
    parts = text.split(",")
    if len(parts) != 4 or len(text) > 120:
        return None
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        return None
    if not (-90 <= south <= north <= 90 and -180 <= west <= east <= 180):
        return None
    return Bounds(south=south, west=west, north=north, east=east)


def parse(
    query: MultiMapping[str], municipality: Municipality, scope: tuple[str, ...], now: datetime
) -> Chosen:
    tz = ZoneInfo(municipality.timezone)
    statuses = tuple(dict.fromkeys(s for s in query.getall("status", [])[:MAX_VALUES] if s in STATUSES))
    categories = tuple(
        dict.fromkeys(c for c in query.getall("category", [])[:MAX_VALUES] if municipality.category(c))
    )
    organisations = tuple(
        dict.fromkeys(
            o for o in query.getall("organisation", [])[:MAX_VALUES] if municipality.organisation(o)
        )
    )
    if scope:  # staff: their organisation, whatever the form says
        organisations = scope
    start, end = parse_day(query.get("from", "")), parse_day(query.get("to", ""))
    where = TicketFilter(
        statuses=statuses,
        categories=categories,
        organisations=organisations,
        created_from=datetime.combine(start, time(), tz) if start else None,
        created_to=datetime.combine(end + timedelta(days=1), time(), tz) if end else None,
        overdue_at=now if query.get("overdue") == "1" else None,
    )
    form: dict[str, object] = {
        "status": statuses,
        "category": categories,
        "organisation": organisations if not scope else (),
        "from": start.isoformat() if start else "",
        "to": end.isoformat() if end else "",
        "overdue": where.overdue_at is not None,
    }
    return Chosen(where, form)


def with_bbox(where: TicketFilter, bbox: Bounds) -> TicketFilter:
    return replace(where, bbox=bbox)


def query_string(form: dict[str, object]) -> list[tuple[str, str]]:
    """The form as query pairs again (for the map's data URL, the exports and the next page)."""
    pairs: list[tuple[str, str]] = []
    for key in ("status", "category", "organisation"):
        pairs += [(key, str(v)) for v in form.get(key, ()) or ()]  # type: ignore[union-attr]
    for key in ("from", "to"):
        if form.get(key):
            pairs.append((key, str(form[key])))
    if form.get("overdue"):
        pairs.append(("overdue", "1"))
    return pairs
