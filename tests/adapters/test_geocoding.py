"""The geocoder adapters: geopy's real Nominatim and Yandex clients against our fake servers on 127.0.0.1, the
timeout, the public server's rate limit, and the database cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from core.engine import Engine
from core.geo import Geocoded, GeocoderError, Lookup, Place, city_bounds, run_lookup
from storage.geocoding import (
    CachedGeocoder,
    NominatimGeocoder,
    RequestSlots,
    YandexGeocoder,
    build_geocoder,
    user_agent,
)
from tests.geo_fakes import FakeGeocoderServer, serve_fake_geocoder

AGENT = user_agent("https://city.example/bot")


@pytest.fixture
async def fake_geo() -> AsyncIterator[FakeGeocoderServer]:
    async for server in serve_fake_geocoder():
        yield server


def nominatim(fake: FakeGeocoderServer, **kwargs: object) -> NominatimGeocoder:
    return NominatimGeocoder(fake.url, AGENT, **kwargs)  # type: ignore[arg-type]


async def test_reverse_asks_nominatim_like_geopy_does_and_shortens_the_address(
    fake_geo: FakeGeocoderServer,
) -> None:
    place = await nominatim(fake_geo).reverse(52.28702, 104.28101, "ru")
    assert place == Place("улица Ленина, 5", 52.287, 104.281, "Правобережный округ")
    query = fake_geo.last("/reverse")
    assert query["format"] == "json" and query["addressdetails"] == "1" and query["zoom"] == "18"
    assert query["accept-language"] == "ru"
    assert (float(query["lat"]), float(query["lon"])) == (52.28702, 104.28101)
    agent = fake_geo.requests[-1][2]
    assert agent.startswith("otklik/") and "+https://city.example/bot" in agent


async def test_search_is_bounded_to_the_city_in_the_users_language(
    fake_geo: FakeGeocoderServer, demo
) -> None:  # type: ignore[no-untyped-def]
    bounds = city_bounds(demo)
    found = await nominatim(fake_geo).search("ул. Ленина, 5", "en", bounds, 5)
    assert [p.address for p in found] == ["Lenin Street, 5"]  # the Moscow one is outside the viewbox
    query = fake_geo.last("/search")
    assert query["viewbox"] == "104.12,52.2,104.45,52.4" and query["bounded"] == "1"
    assert query["countrycodes"] == "ru" and query["limit"] == "5" and query["accept-language"] == "en"


async def test_the_city_itself_is_not_a_place(fake_geo: FakeGeocoderServer, demo) -> None:  # type: ignore[no-untyped-def]
    assert await nominatim(fake_geo).search("Иркутск", "ru", city_bounds(demo), 5) == []


async def test_nothing_found(fake_geo: FakeGeocoderServer, demo) -> None:  # type: ignore[no-untyped-def]
    fake_geo.mode = "empty"
    assert await nominatim(fake_geo).search("улица Ленина 5", "ru", city_bounds(demo), 5) == []
    assert await nominatim(fake_geo).reverse(52.2870, 104.2810, "ru") is None


async def test_server_errors_and_slowness_are_geocoder_errors(fake_geo: FakeGeocoderServer, demo) -> None:  # type: ignore[no-untyped-def]
    fake_geo.mode = "error"
    with pytest.raises(GeocoderError):
        await nominatim(fake_geo).reverse(52.2870, 104.2810, "ru")
    with pytest.raises(GeocoderError):
        await nominatim(fake_geo).search("улица Ленина 5", "ru", city_bounds(demo), 5)
    fake_geo.mode, fake_geo.delay = "slow", 1.0
    with pytest.raises(GeocoderError):
        await nominatim(fake_geo, timeout=0.2).reverse(52.2870, 104.2810, "ru")


async def test_a_lookup_never_waits_longer_than_its_timeout(fake_geo: FakeGeocoderServer, demo) -> None:  # type: ignore[no-untyped-def]
    fake_geo.mode, fake_geo.delay = "slow", 2.0
    started = time.monotonic()
    answer = await run_lookup(nominatim(fake_geo), Lookup("x", "search", "ru", query="Ленина 5"), demo, 0.3)
    assert answer == Geocoded("x", "search", ok=False)
    assert time.monotonic() - started < 1.0
    off = await run_lookup(None, Lookup("y", "reverse", "ru", lat=52.287, lon=104.281), demo)
    assert off == Geocoded("y", "reverse", ok=False)


async def test_public_nominatim_gets_at_most_one_request_per_second() -> None:
    assert NominatimGeocoder("https://nominatim.openstreetmap.org", AGENT).limiter.interval == 1.0
    assert NominatimGeocoder("http://127.0.0.1:8088", AGENT).limiter.interval == 0.0
    own = NominatimGeocoder("https://geo.city.example:8443/nominatim/", AGENT)
    assert (own.scheme, own.domain) == ("https", "geo.city.example:8443/nominatim")

    limiter = RequestSlots(0.2, max_queue=0.5)
    started = time.monotonic()
    moments = []

    async def one() -> None:
        await limiter.wait()
        moments.append(time.monotonic() - started)

    results = await asyncio.gather(one(), one(), one(), one(), return_exceptions=True)
    assert [round(m, 1) for m in sorted(moments)] == [0.0, 0.2, 0.4]
    # the fourth would have had to queue 0.6 s, past max_queue: it fails at once instead of stacking up
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "NoneType", "GeocoderError"]


async def test_yandex_adapter(fake_geo: FakeGeocoderServer, demo) -> None:  # type: ignore[no-untyped-def]
    host = fake_geo.url.removeprefix("http://")
    yandex = YandexGeocoder("test-key", AGENT, domain=host, scheme="http")
    place = await yandex.reverse(52.2870, 104.2810, "en")
    assert place == Place("улица Ленина, 5", 52.287, 104.281, "Правобережный округ")
    query = fake_geo.last("/1.x/")
    assert query["geocode"] == "104.281,52.287" and query["kind"] == "house" and query["lang"] == "en_RU"
    assert query["apikey"] == "test-key" and query["format"] == "json"

    found = await yandex.search("Советская 3", "ru", city_bounds(demo), 5)
    assert [(p.address, p.area) for p in found] == [
        ("Советская улица, 3", "Октябрьский округ"),
        ("Советская улица, 3", "Ленинский округ"),
    ]
    query = fake_geo.last("/1.x/")
    assert query["bbox"] == "104.12,52.2~104.45,52.4" and query["rspn"] == "1" and query["results"] == "5"
    assert await yandex.search("Иркутск", "ru", city_bounds(demo), 5) == []  # a locality is not a place

    with pytest.raises(GeocoderError):
        await YandexGeocoder("wrong", AGENT, domain=host, scheme="http").reverse(52.287, 104.281, "ru")


def test_choosing_a_geocoder(db) -> None:  # type: ignore[no-untyped-def]
    assert build_geocoder("off", db) is None
    chosen = build_geocoder("nominatim", db, nominatim_url="http://127.0.0.1:1")
    assert isinstance(chosen, CachedGeocoder) and isinstance(chosen.inner, NominatimGeocoder)
    assert isinstance(build_geocoder("yandex", db, yandex_key="k"), CachedGeocoder)
    with pytest.raises(ValueError, match="YANDEX_GEOCODER_KEY"):
        build_geocoder("yandex", db)


async def test_cache_answers_a_repeated_lookup_without_asking_the_server(
    fake_geo: FakeGeocoderServer, engine: Engine
) -> None:
    cached = CachedGeocoder(nominatim(fake_geo), engine.db)
    bounds = city_bounds(engine.municipality)
    first = await cached.search("ул. Советская, 3", "ru", bounds, 5)
    second = await cached.search("ул.  советская, 3", "ru", bounds, 5)  # the same request, typed differently
    assert first == second and len(first) == 2
    assert fake_geo.count("/search") == 1
    assert await cached.reverse(52.2870, 104.2810, "ru") == await cached.reverse(52.287001, 104.281001, "ru")
    assert fake_geo.count("/reverse") == 1
    # "nothing there" is cached too, for a shorter time
    assert await cached.search("Несуществующая улица 99", "ru", bounds, 5) == []
    assert await cached.search("Несуществующая улица 99", "ru", bounds, 5) == []
    assert fake_geo.count("/search") == 2
    later = CachedGeocoder(
        nominatim(fake_geo), engine.db, clock=lambda: datetime.now(UTC) + timedelta(days=2)
    )
    assert await later.search("Несуществующая улица 99", "ru", bounds, 5) == []
    assert await later.search("ул. Советская, 3", "ru", bounds, 5) == first
    assert fake_geo.count("/search") == 3  # the empty answer expired, the found one did not


async def test_failures_are_not_cached(fake_geo: FakeGeocoderServer, engine: Engine) -> None:
    cached = CachedGeocoder(nominatim(fake_geo), engine.db)
    fake_geo.mode = "error"
    with pytest.raises(GeocoderError):
        await cached.reverse(52.2870, 104.2810, "ru")
    fake_geo.mode = "ok"
    assert (await cached.reverse(52.2870, 104.2810, "ru")) is not None
    assert fake_geo.count("/reverse") == 2
