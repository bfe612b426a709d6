"""Places: the lookups a dialog step asks for, and small geometry helpers (DESIGN.md §7); the
`Geocoder` port itself lives with the other ports in core/ports.py.

The engine's step is synchronous and runs inside one database transaction, so a step never calls the
geocoder. It records what it wants to know as a `Lookup` (in `Ctx.lookups`, and its id in the dialog
state); after that transaction commits, `Engine.handle` runs the lookup here with a timeout and feeds the
answer back as an internal update (`Incoming.geocoded`, a `Geocoded`) in a second transaction. A slow,
failing or missing geocoder gives `Geocoded(ok=False)`, and the dialog goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from core.municipality import Municipality
    from core.ports import Geocoder

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
"""Seconds the resident waits for a geocoder at most, rate-limit queueing included."""
MAX_CANDIDATES = 5
METRES_PER_DEGREE = 110_574.0
"""The shortest a degree of latitude gets (at the equator); a degree of longitude spans at least this
× cos(latitude)."""


@dataclass(frozen=True, slots=True)
class Place:
    """A geocoder's answer: a short address a resident recognises ("улица Ленина, 5"), the point, and the
    wider area (district, suburb) that tells apart two places with the same short address."""

    address: str
    lat: float
    lon: float
    area: str = ""
    shown: str = ""
    """The address in the resident's language when it differs from `address`: staff get the
    city's language, the resident their own."""

    @property
    def label(self) -> str:
        return self.shown or self.address


@dataclass(frozen=True, slots=True)
class Bounds:
    south: float
    west: float
    north: float
    east: float


class GeocoderError(Exception):
    """The geocoder could not answer (unavailable, refused, timed out, over its rate limit)."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a dialog step wants to know; `id` is remembered in the dialog state so that a late or
    superseded answer is recognised and dropped."""

    id: str
    kind: Literal["reverse", "search"]
    language: str
    """The resident's language: what they are shown."""
    query: str = ""
    lat: float = 0.0
    lon: float = 0.0
    city_language: str = ""
    """The municipality's language, in which addresses are stored for staff; "" or `language`: one lookup."""


@dataclass(frozen=True, slots=True)
class Geocoded:
    """The answer to a `Lookup`: `ok=False` when the geocoder was slow, failing or off."""

    id: str
    kind: Literal["reverse", "search"]
    ok: bool
    places: tuple[Place, ...] = ()


def city_bounds(municipality: Municipality) -> Bounds:
    """The bounding box of the municipality's boundary (the geocoder's viewbox)."""

    def build() -> Bounds:
        west, south, east, north = municipality.boundary_geometry().bounds
        return Bounds(south=south, west=west, north=north, east=east)

    return municipality.memo("geo.bounds", build)


async def run_lookup(
    geocoder: Geocoder | None,
    lookup: Lookup,
    municipality: Municipality,
    timeout: float = DEFAULT_TIMEOUT,
) -> Geocoded:
    """Ask the geocoder, never longer than `timeout`; any failure is an answer with `ok=False`. When the
    resident's language is not the city's, the places are asked for in both and paired by their point: the
    address to store is the city's, the one to show is the resident's (either alone when the other fails)."""
    if geocoder is None:
        return Geocoded(lookup.id, lookup.kind, ok=False)
    city = lookup.city_language or lookup.language
    languages = [city] if city == lookup.language else [city, lookup.language]
    try:
        async with asyncio.timeout(timeout):
            answers = await asyncio.gather(
                *(_ask(geocoder, lookup, language, municipality) for language in languages),
                return_exceptions=True,
            )
    except TimeoutError:
        log.warning("geocoder: %s lookup timed out after %.1f s", lookup.kind, timeout)
        return Geocoded(lookup.id, lookup.kind, ok=False)
    found = [a for a in answers if not isinstance(a, BaseException)]
    for failure in (a for a in answers if isinstance(a, BaseException)):
        if not isinstance(failure, Exception):
            raise failure  # cancellation and the like are not the geocoder's answer
        # an adapter's bug must not lose the resident's report either
        expected = isinstance(failure, GeocoderError | TimeoutError)
        log.warning("geocoder: %s lookup failed: %s", lookup.kind, failure, exc_info=not expected)
    if not found:
        return Geocoded(lookup.id, lookup.kind, ok=False)
    if len(found) == 1:
        return Geocoded(lookup.id, lookup.kind, ok=True, places=found[0])
    return Geocoded(lookup.id, lookup.kind, ok=True, places=pair(found[0], found[1]))


async def _ask(
    geocoder: Geocoder, lookup: Lookup, language: str, municipality: Municipality
) -> tuple[Place, ...]:
    if lookup.kind == "reverse":
        place = await geocoder.reverse(lookup.lat, lookup.lon, language)
        return (place,) if place is not None else ()
    found = await geocoder.search(lookup.query, language, city_bounds(municipality), MAX_CANDIDATES)
    return tuple(found[:MAX_CANDIDATES])


SAME_POINT = 1e-6
"""Degrees (≈ 0.1 m): the same map object answered in two languages has the same point."""


def pair(stored: tuple[Place, ...], shown: tuple[Place, ...]) -> tuple[Place, ...]:
    """The city-language places, each with the resident-language address (and area) of the same point."""
    out = []
    for place in stored:
        twin = next(
            (s for s in shown if abs(s.lat - place.lat) < SAME_POINT and abs(s.lon - place.lon) < SAME_POINT),
            None,
        )
        if twin is None or twin.address == place.address:
            out.append(place)
        else:
            out.append(replace(place, area=twin.area or place.area, shown=twin.address))
    return tuple(out)


WGS84_A = 6_378_137.0
WGS84_E2 = 0.006_694_379_990_14


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two nearby points on the WGS84 ellipsoid, from its radii of curvature at their mean
    latitude: within a millimetre of the geodesic over the few hundred metres of a nearby search, at a
    fraction of its cost and without a geodesy library's imports (an admin command pays for those)."""
    mid = math.radians((lat1 + lat2) / 2)
    w = 1 - WGS84_E2 * math.sin(mid) ** 2
    meridian = WGS84_A * (1 - WGS84_E2) / w**1.5  # radius of curvature north-south
    normal = WGS84_A / math.sqrt(w)  # east-west, before the parallel's shrinking
    north = meridian * math.radians(lat2 - lat1)
    east = normal * math.cos(mid) * math.radians(lon2 - lon1)
    return math.hypot(north, east)


def bounding_box(lat: float, lon: float, radius_m: float) -> Bounds:
    """A box that certainly holds every point within `radius_m` of (lat, lon) on the ellipsoid: the indexed
    pre-filter of a nearby search (the exact distance is measured afterwards)."""
    margin = 1.01
    dlat = radius_m * margin / METRES_PER_DEGREE
    cos_lat = math.cos(math.radians(min(89.0, abs(lat) + dlat)))
    dlon = min(180.0, radius_m * margin / (METRES_PER_DEGREE * cos_lat))
    return Bounds(south=lat - dlat, west=lon - dlon, north=lat + dlat, east=lon + dlon)
