"""Geocoder adapters over geopy (DESIGN.md §7): Nominatim (default), Yandex, or off; answers cached in the DB.

Both adapters use geopy's own clients with `AioHTTPAdapter`, so nothing blocks the event loop. A client — and
with it its aiohttp session — is made per request and closed after it: lookups are rare (one or two per
report) and this keeps the adapters free of event-loop lifetimes. The public Nominatim server gets at most one
request per second (its usage policy) with an identifying User-Agent; a request that would have to queue
longer than `max_queue` seconds fails at once instead, and the dialog goes on without the geocoder.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import metadata
from typing import Any
from urllib.parse import urlencode, urlsplit

from geopy.adapters import AioHTTPAdapter
from geopy.exc import GeopyError
from geopy.geocoders import Nominatim, Yandex
from geopy.geocoders.base import DEFAULT_SENTINEL
from geopy.location import Location as GeoLocation
from sqlalchemy import delete, select

from core.geo import Bounds, GeocoderError, Place
from core.ports import Geocoder
from storage.tables import geocode_cache

log = logging.getLogger(__name__)

PUBLIC_NOMINATIM = "nominatim.openstreetmap.org"
COUNTRY_CODES = ("ru",)
HTTP_TIMEOUT = 4.0
MAX_QUEUE = 3.0


def user_agent(contact: str = "") -> str:
    """`otklik/<version> (+<contact>)`: who is asking, as the Nominatim usage policy requires."""
    try:
        version = metadata.version("otklik")
    except metadata.PackageNotFoundError:
        version = "0"
    about = f"+{contact}" if contact else "municipal problem-reporting bot"
    return f"otklik/{version} ({about})"


class RequestSlots:
    """At most one request per `interval` seconds, in arrival order. Each caller reserves the next free slot
    and sleeps until it; one whose slot is more than `max_queue` seconds away gets GeocoderError right away
    (its answer would come too late to be useful)."""

    def __init__(self, interval: float, max_queue: float = MAX_QUEUE) -> None:
        self.interval = interval
        self.max_queue = max_queue
        self._next = 0.0

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        if slot - now > self.max_queue:
            raise GeocoderError("too many geocoder requests queued")
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _first(mapping: dict[str, Any], *keys: str) -> str:
    return next((str(mapping[k]) for k in keys if mapping.get(k)), "")


# --- Nominatim ----------------------------------------------------------------------------------------------
NOMINATIM_NOT_PLACES = {
    "administrative",
    "city",
    "town",
    "state",
    "country",
    "county",
    "region",
    "municipality",
}


def nominatim_place(location: GeoLocation) -> Place | None:
    raw: dict[str, Any] = location.raw
    if raw.get("class") == "boundary" or raw.get("type") in NOMINATIM_NOT_PLACES:
        return None  # the whole city or district: no use for finding a pothole
    address: dict[str, Any] = raw.get("address") or {}
    street = _first(
        address, "road", "pedestrian", "footway", "path", "square", "residential", "neighbourhood"
    )
    house = _first(address, "house_number")
    name = str(raw.get("name") or "")
    if street and house:
        short = f"{street}, {house}"
    elif name:
        short = f"{name}, {street}" if street and street != name else name
    elif street:
        short = street
    else:
        short = ", ".join(part.strip() for part in (location.address or "").split(",")[:2])
    area = _first(address, "suburb", "city_district", "quarter", "neighbourhood", "village", "hamlet")
    if not short:
        return None
    return Place(address=short, lat=location.latitude, lon=location.longitude, area=area)


def _geopy_options(g: NominatimGeocoder | YandexGeocoder) -> dict[str, Any]:
    """geopy's keywords for either provider: where the service is, who asks, how long to wait, on aiohttp."""
    return {
        "domain": g.domain,
        "scheme": g.scheme,
        "user_agent": g.agent,
        "timeout": g.timeout,
        "adapter_factory": AioHTTPAdapter,
    }


