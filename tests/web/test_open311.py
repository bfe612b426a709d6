"""Open311 GeoReport v2 through the real HTTP server over the test engine: every endpoint in both formats,
POST filing a routed ticket through the report dialog's own core function, filters, the updates extension,
the spec's errors, keys and limits, and personal data that never comes back out. Also driven by an existing
client library from the package registry (`georeport`)."""

from __future__ import annotations

import asyncio
import json
import re
import string
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.app import App
from core import open311
from core.change import Tx
from core.domain.tickets import Action, Status
from core.engine import Engine
from core.lifecycle import apply
from core.messages import ChatRef
from core.ports import NewTicket
from core.texts import LANGUAGES, catalogue, forms
from storage.database import Database
from storage.geocoding import CachedGeocoder, NominatimGeocoder, user_agent
from storage.photos import PhotoStore
from tests.fakes import serve
from tests.geo_fakes import LENINA_5, FakeGeocoderServer, serve_fake_geocoder
from tests.support import Staff, delivered, stored_photo
from web.open311.limits import RateLimiter
from web.open311.parsing import public_link
from web.server import build_http

CENTRE = ("52.2870", "104.2810")
MOSCOW = ("55.7558", "37.6173")
BASE = "/open311/v2"
PERSON = {
    "email": "anna.secret@example.org",
    "first_name": "Анна-Секретная",
    "last_name": "Личностева",
    "phone": "+7 999 123-45-67",
    "device_id": "device-7c1f0e",
    "account_id": "account-42-private",
}
REQUEST_FIELDS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
]  # fmt: skip
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]


async def new_key(app: App, name: str = "partner", *, can_write: bool = True, rate: int = 1000) -> str:
    now = app.engine.clock()
    return await app.db.run(
        lambda uow: open311.create_key(uow, name, can_write=can_write, rate_per_minute=rate, now=now)
    )


class Client:
    """aiohttp against the shared server: answers as (status, parsed body, headers)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base + BASE

    async def get(
        self, path: str, headers: dict[str, str] | None = None, **params: str
    ) -> tuple[int, Any, Any]:
        async with self.session.get(self.base + path, params=params, headers=headers) as response:
            return response.status, _parse(path, await response.read(), response), response.headers

    async def post(self, fmt: str = "json", data: Any = None, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.session.post(f"{self.base}/requests.{fmt}", data=data, **kwargs) as response:
            return response.status, _parse(fmt, await response.read(), response), response.headers

    async def raw(self, path: str, **params: str) -> bytes:
        async with self.session.get(self.base + path, params=params) as response:
            return await response.read()


def _parse(path: str, body: bytes, response: aiohttp.ClientResponse) -> Any:
    if path.endswith("xml"):
        assert response.content_type == "text/xml" and response.charset == "utf-8"
        assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
        return ET.fromstring(body)  # well-formed, or this raises
    assert response.content_type == "application/json" and response.charset == "utf-8"
    return json.loads(body)


@pytest.fixture
async def client(http: str) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, http)


def report(key: str, **fields: str | None) -> dict[str, str]:
    """A valid filing form; a field given as None is left out."""
    data: dict[str, str | None] = {
        "api_key": key,
        "service_code": "roads.pothole",
        "lat": CENTRE[0],
        "long": CENTRE[1],
        "description": "Глубокая яма на проезжей части у остановки.",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def codes_of(doc: Any) -> list[int]:
    """The spec's error document in either format → its codes."""
    if isinstance(doc, ET.Element):
        assert doc.tag == "errors"
        for error in doc:
            assert error.tag == "error" and [c.tag for c in error] == ["code", "description"]
            assert error.findtext("description")
        return [int(e.findtext("code") or 0) for e in doc]
    assert isinstance(doc, list) and doc and all(set(e) == {"code", "description"} for e in doc)
    return [e["code"] for e in doc]


