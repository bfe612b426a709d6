"""Which organisation is responsible for a category at a point (DESIGN.md §5: routing is data).

Candidates are the organisations that list the category itself or its parent and whose service area holds
the point. Ranking, first wins:
1. an organisation listing the exact (sub)category beats one listing only its parent — a lighting utility
   that owns `roads.traffic_light` wins over the roads department that owns `roads` city-wide;
2. the smaller service area (the most specific one: a district's management company over a city-wide
   service);
3. the code, so overlapping areas of equal size still give the same answer every time.
No candidate, an unknown category or no coordinates → the municipality's dispatch organisation, whose staff
route by hand. An organisation without an area serves the whole city, i.e. the city boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.municipality import Municipality, prepared_geometry


@dataclass(frozen=True, slots=True)
class _Candidate:
    code: str
    geometry: Any  # prepared shapely geometry


def route(municipality: Municipality, category_code: str, lat: float | None, lon: float | None) -> str:
    """The code of the organisation that should handle a ticket of this category at this point."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return municipality.dispatch
    table: dict[str, tuple[_Candidate, ...]] = municipality.memo(
        "routing", lambda: _routing_table(municipality)
    )
    import shapely  # here: only routing a ticket needs polygons (and numpy)

    for candidate in table.get(category_code, ()):
        if shapely.intersects_xy(candidate.geometry, lon, lat):
            return candidate.code
    return municipality.dispatch


def _routing_table(municipality: Municipality) -> dict[str, tuple[_Candidate, ...]]:
    """Category code → candidates in ranking order, built once per configuration: a route is then a few
    prepared point-in-polygon tests."""
    city = municipality.boundary_geometry()
    areas: dict[str, tuple[Any, float]] = {}
    for org in municipality.organisations:
        geometry = city if org.area is None else prepared_geometry(org.area)
        areas[org.code] = (geometry, geometry.area)

    table: dict[str, tuple[_Candidate, ...]] = {}
    for category in municipality.categories:
        ranked: list[tuple[int, float, str]] = []
        for org in municipality.organisations:
            if category.code in org.categories:
                specificity = 0
            elif category.parent is not None and category.parent in org.categories:
                specificity = 1
            else:
                continue
            ranked.append((specificity, areas[org.code][1], org.code))
        ranked.sort()
        table[category.code] = tuple(_Candidate(code, areas[code][0]) for _, _, code in ranked)
    return table