class NominatimGeocoder:
    """`NOMINATIM_URL` → geopy `Nominatim(domain="host[:port][/path]", scheme=...)`."""

    provider = "nominatim"

    def __init__(
        self,
        url: str,
        agent: str,
        *,
        timeout: float = HTTP_TIMEOUT,
        interval: float | None = None,
        max_queue: float = MAX_QUEUE,
        country_codes: tuple[str, ...] = COUNTRY_CODES,
    ) -> None:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        self.scheme = parts.scheme
        self.domain = parts.netloc + parts.path.rstrip("/")
        self.agent = agent
        self.timeout = timeout
        self.country_codes = list(country_codes)
        if interval is None:  # the public server's policy; your own server sets its own limits
            interval = 1.0 if parts.hostname == PUBLIC_NOMINATIM else 0.0
        self.limiter = RequestSlots(interval, max_queue)

    def _client(self) -> Nominatim:
        return Nominatim(**_geopy_options(self))

    async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
        await self.limiter.wait()
        try:
            async with self._client() as client:
                found = await client.reverse((lat, lon), language=language, addressdetails=True, zoom=18)
        except GeopyError as exc:
            raise GeocoderError(f"nominatim reverse: {exc}") from exc
        return nominatim_place(found) if found is not None else None

    async def search(self, query: str, language: str, bounds: Bounds, limit: int) -> list[Place]:
        await self.limiter.wait()
        try:
            async with self._client() as client:
                found = await client.geocode(
                    query,
                    exactly_one=False,
                    limit=limit,
                    addressdetails=True,
                    language=language,
                    country_codes=self.country_codes,
                    viewbox=[(bounds.south, bounds.west), (bounds.north, bounds.east)],
                    bounded=True,
                )
        except GeopyError as exc:
            raise GeocoderError(f"nominatim search: {exc}") from exc
        return [p for p in map(nominatim_place, found or ()) if p is not None]


# --- Yandex -------------------------------------------------------------------------------------------------
YANDEX_LANGUAGES = {"ru": "ru_RU", "en": "en_RU"}  # English answers, Russian map features
YANDEX_NOT_PLACES = {"country", "province", "area", "locality"}


class _BoundedYandex(Yandex):
    """geopy's Yandex with the geocoder's `bbox` + `rspn=1` (results only inside the box) for searches."""

    def search(
        self, query: str, *, lang: str, bounds: Bounds, limit: int, timeout: Any = DEFAULT_SENTINEL
    ) -> Any:
        params = {
            "geocode": query,
            "format": "json",
            "apikey": self.api_key,
            "lang": lang,
            "results": limit,
            "bbox": f"{bounds.west},{bounds.south}~{bounds.east},{bounds.north}",
            "rspn": 1,
        }
        url = "?".join((self.api, urlencode(params)))
        return self._call_geocoder(url, partial(self._parse_json, exactly_one=False), timeout=timeout)


def yandex_place(location: GeoLocation) -> Place | None:
    raw: dict[str, Any] = location.raw
    meta = (raw.get("metaDataProperty") or {}).get("GeocoderMetaData") or {}
    if meta.get("kind") in YANDEX_NOT_PLACES:
        return None
    components = (meta.get("Address") or {}).get("Components") or []
    districts = [c.get("name", "") for c in components if c.get("kind") == "district"]
    name = str(raw.get("name") or "")
    if not name:
        return None
    return Place(
        address=name, lat=location.latitude, lon=location.longitude, area=districts[-1] if districts else ""
    )


@dataclass
class YandexGeocoder:
    """`GEOCODER=yandex` with `YANDEX_GEOCODER_KEY`; `domain`/`scheme` point it elsewhere (tests)."""

    provider = "yandex"

    api_key: str = field(repr=False)
    agent: str
    _: KW_ONLY
    domain: str = "geocode-maps.yandex.ru"
    scheme: str = "https"
    timeout: float = HTTP_TIMEOUT

    def _client(self) -> _BoundedYandex:
        return _BoundedYandex(self.api_key, **_geopy_options(self))

    async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
        try:
            async with self._client() as client:
                found = await client.reverse(
                    (lat, lon), kind="house", lang=YANDEX_LANGUAGES.get(language, "ru_RU")
                )
        except GeopyError as exc:
            raise GeocoderError(f"yandex reverse: {exc}") from exc
        return yandex_place(found) if found is not None else None

    async def search(self, query: str, language: str, bounds: Bounds, limit: int) -> list[Place]:
        try:
            async with self._client() as client:
                found = await client.search(
                    query, lang=YANDEX_LANGUAGES.get(language, "ru_RU"), bounds=bounds, limit=limit
                )
        except GeopyError as exc:
            raise GeocoderError(f"yandex search: {exc}") from exc
        return [p for p in map(yandex_place, found or ()) if p is not None]


