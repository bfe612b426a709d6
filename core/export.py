"""The filtered ticket list as CSV (UTF-8 with a BOM, so Excel reads Cyrillic right) or GeoJSON (RFC 7946:
a FeatureCollection, coordinates [lon, lat] in WGS 84, `null` geometry for a ticket without a point).

Both are written in pieces (`head`, one chunk per batch of rows, `tail`) so that a million rows stream out
of the web and the command line in constant memory. Nothing here names a resident: number, category,
place, organisation, dates, status and rating only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from core.domain.policy import overdue
from core.municipality import Municipality
from core.ports import TicketPoint

FORMATS = ("csv", "geojson")
BATCH = 1000
COLUMNS = (
    "number",
    "status",
    "category",
    "subcategory",
    "address",
    "lat",
    "lon",
    "organisation",
    "created_at",
    "deadline",
    "resolved_at",
    "rating",
    "overdue",
)
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}


def record(point: TicketPoint, tz: ZoneInfo, now: datetime) -> dict[str, object]:
    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(tz).isoformat() if moment is not None else None

    return {
        "number": point.number,
        "status": point.status.value,
        "category": point.category,
        "subcategory": point.subcategory,
        "address": point.address,
        "lat": point.lat,
        "lon": point.lon,
        "organisation": point.organisation,
        "created_at": iso(point.created_at),
        "deadline": iso(point.deadline),
        "resolved_at": iso(point.resolved_at),
        "rating": point.rating,
        "overdue": overdue(point.status, point.deadline, now),
    }


class Writer:
    """One export's pieces, in order: `head()`, `chunk(rows)` per batch, `tail()`."""

    def __init__(self, fmt: str, municipality: Municipality, now: datetime) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.tz = ZoneInfo(municipality.timezone)
        self.now = now
        self.first = True

    def head(self) -> str:
        if self.fmt == "csv":
            return "\ufeff" + self._csv([COLUMNS])
        return '{"type":"FeatureCollection","features":['

    def chunk(self, points: Sequence[TicketPoint]) -> str:
        records = [record(p, self.tz, self.now) for p in points]
        if self.fmt == "csv":
            return self._csv([[_cell(r[c]) for c in COLUMNS] for r in records])
        parts = []
        for r in records:
            lat, lon = r["lat"], r["lon"]
            geometry = (
                {"type": "Point", "coordinates": [lon, lat]} if lat is not None and lon is not None else None
            )
            feature = {"type": "Feature", "id": r["number"], "geometry": geometry, "properties": r}
            parts.append(("" if self.first else ",") + json.dumps(feature, ensure_ascii=False))
            self.first = False
        return "".join(parts)

    def tail(self) -> str:
        return "" if self.fmt == "csv" else "]}\n"

    @staticmethod
    def _csv(rows: Sequence[Sequence[object]]) -> str:
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        return out.getvalue()


def _cell(value: object) -> object:
    """CSV cells: empty for none; a text starting like a formula is quoted with ' so a spreadsheet shows it
    instead of running it (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