# --- discovery and services -------------------------------------------------------------------------------
async def test_discovery_in_both_formats(client: Client) -> None:
    status, doc, _ = await client.get("/discovery.json")
    assert status == 200
    assert set(doc) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = doc["endpoints"]
    assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert endpoint["changeset"].endswith("+08:00")  # the city's offset
    status, root, _ = await client.get("/discovery.xml")
    assert status == 200 and root.tag == "discovery"
    assert [c.tag for c in root] == ["changeset", "contact", "key_service", "endpoints"]
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]
    assert root.findtext("endpoints/endpoint/specification") == "http://wiki.open311.org/GeoReport_v2"


async def test_services_are_the_subcategories_in_the_asked_language(client: Client, app: App) -> None:
    m = app.engine.municipality
    leaves = [c for c in m.categories if c.parent is not None]
    status, services, _ = await client.get("/services.json", locale="en")
    assert status == 200 and len(services) == len(leaves)
    pothole = next(s for s in services if s["service_code"] == "roads.pothole")
    assert list(pothole) == SERVICE_FIELDS
    assert pothole["service_name"] == "Pothole" and pothole["group"] == "Roads"
    assert pothole["metadata"] is False and pothole["type"] == "realtime"
    assert "Яма на дороге" in pothole["keywords"]
    status, root, _ = await client.get("/services.xml")  # the city's language by default
    assert status == 200 and root.tag == "services" and len(root) == len(leaves)
    first = root[0]
    assert first.tag == "service" and [c.tag for c in first] == SERVICE_FIELDS
    xml_pothole = next(s for s in root if s.findtext("service_code") == "roads.pothole")
    assert xml_pothole.findtext("service_name") == "Яма на дороге"
    assert xml_pothole.findtext("group") == "Дороги" and xml_pothole.findtext("metadata") == "false"
    _, english, _ = await client.get("/services.xml", locale="en_US")
    assert (
        next(s for s in english if s.findtext("service_code") == "roads.pothole").findtext("group") == "Roads"
    )


async def test_service_definition_is_404_in_the_spec_shape(client: Client) -> None:
    for fmt in ("json", "xml"):
        status, doc, _ = await client.get(f"/services/roads.pothole.{fmt}")  # no extra questions
        assert status == 404 and codes_of(doc) == [404]
        status, doc, _ = await client.get(f"/services/nope.{fmt}")
        assert status == 404 and codes_of(doc) == [404]
    status, doc, _ = await client.get("/services.html")
    assert status == 404 and codes_of(doc) == [404]


# --- POST: a routed ticket, staff told, person fields kept apart -----------------------------------------
async def test_post_files_a_routed_ticket_and_the_staff_get_its_card(
    client: Client, app: App, engine: Engine
) -> None:
    staff = Staff(engine, "roads-1")
    await staff.join("roads_service")
    key = await new_key(app, "city-app")
    status, doc, _ = await client.post(
        "json", report(key, **PERSON, media_url="https://photos.example.org/1.jpg")
    )
    assert status == 200, doc
    (answer,) = doc
    number = int(answer["service_request_id"])
    road_service = "МКУ «Дорожная служба» Комитета городского обустройства администрации г. Иркутска"
    # 1 Dec 2026 is a Tuesday: ten working days later is Tuesday 15 December
    assert answer["service_notice"] == f"Срок: 15.12.2026. Ответственный: {road_service}."
    ticket = await engine.db.run(lambda uow: uow.tickets.get(number))
    assert ticket is not None
    assert ticket.organisation == "roads_service" and ticket.status == Status.ASSIGNED
    assert ticket.author.key == "open311:city-app" and ticket.location_source == "pin"
    assert (
        ticket.deadline is not None and ticket.category == "roads" and ticket.subcategory == "roads.pothole"
    )
    assert [e.action for e in ticket.events] == [Action.CREATE, Action.ASSIGN]
    cards = await delivered(engine, staff)
    assert len(cards) == 1 and f"{number}" in cards[0].text
    listed = await engine.db.run(lambda uow: uow.tickets.list())
    assert [t.number for t in listed] == [number]
    kept = await engine.db.run(lambda uow: uow.open311.submission(number))
    assert kept is not None and kept.email == PERSON["email"] and kept.phone == PERSON["phone"]
    assert kept.media_url == "https://photos.example.org/1.jpg" and kept.key_name == "city-app"
    assert await engine.db.run(lambda uow: uow.open311.forget_person([number])) == 1  # "forget me"
    forgotten = await engine.db.run(lambda uow: uow.open311.submission(number))
    assert forgotten is not None and forgotten.email == forgotten.phone == forgotten.account_id == ""
    assert forgotten.media_url == kept.media_url
    pending = await engine.db.run(lambda uow: uow.outbox.entries())
    assert all(e.chat.channel != "open311" for e in pending)  # nothing queued for a partner system
    status, root, _ = await client.post("xml", report(key, description="Ещё одна яма, рядом."))
    assert status == 200 and root.tag == "service_requests"
    assert [c.tag for c in root[0]] == ["service_request_id", "service_notice", "account_id"]
    assert int(root.findtext("request/service_request_id") or 0) == number + 1


