"""Fake geocoders on 127.0.0.1 for geopy's real clients: Nominatim's `/search` and `/reverse` (format=json, as
geopy asks), and Yandex's `/1.x/`. Modes: `ok`, `slow` (answers after `delay` seconds), `error` (HTTP 500),
`empty` (nothing found). Every request is recorded with its query parameters and User-Agent."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakePlace:
    lat: float
    lon: float
    road: str
    house: str = ""
    suburb: str = ""
    name: str = ""
    cls: str = "building"
    type: str = "house"
    en: str = ""  # the road in English

    def words(self) -> set[str]:
        return set(_words(" ".join((self.road, self.house, self.name, self.en))))

    def nominatim(self, language: str) -> dict[str, Any]:
        road = self.en if language == "en" and self.en else self.road
        address = {"road": road, "house_number": self.house, "suburb": self.suburb, "city": "Иркутск"}
        address = {k: v for k, v in address.items() if v}
        if self.cls == "boundary":
            address = {"city": self.name, "country": "Россия"}
        display = ", ".join(
            [*(x for x in (self.house, road, self.suburb) if x), "Иркутск", "Иркутская область", "Россия"]
        )
        return {
            "place_id": abs(hash((self.lat, self.lon))) % 10**8,
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
            "osm_type": "way",
            "osm_id": 1,
            "lat": f"{self.lat:.7f}",
            "lon": f"{self.lon:.7f}",
            "class": self.cls,
            "type": self.type,
            "place_rank": 30,
            "importance": 0.1,
            "addresstype": "building",
            "name": self.name,
            "display_name": display if self.cls != "boundary" else f"{self.name}, Россия",
            "address": address,
            "boundingbox": [
                f"{self.lat - 1e-4}",
                f"{self.lat + 1e-4}",
                f"{self.lon - 1e-4}",
                f"{self.lon + 1e-4}",
            ],
        }

    def yandex(self) -> dict[str, Any]:
        kind = "locality" if self.cls == "boundary" else "house"
        name = self.name if self.cls == "boundary" else ", ".join(x for x in (self.road, self.house) if x)
        components = [
            {"kind": "country", "name": "Россия"},
            {"kind": "locality", "name": "Иркутск"},
            *([{"kind": "district", "name": self.suburb}] if self.suburb else []),
            *([{"kind": "street", "name": self.road}] if self.road else []),
            *([{"kind": "house", "name": self.house}] if self.house else []),
        ]
        return {
            "GeoObject": {
                "metaDataProperty": {
                    "GeocoderMetaData": {
                        "precision": "exact",
                        "text": f"Россия, Иркутск, {name}",
                        "kind": kind,
                        "Address": {"country_code": "RU", "formatted": name, "Components": components},
                    }
                },
                "name": name,
                "description": "Иркутск, Россия",
                "Point": {"pos": f"{self.lon} {self.lat}"},
            }
        }


def _words(text: str) -> list[str]:
    stop = {"ул", "улица", "д", "дом", "st", "street"}
    return [w for w in re.findall(r"\w+", text.casefold()) if w not in stop]


LENINA_5 = FakePlace(52.2870, 104.2810, "улица Ленина", "5", "Правобережный округ", en="Lenin Street")
MARKSA_14 = FakePlace(52.2845, 104.2825, "улица Карла Маркса", "14", "Правобережный округ")
SOVETSKAYA_3_A = FakePlace(52.2790, 104.3000, "Советская улица", "3", "Октябрьский округ")
SOVETSKAYA_3_B = FakePlace(52.3300, 104.2300, "Советская улица", "3", "Ленинский округ")
SADOVAYA_7 = FakePlace(52.3900, 104.1300, "Садовая улица", "7", "Марково")  # in the city's box, not the city
MOSCOW_LENINA = FakePlace(55.7558, 37.6173, "улица Ленина", "5", "Тверской район")  # outside any viewbox
IRKUTSK = FakePlace(52.2978, 104.2964, "", name="Иркутск", cls="boundary", type="administrative")

PLACES = [LENINA_5, MARKSA_14, SOVETSKAYA_3_A, SOVETSKAYA_3_B, SADOVAYA_7, MOSCOW_LENINA, IRKUTSK]


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    k = math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(lat2 - lat1, (lon2 - lon1) * k) * 111_195


@dataclass
class FakeGeocoderServer:
    mode: str = "ok"
    delay: float = 2.0
    places: list[FakePlace] = field(default_factory=lambda: list(PLACES))
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    url: str = ""

    def count(self, path: str) -> int:
        return sum(1 for p, _q, _ua in self.requests if p == path)

    def last(self, path: str) -> dict[str, str]:
        return next(q for p, q, _ua in reversed(self.requests) if p == path)

    async def _gate(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.path, dict(request.query), request.headers.get("User-Agent", "")))
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "error":
            return web.Response(status=500, text="Internal Server Error")
        return None

    def _search(self, query: str, viewbox: str | None, limit: int) -> list[FakePlace]:
        wanted = set(_words(query))
        found = [p for p in self.places if wanted and wanted <= p.words()]
        if viewbox:
            west, south, east, north = (float(x) for x in viewbox.split(","))
            found = [p for p in found if south <= p.lat <= north and west <= p.lon <= east]
        return found[:limit] if self.mode != "empty" else []

    def _nearest(self, lat: float, lon: float) -> FakePlace | None:
        candidates = [p for p in self.places if p.cls != "boundary"]
        best = min(candidates, key=lambda p: metres(lat, lon, p.lat, p.lon))
        if self.mode == "empty" or metres(lat, lon, best.lat, best.lon) > 150:
            return None
        return best

    # --- Nominatim ----------------------------------------------------------------------------------------
    async def nominatim_search(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        q = request.query
        limit = int(q.get("limit", "10"))
        found = self._search(q.get("q", ""), q.get("viewbox") if q.get("bounded") == "1" else None, limit)
        return web.json_response([p.nominatim(q.get("accept-language", "ru")) for p in found])

    async def nominatim_reverse(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        q = request.query
        place = self._nearest(float(q["lat"]), float(q["lon"]))
        if place is None:
            return web.json_response({"error": "Unable to geocode"})
        return web.json_response(place.nominatim(q.get("accept-language", "ru")))

    # --- Yandex -------------------------------------------------------------------------------------------
    async def yandex(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        q = request.query
        if q.get("apikey") != "test-key":
            return web.json_response(
                {"statusCode": 403, "error": "Forbidden", "message": "Invalid key"}, status=403
            )
        geocode = q.get("geocode", "")
        limit = int(q.get("results", "10"))
        point = re.fullmatch(r"\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*", geocode)
        if point:  # reverse: "lon,lat"
            place = self._nearest(float(point.group(2)), float(point.group(1)))
            found = [place] if place is not None else []
        else:
            viewbox = None
            if q.get("rspn") == "1" and "bbox" in q:
                (west, south), (east, north) = (c.split(",") for c in q["bbox"].split("~"))
                viewbox = f"{west},{south},{east},{north}"
            found = self._search(geocode, viewbox, limit)
        return web.json_response(
            {
                "response": {
                    "GeoObjectCollection": {
                        "metaDataProperty": {
                            "GeocoderResponseMetaData": {"request": geocode, "found": str(len(found))}
                        },
                        "featureMember": [p.yandex() for p in found],
                    }
                }
            }
        )


async def serve_fake_geocoder() -> AsyncIterator[FakeGeocoderServer]:
    fake = FakeGeocoderServer()
    app = web.Application()
    app.router.add_get("/search", fake.nominatim_search)
    app.router.add_get("/reverse", fake.nominatim_reverse)
    app.router.add_get("/1.x/", fake.yandex)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
