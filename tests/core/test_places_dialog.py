"""Transcripts of the place step with a geocoder: geopy's real Nominatim client against our fake Nominatim,
through the real engine and storage. Pins become addresses, typed addresses become points, and a geocoder that
is slow, failing or off never loses a report."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from core.domain.routing import route
from core.engine import Engine
from core.geo import Geocoded, Place
from core.messages import Incoming, Location, Reply
from storage.geocoding import CachedGeocoder, NominatimGeocoder, user_agent
from tests.geo_fakes import LENINA_5, SADOVAYA_7, SOVETSKAYA_3_A, FakeGeocoderServer, serve_fake_geocoder
from tests.support import Resident

CENTRE = (52.2870, 104.2810)  # улица Ленина, 5
MOSCOW = (55.7558, 37.6173)


@pytest.fixture
async def fake_geo() -> AsyncIterator[FakeGeocoderServer]:
    async for server in serve_fake_geocoder():
        yield server


@pytest.fixture
def geo_engine(engine: Engine, fake_geo: FakeGeocoderServer) -> Engine:
    """The test engine with the production geocoder stack (cache + Nominatim) pointed at the fake."""
    geocoder = CachedGeocoder(NominatimGeocoder(fake_geo.url, user_agent()), engine.db)
    return Engine(engine.db, engine.municipality, clock=engine.clock, geocoder=geocoder, geocode_timeout=0.5)


async def to_place_step(r: Resident, category: str = "lighting") -> None:
    await r.command("new")
    await r.press(f"cat:{category}")
    await r.press(r.buttons()[0][1])  # its first subcategory
    await r.expect("report.location.ask")


async def finish(r: Resident) -> int:
    await r.say("Фонарь не горит уже неделю, на улице темно.")
    await r.expect("report.photos.ask")
    await r.press("photos:done")
    await r.expect("report.review.ask")
    await r.press("review:submit")
    await r.expect("report.submitted", "menu.prompt")
    return int(re.search(r"(?:№|No\.) (\d+)", r.replies[0].text).group(1))  # type: ignore[union-attr]


async def ticket(engine: Engine, number: int):  # type: ignore[no-untyped-def]
    found = await engine.db.run(lambda store: store.tickets.get(number))
    assert found is not None
    return found


async def test_pin_is_shown_as_its_address_and_stored_with_it(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.pin(*CENTRE)
    await r.expect("report.place.confirm_pin")
    assert "улица Ленина, 5" in r.replies[0].text
    await r.press("place:yes")
    await r.expect("report.description.ask")
    t = await ticket(geo_engine, await finish(r))
    assert (t.lat, t.lon, t.address, t.location_source) == (*CENTRE, "улица Ленина, 5", "pin")


async def test_pin_with_a_wrong_address_keeps_the_point_and_takes_the_typed_one(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.pin(*CENTRE)
    await r.press("place:no")
    await r.expect("report.place.pin_address")
    await r.say("ул. Ленина, 7, во дворе")
    await r.expect("report.description.ask")
    t = await ticket(geo_engine, await finish(r))
    assert (t.lat, t.lon, t.address, t.location_source) == (*CENTRE, "ул. Ленина, 7, во дворе", "pin")


async def test_pin_where_the_geocoder_knows_no_address_goes_on_with_the_point(geo_engine: Engine) -> None:
    r = Resident(geo_engine, language="en")
    await to_place_step(r)
    await r.pin(52.3500, 104.3500)  # in the city, nothing within 150 m in the fake's data
    await r.expect("report.description.ask")
    t = await ticket(geo_engine, await finish(r))
    assert (t.lat, t.lon, t.address, t.location_source) == (52.35, 104.35, "", "pin")


async def test_typed_address_with_several_candidates(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.say("ул. Советская, 3")
    await r.expect("report.place.choose")
    labels = [label for label, data in r.buttons() if data.startswith("place:pick:")]
    assert labels == ["Советская улица, 3 (Октябрьский округ)", "Советская улица, 3 (Ленинский округ)"]
    await r.press(labels[0])
    await r.expect("report.place.confirm_pick")
    assert r.replies[0].location is not None
    assert (r.replies[0].location.lat, r.replies[0].location.lon) == (SOVETSKAYA_3_A.lat, SOVETSKAYA_3_A.lon)
    await r.press("place:no")  # not that one: back to the list
    await r.expect("report.place.choose")
    await r.press("place:pick:0")
    await r.press("place:yes")
    await r.expect("report.description.ask")
    t = await ticket(geo_engine, await finish(r))
    assert (t.lat, t.lon) == (SOVETSKAYA_3_A.lat, SOVETSKAYA_3_A.lon)
    assert (t.address, t.location_source) == ("Советская улица, 3", "geocoded")
    # a point means the ticket is routed by area, not left to the dispatcher
    assert t.organisation == route(geo_engine.municipality, t.subcategory or t.category, t.lat, t.lon)
    assert t.organisation != geo_engine.municipality.dispatch


async def test_typed_address_with_one_candidate_is_confirmed_as_a_pin(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.say("Карла Маркса 14")
    await r.expect("report.place.confirm_pick")
    assert "улица Карла Маркса, 14" in r.replies[0].text and r.replies[0].location is not None
    await r.press("place:no")  # not it, and there is no other: what now?
    await r.expect("report.place.not_found")
    await r.press("place:keep")
    await r.expect("report.description.ask")
    t = await ticket(geo_engine, await finish(r))
    assert (t.lat, t.address, t.location_source) == (None, "Карла Маркса 14", "typed")


async def test_address_not_found_offers_retype_pin_or_keep(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.say("Несуществующий переулок, 99")
    await r.expect("report.place.not_found")
    assert r.replies[0].ask_location and "place:keep" in [d for _, d in r.buttons()]
    await r.say("Ленина 5")  # retyped: found
    await r.expect("report.place.confirm_pick")
    await r.send(button="place:pick:3")  # a button of no list on screen
    await r.expect("button.stale", "report.place.confirm_pick")
    await r.command("cancel")
    await to_place_step(r)
    await r.say("Несуществующий переулок, 99")
    await r.pin(*CENTRE)  # or a pin after all
    await r.expect("report.place.confirm_pin")


async def test_pick_button_with_a_unicode_digit_is_stale(geo_engine: Engine) -> None:
    """A forged `place:pick:²` raised ValueError ("²".isdigit() is true, int("²") is not)."""
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.say("ул. Советская, 3")
    await r.expect("report.place.choose")
    for index in ("²", "١", "-1", "2", "99999999999999999999", ""):
        await r.send(button=f"place:pick:{index}")
        await r.expect("button.stale", "report.place.choose")
    await r.send(button="place:pick:1")
    await r.expect("report.place.confirm_pick")


async def test_candidates_outside_the_city_get_a_clear_answer_and_a_reask(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.say("Садовая 7")  # inside the city's bounding box, outside its boundary
    await r.expect("report.place.outside", "report.location.ask")
    assert "Садовая 7" in r.replies[0].text
    assert not geo_engine.municipality.contains(SADOVAYA_7.lat, SADOVAYA_7.lon)
    await r.pin(*MOSCOW)  # and a pin outside, as before
    await r.expect("report.location.outside", "report.location.ask")


@pytest.mark.parametrize("mode", ["error", "slow"])
async def test_geocoder_down_keeps_the_typed_address_for_the_dispatcher(
    geo_engine: Engine, fake_geo: FakeGeocoderServer, mode: str
) -> None:
    fake_geo.mode = mode
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.say("ул. Ленина, 5")
    await r.expect("report.place.unverified", "report.description.ask")
    t = await ticket(geo_engine, await finish(r))
    assert (t.lat, t.lon, t.address, t.location_source) == (None, None, "ул. Ленина, 5", "typed_unverified")
    assert t.organisation == geo_engine.municipality.dispatch and t.status.value == "new"
    # a pin goes through with its point alone
    await to_place_step(r)
    await r.pin(*CENTRE)
    await r.expect("report.description.ask")


async def test_geocoder_off(engine: Engine) -> None:
    assert engine.geocoder is None
    r = Resident(engine)
    await to_place_step(r)
    await r.say("ул. Ленина, 5")
    await r.expect("report.description.ask")
    t = await ticket(engine, await finish(r))
    assert (t.lat, t.address, t.location_source) == (None, "ул. Ленина, 5", "typed")


async def test_a_late_or_superseded_answer_is_dropped(geo_engine: Engine) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    stale = Geocoded("not-the-pending-one", "reverse", ok=True, places=(Place("улица Ленина, 5", *CENTRE),))
    assert await geo_engine.handle(Incoming(r.chat, "late-1", "ru", geocoded=stale)) == []
    await r.command("cancel")  # no report at all any more
    assert await geo_engine.handle(Incoming(r.chat, "late-2", "ru", geocoded=stale)) == []
    state = await geo_engine.db.run(lambda store: store.dialogs.load(r.chat))
    assert state is not None and "flow" not in state


async def test_a_repeated_delivery_asks_the_geocoder_once(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    r = Resident(geo_engine)
    await to_place_step(r)
    await r.pin(*CENTRE)
    before = fake_geo.count("/reverse")
    pin = Incoming(r.chat, "delivery-7", "ru", location=Location(52.2871, 104.2811))
    first = await geo_engine.handle(pin)
    again = await geo_engine.handle(pin)
    assert len(first) == 1 and again == first  # the repeat only asks the current question again
    assert fake_geo.count("/reverse") == before + 1


async def test_the_same_lookup_twice_is_answered_from_the_cache(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    for chat in ("1", "2"):
        r = Resident(geo_engine, chat_id=chat)
        await to_place_step(r)
        await r.pin(LENINA_5.lat, LENINA_5.lon)
        await r.expect("report.place.confirm_pin")
    assert fake_geo.count("/reverse") == 1


# --- staff get the city's language, the resident their own -----------------------------
async def test_english_residents_pin_is_stored_in_the_citys_language_and_shown_in_english(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    r = Resident(geo_engine, language="en")
    await to_place_step(r)
    await r.pin(*CENTRE)
    await r.expect("report.place.confirm_pin")
    assert "Lenin Street, 5" in r.replies[0].text
    assert sorted(q["accept-language"] for p, q, _ua in fake_geo.requests if p == "/reverse") == ["en", "ru"]
    await r.press("place:yes")
    await r.say("The street light has been off for a week, it is dark.")
    await r.press("photos:done")
    await r.expect("report.review.ask")
    assert "Place: Lenin Street, 5\n" in r.replies[0].text
    t = await ticket(geo_engine, await finish_submitted(r))
    assert (t.lat, t.lon, t.address, t.location_source) == (*CENTRE, "улица Ленина, 5", "pin")


async def test_english_residents_typed_address_is_stored_in_the_citys_language(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    r = Resident(geo_engine, language="en")
    await to_place_step(r)
    await r.say("Lenin Street 5")
    await r.expect("report.place.confirm_pick")
    assert "Lenin Street, 5" in r.replies[0].text
    await r.press("place:yes")
    await r.say("The street light has been off for a week, it is dark.")
    await r.press("photos:done")
    t = await ticket(geo_engine, await finish_submitted(r))
    assert (t.address, t.location_source) == ("улица Ленина, 5", "geocoded")
    assert {q["accept-language"] for p, q, _ua in fake_geo.requests if p == "/search"} == {"en", "ru"}


async def test_a_russian_resident_needs_one_lookup_and_the_cache_keeps_languages_apart(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    russian = Resident(geo_engine, chat_id="1")
    await to_place_step(russian)
    await russian.pin(*CENTRE)
    assert "улица Ленина, 5" in russian.replies[0].text and fake_geo.count("/reverse") == 1
    english = Resident(geo_engine, chat_id="2", language="en")
    await to_place_step(english)
    await english.pin(*CENTRE)
    assert "Lenin Street, 5" in english.replies[0].text
    assert fake_geo.count("/reverse") == 2  # only the English answer was new; the Russian one was cached


async def test_when_the_english_lookup_fails_the_citys_address_is_shown(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    from core.geo import Lookup, run_lookup

    class HalfDown:
        async def reverse(self, lat: float, lon: float, language: str) -> Place | None:
            if language == "en":
                raise TimeoutError
            return Place("улица Ленина, 5", lat, lon)

        async def search(self, *args: object) -> list[Place]:
            raise AssertionError("not asked")

    lookup = Lookup("x", "reverse", "en", lat=CENTRE[0], lon=CENTRE[1], city_language="ru")
    answer = await run_lookup(HalfDown(), lookup, geo_engine.municipality)
    assert answer.ok and answer.places == (Place("улица Ленина, 5", *CENTRE),)


async def finish_submitted(r: Resident) -> int:
    await r.press("review:submit")
    await r.expect("report.submitted", "menu.prompt")
    return int(re.search(r"(?:№|No\.) (\d+)", r.replies[0].text).group(1))  # type: ignore[union-attr]


# --- a slow lookup is announced, not met with silence ------------------------------------
def slow_engine(engine: Engine, fake_geo: FakeGeocoderServer, progress_after: float) -> Engine:
    geocoder = CachedGeocoder(NominatimGeocoder(fake_geo.url, user_agent()), engine.db)
    return Engine(
        engine.db,
        engine.municipality,
        clock=engine.clock,
        geocoder=geocoder,
        geocode_timeout=3.0,
        progress_after=progress_after,
    )


async def test_a_slow_lookup_tells_the_resident_the_address_is_being_checked_then_answers(
    engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    fake_geo.mode, fake_geo.delay = "slow", 0.4
    slow = slow_engine(engine, fake_geo, progress_after=0.05)
    r = Resident(slow, language="en")
    await to_place_step(r)
    heard: list[str] = []

    async def progress(notice: Reply) -> None:
        heard.append(f"notice: {notice.text}")

    pin = Incoming(r.chat, "slow-pin", "en", location=Location(*CENTRE))
    replies = await slow.handle(pin, progress=progress)
    heard.extend(f"answer: {reply.text}" for reply in replies)
    assert heard == ["notice: Checking the address…", "answer: Address: Lenin Street, 5. Is this right?"]


async def test_a_quick_lookup_needs_no_notice_and_a_failing_notice_loses_nothing(
    engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    quick = slow_engine(engine, fake_geo, progress_after=2.0)
    r = Resident(quick)
    await to_place_step(r)

    async def broken(notice: Reply) -> None:
        raise RuntimeError("the platform is down")

    replies = await quick.handle(Incoming(r.chat, "quick-pin", "ru", location=Location(*CENTRE)), broken)
    assert [reply.text for reply in replies] == ["Адрес: улица Ленина, 5. Верно?"]
    fake_geo.mode, fake_geo.delay = "slow", 0.3
    quick.progress_after = 0.05
    other = Resident(quick, chat_id="2")
    await to_place_step(other)
    replies = await quick.handle(Incoming(other.chat, "slow-text", "ru", text="Карла Маркса 14"), broken)
    assert replies[0].text.startswith("Это здесь: улица Карла Маркса, 14?")