async def test_personal_data_never_comes_back_out(client: Client, app: App, engine: Engine) -> None:
    key = await new_key(app)
    _, doc, _ = await client.post("json", report(key, **PERSON))
    number = doc[0]["service_request_id"]
    bodies = [
        await client.raw(path)
        for path in (
            "/requests.json", "/requests.xml", f"/requests/{number}.json", f"/requests/{number}.xml",
            "/servicerequestupdates.json", "/servicerequestupdates.xml",
        )
    ]  # fmt: skip
    bodies.append(await client.raw("/requests.json", service_request_id=number))
    for body in bodies:
        text = body.decode("utf-8")
        assert number in text
        for secret in [*PERSON.values(), "partner", key]:
            assert secret not in text, (secret, text[:300])


# --- GET requests -----------------------------------------------------------------------------------------
async def test_requests_in_both_formats_with_the_spec_fields(client: Client, app: App) -> None:
    key = await new_key(app)
    _, doc, _ = await client.post("json", report(key, media_url="https://photos.example.org/a.jpg"))
    number = doc[0]["service_request_id"]
    status, items, headers = await client.get("/requests.json")
    assert status == 200 and [i["service_request_id"] for i in items] == [number]
    assert headers["Access-Control-Allow-Origin"] == "*"  # open data: browsers may read it
    (item,) = items
    assert list(item) == REQUEST_FIELDS
    assert item["status"] == "open" and item["service_code"] == "roads.pothole"
    assert item["agency_responsible"].startswith("МКУ «Дорожная служба»")
    assert item["service_notice"].startswith("Срок: ") and item["status_notes"] is None
    assert item["lat"] == pytest.approx(52.287) and item["long"] == pytest.approx(104.281)
    assert item["requested_datetime"].endswith("+08:00") and item["expected_datetime"].endswith("+08:00")
    assert item["media_url"] == "https://photos.example.org/a.jpg"
    status, root, _ = await client.get(f"/requests/{number}.xml", locale="en")
    assert status == 200 and root.tag == "service_requests"
    (request,) = root
    assert request.tag == "request" and [c.tag for c in request] == REQUEST_FIELDS
    assert request.findtext("service_name") == "Pothole" and request.findtext("status") == "open"
    for fmt in ("json", "xml"):
        status, doc, _ = await client.get(f"/requests/999999.{fmt}")
        assert status == 404 and codes_of(doc) == [404]
        status, doc, _ = await client.get(f"/tokens/abc.{fmt}")
        assert status == 404 and codes_of(doc) == [404]


