"""The dispatcher places a ticket whose typed address could not be checked — a pin or a
typed address, geocoded as for residents (geopy's Nominatim client against the fake Nominatim) —, confirms,
the ticket's place changes with a `place` event in its history, and routing follows, with the organisation
routing finds for the new point first."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from core.domain.tickets import Status
from core.engine import Engine
from core.messages import Reply
from storage.geocoding import CachedGeocoder, NominatimGeocoder, user_agent
from tests.geo_fakes import FakeGeocoderServer, serve_fake_geocoder
from tests.support import Resident, Staff, delivered, submit_report, text_is

CENTRE = (52.2870, 104.2810)  # улица Ленина, 5 in the fake geocoder


@pytest.fixture
async def fake_geo() -> AsyncIterator[FakeGeocoderServer]:
    async for server in serve_fake_geocoder():
        yield server


@pytest.fixture
def geo_engine(engine: Engine, fake_geo: FakeGeocoderServer) -> Engine:
    geocoder = CachedGeocoder(NominatimGeocoder(fake_geo.url, user_agent()), engine.db)
    return Engine(engine.db, engine.municipality, clock=engine.clock, geocoder=geocoder, geocode_timeout=0.5)


def buttons(reply: Reply) -> list[str]:
    return [data for row in reply.buttons for _label, data in row]


async def typed_report(r: Resident, address: str = "ул. Ленина, 5") -> int:
    """A pothole reported with a typed address (what the geocoder makes of it depends on the test)."""
    await r.command("new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.say(address)
    if any(data == "place:keep" for _l, data in r.buttons()):
        await r.press("place:keep")
    await r.say("Глубокая яма на проезжей части у остановки.")
    await r.press("photos:done")
    await r.press("review:submit")
    await r.expect("report.submitted", "menu.prompt")
    return int(r.replies[0].text.split("№ ")[1].split()[0])


async def ticket(engine: Engine, number: int):  # type: ignore[no-untyped-def]
    return await engine.db.run(lambda store: store.tickets.get(number))


async def test_dispatcher_places_an_unchecked_address_by_typing_it_then_routes(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    d = Staff(geo_engine, "d1", name="Диспетчер Мария")
    await d.join("dispatch", "dispatcher")
    roads = Staff(geo_engine, "s2", name="Дороги")
    await roads.join("roads_service")
    r = Resident(geo_engine)
    fake_geo.mode = "error"  # the geocoder is down when the resident reports
    number = await typed_report(r, "ул. Ленина, 5, у остановки")
    before = await ticket(geo_engine, number)
    assert (before.lat, before.location_source, before.organisation) == (None, "typed_unverified", "dispatch")

    [card] = await delivered(geo_engine, d)
    assert f"dp:place:{number}" in buttons(card)
    fake_geo.mode = "ok"
    await d.send(button=f"dp:place:{number}")
    await d.expect("dispatch.place.ask")
    assert "ул. Ленина, 5, у остановки" in d.replies[0].text and d.replies[0].ask_location
    await d.say("ул. Ленина, 5")
    await d.expect("report.place.confirm_pick")
    await d.press("place:yes")
    await d.expect("dispatch.place.confirm")
    assert d.replies[0].location is not None and "улица Ленина, 5" in d.replies[0].text
    await d.press("dpp:save")
    await d.expect("dispatch.place.saved", "dispatch.route_suggested")
    routing = d.replies[1]
    assert buttons(routing)[0] == f"dp:to:{number}:roads_service"
    assert routing.buttons[0][0][0].startswith("⭐ ") and buttons(routing)[-1] == f"dp:place:{number}"

    placed = await ticket(geo_engine, number)
    assert (placed.lat, placed.lon) == CENTRE
    assert (placed.address, placed.location_source) == ("улица Ленина, 5", "geocoded")
    assert placed.status == Status.NEW and placed.organisation == "dispatch"
    event = placed.events[-1]
    assert event.action.value == "place" and event.actor.startswith("staff:")
    assert event.data["name"] == "Диспетчер Мария"
    assert event.data["from_address"] == "ул. Ленина, 5, у остановки"
    assert event.data["address"] == "улица Ленина, 5" and event.comment == "улица Ленина, 5"

    await d.press(f"dp:to:{number}:roads_service")
    await d.expect("dispatch.routed")
    assert (await ticket(geo_engine, number)).organisation == "roads_service"
    [routed] = await delivered(geo_engine, roads)
    assert text_is(routed, "staff.card.text") and "улица Ленина, 5" in routed.text
    await r.send(button=f"ticket:{number}")
    assert "место уточнено диспетчером: улица Ленина, 5" in r.replies[0].text


async def test_geocoder_down_the_dispatcher_sends_a_pin(
    geo_engine: Engine, fake_geo: FakeGeocoderServer
) -> None:
    d = Staff(geo_engine, "d1")
    await d.join("dispatch", "dispatcher")
    fake_geo.mode = "error"
    number = await typed_report(Resident(geo_engine))
    await d.send(button=f"dp:place:{number}")
    await d.say("ул. Ленина, 5")  # cannot be checked: not kept as typed, a point is asked for
    await d.expect("dispatch.place.unverified", "dispatch.place.ask")
    await d.pin(52.2871, 104.2811)  # no address for it either: the point alone
    await d.expect("dispatch.place.confirm")
    await d.press("dpp:again")
    await d.expect("dispatch.place.ask")
    await d.pin(*CENTRE)
    await d.press("dpp:save")
    await d.expect("dispatch.place.saved", "dispatch.route_suggested")
    placed = await ticket(geo_engine, number)
    assert (placed.lat, placed.lon, placed.address, placed.location_source) == (*CENTRE, "", "pin")


async def test_without_a_geocoder_a_pin_is_needed_and_cancel_changes_nothing(engine: Engine) -> None:
    d = Staff(engine, "d1", language="en")
    await d.join("dispatch", "dispatcher")
    number = await typed_report(Resident(engine))
    assert (await ticket(engine, number)).location_source == "typed"
    await d.send(button=f"dp:route:{number}")
    await d.expect("dispatch.route_ask")  # nothing to suggest without a point
    await d.press(f"dp:place:{number}")
    await d.say("Lenin Street 5")
    await d.expect("dispatch.place.no_geocoder", "dispatch.place.ask")
    await d.pin(55.7558, 37.6173)  # Moscow
    await d.expect("report.location.outside", "dispatch.place.ask")
    await d.pin(*CENTRE)
    await d.expect("dispatch.place.confirm")
    await d.command("cancel")
    await d.expect("dispatch.place.cancelled")
    unchanged = await ticket(engine, number)
    assert unchanged.lat is None and [e.action.value for e in unchanged.events] == ["create"]


async def test_only_dispatchers_set_the_place(engine: Engine) -> None:
    s = Staff(engine)
    await s.join("roads_service")
    r = Resident(engine)
    number = await typed_report(r)
    await s.send(button=f"dp:place:{number}")
    await s.expect("staff.foreign")  # the dispatcher's ticket
    mine = await submit_report(Resident(engine, "7"))  # a pothole with a pin: roads_service's ticket
    await s.send(button=f"dp:place:{mine}")
    await s.expect("dispatch.only")
    await r.send(button=f"dp:place:{number}")
    await r.expect("staff.only", "menu.prompt")


@pytest.mark.e2e
def test_dispatcher_places_and_routes_in_the_console(otklik) -> None:  # type: ignore[no-untyped-def]
    report = "/start\n1\nДороги\n1\nул. Ленина, 5\nГлубокая яма у остановки, объезжают.\n1\n1\n"
    otklik("chat", "--user", "resident", stdin=report)  # GEOCODER=off: the typed address is kept
    assert json.loads(otklik("tickets", "show", "1", "--json"))["organisation"] == "dispatch"
    code = json.loads(otklik("staff", "invite", "dispatch", "--json"))["code"]
    script = [f"/staff {code}", "/ticket 1", "Указать место", "/loc 52.2870 104.2810", "Сохранить", "1"]
    out = otklik("chat", "--user", "maria", "--name", "Мария", stdin="\n".join(script) + "\n")
    assert "Место обращения № 1 сохранено" in out
    assert "По категории и месту подходит: МКУ «Дорожная служба»" in out
    assert "Обращение № 1 передано исполнителю: МКУ «Дорожная служба»" in out
    shown = json.loads(otklik("tickets", "show", "1", "--json"))
    assert (shown["lat"], shown["lon"], shown["organisation"]) == (52.287, 104.281, "roads_service")
    assert [e["action"] for e in shown["events"]] == ["create", "place", "assign"]
    assert shown["events"][1]["data"]["name"] == "Мария"
