"""Places: the geocoder port, the lookups a dialog step asks for, and small geometry helpers (DESIGN.md §7).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from core.municipality import Municipality

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


@dataclass(frozen=True, slots=True)
class Bounds:
    south: float
    west: float
    north: float
    east: float


class GeocoderError(Exception):
    """The geocoder could not answer (unavailable, refused, timed out, over its rate limit)."""


class Geocoder(Protocol):
    """Async geocoding. Adapters live in storage/ (geopy); `None` instead of a geocoder means off."""

    async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
        """The address at a point; None when there is none. Raises GeocoderError when it cannot say."""

    async def search(self, query: str, language: str, bounds: Bounds, limit: int) -> list[Place]:
        """Places matching a typed address, restricted to `bounds`, best first; [] when nothing matches.
        Raises GeocoderError when it cannot say."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a dialog step wants to know; `id` is remembered in the dialog state so that a late or
    superseded answer is recognised and dropped."""

    id: str
    kind: Literal["reverse", "search"]
    language: str
    query: str = ""
    lat: float = 0.0
    lon: float = 0.0


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
    """Ask the geocoder, never longer than `timeout`; any failure is an answer with `ok=False`."""
    if geocoder is None:
        return Geocoded(lookup.id, lookup.kind, ok=False)
    try:
        async with asyncio.timeout(timeout):
            if lookup.kind == "reverse":
                place = await geocoder.reverse(lookup.lat, lookup.lon, lookup.language)
                places: tuple[Place, ...] = (place,) if place is not None else ()
            else:
                found = await geocoder.search(
                    lookup.query, lookup.language, city_bounds(municipality), MAX_CANDIDATES
                )
                places = tuple(found[:MAX_CANDIDATES])
    except TimeoutError:
        log.warning("geocoder: %s lookup timed out after %.1f s", lookup.kind, timeout)
        return Geocoded(lookup.id, lookup.kind, ok=False)
    except Exception as exc:  # an adapter's bug must not lose the resident's report either
        expected = isinstance(exc, GeocoderError)
        log.warning("geocoder: %s lookup failed: %s", lookup.kind, exc, exc_info=not expected)
        return Geocoded(lookup.id, lookup.kind, ok=False)
    return Geocoded(lookup.id, lookup.kind, ok=True, places=places)


def bounding_box(lat: float, lon: float, radius_m: float) -> Bounds:
    """A box that certainly holds every point within `radius_m` of (lat, lon) on the ellipsoid: the indexed
    pre-filter of a nearby search (the exact distance is measured afterwards)."""
    margin = 1.01
    dlat = radius_m * margin / METRES_PER_DEGREE
    cos_lat = math.cos(math.radians(min(89.0, abs(lat) + dlat)))
    dlon = min(180.0, radius_m * margin / (METRES_PER_DEGREE * cos_lat))
    return Bounds(south=lat - dlat, west=lon - dlon, north=lat + dlat, east=lon + dlon)