async def test_a_resolution_shows_in_the_request_and_in_the_updates(
    client: Client, app: App, engine: Engine
) -> None:
    key = await new_key(app)
    _, doc, _ = await client.post("json", report(key))
    number = int(doc[0]["service_request_id"])
    _, doc, _ = await client.post("json", report(key, service_code="other.graffiti"))
    rejected = int(doc[0]["service_request_id"])
    m, now = engine.municipality, engine.clock()

    def work(uow: Any) -> None:
        tx = Tx(uow, m, now)
        ticket = apply(tx, uow.tickets.lock(number), Action.COMMENT, "staff:1", comment="Бригада выехала.")
        apply(tx, ticket, Action.RESOLVE, "staff:1", comment="Яма заделана асфальтом.")
        apply(tx, uow.tickets.lock(rejected), Action.REJECT, "staff:1", data={"reason": "not_municipal"})

    await engine.db.run(work)
    status, items, _ = await client.get("/requests.json", service_request_id=f"{number},{rejected}")
    by_id = {i["service_request_id"]: i for i in items}
    assert by_id[str(number)]["status"] == "open"  # resolved waits for the resident's verdict
    assert by_id[str(number)]["status_notes"] == "Яма заделана асфальтом."
    assert by_id[str(rejected)]["status"] == "closed"
    assert (
        by_id[str(rejected)]["status_notes"] == "это не относится к ведению города"
        or by_id[str(rejected)]["status_notes"]
    )
    status, updates, _ = await client.get("/servicerequestupdates.json", locale="en")
    assert status == 200
    a, b = str(number), str(rejected)  # the graffiti went to the dispatcher: created, then rejected
    assert [u["service_request_id"] for u in updates] == [a, a, b, a, a, b]
    assert list(updates[0]) == [
        "update_id", "service_request_id", "status", "updated_datetime", "description", "media_url"
    ]  # fmt: skip
    ids = [int(u["update_id"]) for u in updates]
    assert ids == sorted(ids)
    resolved = [u for u in updates if u["description"].startswith("work completed")]
    assert resolved and resolved[0]["description"] == "work completed: Яма заделана асфальтом."
    assert updates[-1]["status"] == "closed"
    status, root, _ = await client.get("/servicerequestupdates.xml")
    assert status == 200 and root.tag == "service_request_updates"
    assert {c.tag for c in root} == {"request_update"} and len(root) == 6


async def test_xml_stays_well_formed_whatever_an_old_ticket_holds(client: Client, engine: Engine) -> None:
    """Text was not always normalised when stored: characters XML cannot carry are left out of the XML."""
    legacy = NewTicket(
        category="roads", subcategory="roads.pothole", lat=52.287, lon=104.281, address="улица\x0bЛенина",
        location_source="pin", description="яма\x01\x07 <b>&amp;</b>", photos=(),
        author=ChatRef("telegram", "1", "1"), language="ru", organisation="roads_service",
        status=Status.ASSIGNED, created_at=engine.clock(), deadline=None,
    )  # fmt: skip
    await engine.db.run(lambda uow: uow.tickets.create(legacy))
    status, root, _ = await client.get("/requests.xml")
    assert status == 200 and root.findtext("request/description") == "яма <b>&amp;</b>"
    assert root.findtext("request/address") == "улицаЛенина"
    _, items, _ = await client.get("/requests.json")
    assert items[0]["description"] == "яма\x01\x07 <b>&amp;</b>"  # JSON escapes them