# --- the cache ----------------------------------------------------------------------------------------------
def _utcnow() -> datetime:
    return datetime.now(UTC)


class CachedGeocoder:
    """Answers kept in `geocode_cache` by request: found places for `ttl`, "nothing there" for `empty_ttl`.
    Failures are never cached. The cache is a convenience: if the database cannot serve it, the geocoder is
    asked as if it were empty."""

    def __init__(
        self,
        inner: Any,
        db: Any,
        *,
        ttl: timedelta = timedelta(days=30),
        empty_ttl: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.inner = inner
        self.db = db
        self.provider = str(getattr(inner, "provider", type(inner).__name__))
        self.ttl = ttl
        self.empty_ttl = empty_ttl
        self.clock = clock

    async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
        request = f"{self.provider}|reverse|{language}|{lat:.5f},{lon:.5f}"  # ~1 m: the same address
        cached = await self._get(request)
        if cached is not None:
            return cached[0] if cached else None
        place = await self.inner.reverse(lat, lon, language)
        await self._put(request, [place] if place is not None else [])
        return place

    async def search(self, query: str, language: str, bounds: Bounds, limit: int) -> list[Place]:
        box = f"{bounds.south:.4f},{bounds.west:.4f},{bounds.north:.4f},{bounds.east:.4f}"
        normalised = " ".join(query.casefold().split())
        request = f"{self.provider}|search|{language}|{box}|{limit}|{normalised}"
        cached = await self._get(request)
        if cached is not None:
            return cached
        places = await self.inner.search(query, language, bounds, limit)
        await self._put(request, places)
        return places

    async def _get(self, request: str) -> list[Place] | None:
        key = hashlib.sha256(request.encode()).hexdigest()

        def job(store: Any) -> tuple[list[Any], datetime] | None:
            row = store.conn.execute(
                select(geocode_cache.c.places, geocode_cache.c.created_at).where(geocode_cache.c.key == key)
            ).first()
            return (row.places, row.created_at) if row is not None else None

        try:
            found = await self.db.run(job)
        except Exception:
            log.warning("geocoder cache unavailable", exc_info=True)
            return None
        if found is None:
            return None
        raw, created = found
        created = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
        if self.clock() - created > (self.ttl if raw else self.empty_ttl):
            return None
        return [Place(*item) for item in raw]

    async def _put(self, request: str, places: list[Place]) -> None:
        key = hashlib.sha256(request.encode()).hexdigest()
        now = self.clock()
        values = {
            "key": key,
            "request": request,
            "places": [[p.address, p.lat, p.lon, p.area] for p in places],
            "created_at": now,
        }

        def job(store: Any) -> None:
            from sqlalchemy.dialects import postgresql, sqlite  # here: postgresql imports all its drivers

            dialect = sqlite if store.is_sqlite else postgresql
            stmt = dialect.insert(geocode_cache).values(**values)
            store.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[geocode_cache.c.key],
                    set_={"places": stmt.excluded.places, "created_at": stmt.excluded.created_at},
                )
            )
            store.conn.execute(delete(geocode_cache).where(geocode_cache.c.created_at < now - self.ttl))

        try:
            await self.db.run(job)
        except Exception:
            log.warning("geocoder cache not written", exc_info=True)


# --- choosing one -------------------------------------------------------------------------------------------
GEOCODERS = ("nominatim", "yandex", "off")


def build_geocoder(
    kind: str,
    db: Any,
    *,
    nominatim_url: str = f"https://{PUBLIC_NOMINATIM}",
    yandex_key: str = "",
    contact: str = "",
) -> Geocoder | None:
    """The configured geocoder behind the database cache, or None for `off`. ValueError when misconfigured."""
    agent = user_agent(contact)
    if kind == "off":
        return None
    if kind == "nominatim":
        return CachedGeocoder(NominatimGeocoder(nominatim_url, agent), db)
    if kind == "yandex":
        if not yandex_key:
            raise ValueError("GEOCODER=yandex needs YANDEX_GEOCODER_KEY (or set GEOCODER=off)")
        return CachedGeocoder(YandexGeocoder(yandex_key, agent), db)
    raise ValueError(f"GEOCODER must be one of {', '.join(GEOCODERS)}, not {kind!r}")