async def test_staff_work_the_ticket_in_the_bot_and_the_partner_sees_it(
    client: Client, app: App, engine: Engine, photos: PhotoStore
) -> None:
    """The whole path: filed over Open311, in the staff's queue, taken and resolved with a photo through the
    bot's staff dialog, and read back as the request's note and as updates with the public photo."""
    staff = Staff(engine, "roads-2")
    await staff.join("roads_service")
    key = await new_key(app)
    _, doc, _ = await client.post("json", report(key))
    number = int(doc[0]["service_request_id"])
    await staff.command("queue")
    assert any(data == f"st:open:{number}" for _label, data in staff.buttons())
    await staff.press(f"st:open:{number}")
    await staff.press(f"st:take:{number}")
    await staff.expect("staff.take.done")
    await staff.send(button=f"st:res:{number}")
    done_photo = await stored_photo(engine, photos, (0, 200, 0))
    await staff.photos(done_photo)
    await staff.press("res:done")
    await staff.say("Яму заделали асфальтом.")
    await staff.expect("staff.resolve.done")
    app.settings.open311_photo_url = "https://city.example.org/photos/"
    status, root, _ = await client.get(f"/requests/{number}.xml")
    assert status == 200 and root.findtext("request/status_notes") == "Яму заделали асфальтом."
    assert root.findtext("request/status") == "open"  # resolved: the verdict (or the auto-close) closes it
    _, updates, _ = await client.get("/servicerequestupdates.json", locale="en")
    mine = [u for u in updates if u["service_request_id"] == str(number)]
    assert [u["description"] for u in mine] == [
        "report created", "sent to the organisation", "taken into work",
        "work completed: Яму заделали асфальтом.",
    ]  # fmt: skip
    assert mine[-1]["media_url"] == f"https://city.example.org/photos/{done_photo}"
    assert all(u["media_url"] is None for u in mine[:-1])


async def test_filters_windows_and_pages(client: Client, app: App, engine: Engine) -> None:
    key = await new_key(app)
    numbers = []
    for code in ("roads.pothole", "roads.pothole", "lighting.not_working"):
        _, doc, _ = await client.post("json", report(key, service_code=code))
        numbers.append(doc[0]["service_request_id"])

    async def listed(**params: str) -> list[str]:
        status, items, _ = await client.get("/requests.json", **params)
        assert status == 200, items
        return [i["service_request_id"] for i in items]

    assert await listed() == numbers[::-1]
    assert await listed(service_code="lighting.not_working") == [numbers[2]]
    assert await listed(service_code="roads.pothole,lighting.not_working") == numbers[::-1]
    assert await listed(service_code="roads") == [numbers[1], numbers[0]]  # a category: its whole group
    assert await listed(status="closed") == []
    assert await listed(status="open,closed") == numbers[::-1]
    assert await listed(page_size="2") == numbers[:0:-1]
    assert await listed(page_size="2", page="2") == [numbers[0]]
    # the id list overrides the others, the status filter included
    assert await listed(service_request_id=f"{numbers[0]},{numbers[2]}", status="closed") == [
        numbers[2],
        numbers[0],
    ]
    assert await listed(start_date="2026-06-01T00:00:00Z", end_date="2026-08-01T00:00:00Z") == []
    assert await listed(start_date="2026-11-30T00:00:00+08:00") == numbers[::-1]
    assert await listed(end_date="2026-11-30") == []  # no offset: the city's time
    problems = {
        "start_date": "yesterday",
        "end_date": "2026-13-01",
        "status": "pending",
        "page_size": "1001",
        "service_code": "nope",
        "service_request_id": "1;2",
    }
    for name, value in problems.items():
        status, doc, _ = await client.get("/requests.json", **{name: value})
        assert status == 400 and codes_of(doc) == [400], name
    status, doc, _ = await client.get(
        "/requests.xml", start_date="2026-01-01T00:00:00Z", end_date="2026-12-01T00:00:00Z"
    )
    assert status == 400 and codes_of(doc) == [400]  # more than 90 days
    status, doc, _ = await client.get("/requests.json", service_code=",".join(["roads.pothole"] * 101))
    assert status == 400 and codes_of(doc) == [400]
    for fmt in ("json", "xml"):
        status, doc, _ = await client.get(f"/requests.{fmt}", jurisdiction_id="moscow")
        assert status == 400 and codes_of(doc) == [400]
    assert await listed(jurisdiction_id="irkutsk") == numbers[::-1]
    status, doc, _ = await client.get("/requests.json", status="pending", page="0", service_code="nope")
    assert status == 400 and codes_of(doc) == [400, 400, 400]  # every wrong field at once
    status, doc, _ = await client.get(
        "/requests.json", start_date="2026-11-01T00:00:00Z", end_date="2026-10-01T00:00:00Z"
    )
    assert status == 400


# --- POST refused ---------------------------------------------------------------------------------------
async def test_keys_missing_wrong_revoked_or_read_only_get_403(client: Client, app: App) -> None:
    reader = await new_key(app, "reader", can_write=False)
    revoked = await new_key(app, "gone")
    assert await app.db.run(lambda uow: uow.open311.revoke_key("gone", app.engine.clock()))
    for fmt in ("json", "xml"):
        for data in (report(""), report("o311_wrong"), report(reader), report(revoked)):
            status, doc, _ = await client.post(fmt, {k: v for k, v in data.items() if v})
            assert status == 403 and codes_of(doc) == [403]
    # the key is checked before anything else is looked at
    status, doc, _ = await client.post("json", {"api_key": "o311_wrong", "lat": "x", "bogus": "1"})
    assert status == 403 and codes_of(doc) == [403]
    status, doc, _ = await client.get("/requests.json", api_key="o311_wrong")
    assert status == 403
    status, _, _ = await client.get("/requests.json", api_key=reader)
    assert status == 200
    listed = await app.db.run(lambda uow: uow.tickets.list())
    assert listed == []


async def test_bad_fields_are_each_named_in_one_answer(client: Client, app: App, engine: Engine) -> None:
    key = await new_key(app)
    status, doc, _ = await client.post(
        "json", report(key, description="", lat="91", service_code="roads", bogus="1")
    )
    assert status == 400 and codes_of(doc) == [400] * 4  # unknown field, category not a service, text, lat
    cases: list[dict[str, str]] = [
        report(key, description="x" * 4001),
        report(key, lat=None, long=None),
        report(key, long=None),
        report(key, lat="nan"),
        report(key, email="not-an-email"),
        report(key, phone="call me maybe"),
        report(key, first_name="Я" * 101),
        report(key, jurisdiction_id="moscow"),
        report(key, service_code="nope"),
    ]
    for data in cases:
        status, doc, _ = await client.post("json", {k: v for k, v in data.items() if v is not None})
        assert status == 400 and codes_of(doc), data
    status, doc, _ = await client.post("json", [*report(key).items(), ("description", "twice")])
    assert status == 400
    status, doc, _ = await client.post(
        "json", json.dumps(report(key)), headers={"Content-Type": "application/json"}
    )
    assert status == 400
    status, doc, _ = await client.post(
        "json", report(key, description="я" * 3990, address_string="x" * 40_000)
    )
    assert status == 400  # over the body limit
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, doc, _ = await client.post(
        "json", b"api_key=" + key.encode() + b"&description=%FF%FE", headers=form
    )
    assert status == 400  # not UTF-8
    assert await engine.db.run(lambda uow: uow.tickets.list()) == []
    status, doc, _ = await client.post("json", report(key, jurisdiction_id="irkutsk", description="я" * 4000))
    assert status == 200  # the configured jurisdiction, and exactly 4,000 characters


async def test_a_place_outside_the_city_is_refused(client: Client, app: App, engine: Engine) -> None:
    key = await new_key(app)
    for fmt in ("json", "xml"):
        status, doc, _ = await client.post(fmt, report(key, lat=MOSCOW[0], long=MOSCOW[1]))
        assert status == 400 and codes_of(doc) == [400]
    status, doc, _ = await client.post("json", report(key, lat=MOSCOW[0], long=MOSCOW[1], locale="en"))
    assert doc[0]["description"] == "The place is outside Irkutsk."
    assert await engine.db.run(lambda uow: uow.tickets.list()) == []


async def test_media_links_into_private_networks_are_refused(client: Client, app: App) -> None:
    key = await new_key(app)
    for url in (
        "http://127.0.0.1/admin", "http://localhost:8080/x", "http://[::1]/x", "http://10.0.0.5/p.jpg",
        "http://192.168.1.1/p.jpg", "http://169.254.169.254/latest/meta-data/", "http://2130706433/",
        "http://0x7f.1/", "http://[::ffff:127.0.0.1]/", "file:///etc/passwd", "gopher://example.org/",
        "http://user:pw@example.org/p.jpg", "http://intranet/p.jpg", "http://db.internal/p.jpg",
        "javascript:alert(1)", "https://example.org/" + "a" * 2100,
    ):  # fmt: skip
        assert not public_link(url), url
        status, doc, _ = await client.post("json", report(key, media_url=url))
        assert status == 400 and codes_of(doc) == [400], url
    assert public_link("https://photos.example.org/p.jpg") and public_link("http://8.8.8.8/p.jpg")


async def test_rate_limit_answers_429_with_retry_after(client: Client, app: App) -> None:
    key = await new_key(app, "slowpoke", rate=2)
    for _ in range(2):
        status, _, _ = await client.get("/services.json", api_key=key)
        assert status == 200
    status, doc, headers = await client.get("/services.json", api_key=key)
    assert status == 429 and codes_of(doc) == [429]
    assert 1 <= int(headers["Retry-After"]) <= 60
    status, _, _ = await client.post("json", report(key))
    assert status == 429
    for _ in range(3):  # reads without a key: counted per client, behind a local proxy by X-Forwarded-For
        status, _, _ = await client.get("/services.json", headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    app.settings.open311_rate_per_minute = 1
    status, _, _ = await client.get("/services.json", headers={"X-Forwarded-For": "198.51.100.1"})
    assert status == 200
    status, _, headers = await client.get("/services.json", headers={"X-Forwarded-For": "198.51.100.1"})
    assert status == 429 and "Retry-After" in headers
    status, _, _ = await client.get("/services.json", headers={"X-Forwarded-For": "198.51.100.2"})
    assert status == 200
    limiter = RateLimiter(window=60)
    assert limiter.hit("a", 1, 0.0) is None and limiter.hit("a", 1, 30.0) == 30
    assert limiter.hit("a", 1, 60.0) is None  # the window moved on


async def test_the_api_key_may_come_in_the_url(client: Client, app: App) -> None:
    key = await new_key(app)
    data = report("")
    del data["api_key"]
    status, doc, _ = await client.post("json", data, params={"api_key": key})
    assert status == 200 and doc[0]["service_request_id"]


async def test_a_database_outage_is_a_500_in_the_spec_shape(app: App) -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:1/nothing-listens-here")
    runner, url = await serve(build_http(replace(app, db=unreachable)))
    try:
        async with aiohttp.ClientSession() as session:
            for fmt in ("json", "xml"):
                status, doc, _ = await Client(session, url).get(f"/requests.{fmt}")
                assert status == 500 and codes_of(doc) == [500]
    finally:
        await runner.cleanup()
        unreachable.close()


# --- addresses through the Geocoder port --------------------------------------------------------------------
@pytest.fixture
async def geo_client(app: App, engine: Engine) -> AsyncIterator[tuple[Client, App, FakeGeocoderServer]]:
    async for fake in serve_fake_geocoder():
        geocoder = CachedGeocoder(NominatimGeocoder(fake.url, user_agent()), engine.db)
        geo_engine = Engine(
            engine.db, engine.municipality, clock=engine.clock, geocoder=geocoder, geocode_timeout=0.5
        )
        geo_app = replace(app, engine=geo_engine)
        runner, url = await serve(build_http(geo_app))
        try:
            async with aiohttp.ClientSession() as session:
                yield Client(session, url), geo_app, fake
        finally:
            await runner.cleanup()


async def test_a_typed_address_is_geocoded_inside_the_city(
    geo_client: tuple[Client, App, FakeGeocoderServer], engine: Engine
) -> None:
    client, app, fake = geo_client
    key = await new_key(app)
    no_pin = {"lat": None, "long": None}
    status, doc, _ = await client.post("json", report(key, address_string="улица Ленина, 5", **no_pin))
    assert status == 200, doc
    ticket = await engine.db.run(lambda uow: uow.tickets.get(int(doc[0]["service_request_id"])))
    assert ticket is not None and ticket.location_source == "geocoded"
    assert (ticket.lat, ticket.lon) == (pytest.approx(LENINA_5.lat), pytest.approx(LENINA_5.lon))
    assert ticket.organisation == "roads_service"
    status, doc, _ = await client.post("json", report(key, address_string="Садовая улица, 7", **no_pin))
    assert status == 400 and codes_of(doc) == [400]  # in the city's box, outside its boundary
    status, doc, _ = await client.post("json", report(key))  # a pin gets its address
    pinned = await engine.db.run(lambda uow: uow.tickets.get(int(doc[0]["service_request_id"])))
    assert pinned is not None and "Ленина" in pinned.address
    fake.mode = "error"  # the geocoder is down: the typed address is kept for the dispatcher to place
    status, doc, _ = await client.post("json", report(key, address_string="улица Новая, 1", **no_pin))
    assert status == 200
    kept = await engine.db.run(lambda uow: uow.tickets.get(int(doc[0]["service_request_id"])))
    assert kept is not None and kept.location_source == "typed_unverified" and kept.lat is None
    assert kept.organisation == engine.municipality.dispatch and kept.address == "улица Новая, 1"


# --- an existing client library ---------------------------------------------------------------------------
async def test_the_georeport_client_library_reads_both_formats(http: str, app: App) -> None:
    from georeport import GeoReport

    key = await new_key(app)
    async with aiohttp.ClientSession() as session:
        _, doc, _ = await Client(session, http).post("json", report(key))
    number = doc[0]["service_request_id"]

    def read(fmt: str) -> tuple[Any, Any, Any]:
        api = GeoReport(http + BASE, jurisdiction="irkutsk", output_format=fmt)
        return (
            api.get_service_list(),
            api.get_service_requests(status="open"),
            api.get_service_request(number),
        )

    services, requests, one = await asyncio.to_thread(read, "json")
    assert any(s["service_code"] == "roads.pothole" for s in services)
    assert requests[0]["service_request_id"] == number and one["status"] == "open"
    services, requests, one = await asyncio.to_thread(read, "xml")
    assert any(s["service_code"] == "roads.pothole" for s in services)
    assert requests["service_request_id"] == number  # xmltodict: a single element is not a list
    assert one["service_code"] == "roads.pothole" and one["status"] == "open"


# --- texts ------------------------------------------------------------------------------------------------
def test_every_error_the_door_can_give_is_described_in_both_languages() -> None:
    """Error keys are built (`open311.error.{key}`), so the catalogue test cannot see them: find each
    `reject(…)` / `problems.add(…)` in web/open311 and check its description, with the same placeholders."""
    source = "".join(p.read_text() for p in (Path(__file__).parents[2] / "web" / "open311").glob("*.py"))
    used = set(re.findall(r"(?:reject|add)\(\s*\d{3},\s*\"(\w+)\"", source))
    assert {"api_key", "outside", "rate", "format", "media_url"} <= used

    def names(language: str, key: str) -> set[str]:
        text = catalogue(language)[key]
        return {n for form in forms(text) for _, n, _, _ in string.Formatter().parse(form) if n}

    for key in [*sorted(used), "internal"]:
        for language in LANGUAGES:
            assert f"open311.error.{key}" in catalogue(language), (language, key)
            assert names(language, f"open311.error.{key}") == names("ru", f"open311.error.{key}")
