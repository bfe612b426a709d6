"""The city's web, as staff use it: signed in through a link the bot gives, in a real browser (Chromium
through Playwright) where the page matters, and over plain HTTP where the answer does. Tickets are filed
through the real report dialog on the console channel; changes made on the web must reach the resident
through the outbox exactly as the bot's own do."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from bots.app import App
from bots.reports import stats_document
from core.engine import Engine
from core.ports import TicketFilter
from core.stats import document
from tests.fakes import serve
from tests.stats_reference import compute
from tests.stats_reference import rows as reference_rows
from tests.support import Clock, Resident, Staff, delivered, invite, jpeg_bytes, keys_of, submit_report
from web.server import build_http

SHOTS = os.environ.get("OTKLIK_SCREENSHOTS", "")
"""Where the browser tests save screenshots (the README's: OTKLIK_SCREENSHOTS=docs/screenshots)."""
LINK = re.compile(r"(http://\S+/web/login/[A-Za-z0-9_-]{43})")
ROADS_POINT = (52.2870, 104.2810)
LIGHT_POINT = (52.2890, 104.2850)


@pytest.fixture
def web(engine: Engine, http: str) -> str:
    """The HTTP server's base URL, which the bot's `/web` links point at."""
    engine.web_url = http
    return http


async def shot(page: Any, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


async def web_link(member: Staff) -> str:
    """What `/web` in the bot answers: a one-time link."""
    replies = await member.command("web")
    match = LINK.search(replies[0].text)
    assert match, replies[0].text
    return match.group(1)


async def signed_in(member: Staff) -> aiohttp.ClientSession:
    """An HTTP client with the session cookie the link's sign-in button sets."""
    link = await web_link(member)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(link) as page:
        assert page.status == 200
        token = re.search(r'name="token" value="([^"]+)"', await page.text())
    assert token
    async with session.post(link.split("/web/")[0] + "/web/login", data={"token": token.group(1)}) as done:
        assert done.status == 200 and done.url.path == "/web"
    return session


async def csrf_of(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as page:
        found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found
    return found.group(1)


@pytest.fixture
async def city(engine: Engine, web: str) -> dict[str, Any]:
    """A resident with a pothole (roads_service) and a broken lamp (lighting), a roads staff member, a
    lighting staff member and a dispatcher, all on the console channel."""
    resident = Resident(engine, "resident-1", channel="console")
    pothole = await submit_report(resident, description="Яма <script>alert(1)</script> у остановки")
    lamp = await submit_report(
        resident, "lighting", "lighting.not_working", LIGHT_POINT, "Не горит фонарь во дворе, темно."
    )
    roads = Staff(engine, "roads-1", name="Ольга Дорожная", channel="console")
    await roads.join("roads_service")
    light = Staff(engine, "light-1", name="Пётр Светов", channel="console")
    await light.join("lighting")
    dispatcher = Staff(engine, "disp-1", name="Диспетчер Анна", channel="console")
    await dispatcher.join("dispatch", "dispatcher")
    await delivered(engine, resident)  # the "registered"/"sent to" notices so far
    return {
        "resident": resident,
        "pothole": pothole,
        "lamp": lamp,
        "roads": roads,
        "light": light,
        "dispatcher": dispatcher,
        "web": web,
    }


# --- sign-in --------------------------------------------------------------------------------------------
async def test_a_resident_asking_for_the_web_is_told_it_is_for_staff(engine: Engine, web: str) -> None:
    resident = Resident(engine, "someone", channel="console")
    replies = await resident.command("web")
    assert keys_of(replies) != []
    assert "/web/login/" not in replies[0].text
    assert "сотрудник" in replies[0].text


async def test_the_link_works_once_and_a_reused_link_gets_a_clear_page(city: dict[str, Any]) -> None:
    link = await web_link(city["roads"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as first:
        async with first.get(link) as page:
            body = await page.text()
            assert page.status == 200 and "Ольга Дорожная" in body
            assert page.headers["Referrer-Policy"] == "same-origin"
        async with first.get(link) as again:  # looking (a link preview) does not use it up
            assert again.status == 200
        token = link.rsplit("/", 1)[1]
        async with first.post(city["web"] + "/web/login", data={"token": token}) as done:
            assert done.status == 200 and done.url.path == "/web"
            cookie = done.history[0].headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as second:
        async with second.get(link) as used:
            assert used.status == 410
            assert "уже использована" in await used.text()
        async with second.post(city["web"] + "/web/login", data={"token": token}) as refused:
            assert refused.status == 410
        async with second.get(city["web"] + "/web") as nobody:
            assert nobody.status == 401


async def test_an_expired_link_gets_a_clear_page(city: dict[str, Any], engine: Engine) -> None:
    clock = Clock(engine.clock())
    engine.clock = clock
    link = await web_link(city["roads"])
    clock.advance(minutes=16)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(link) as page:
            assert page.status == 410
            assert "Срок действия ссылки истёк" in await page.text()
        async with session.get(city["web"] + "/web/login/" + "x" * 43) as forged:
            assert forged.status == 404


async def test_sign_out_ends_the_session_and_forms_without_the_csrf_token_are_refused(
    city: dict[str, Any],
) -> None:
    async with await signed_in(city["roads"]) as session:
        web = city["web"]
        async with session.post(web + f"/web/tickets/{city['pothole']}/take", data={"csrf": "forged"}) as bad:
            assert bad.status == 403
        async with session.post(web + f"/web/tickets/{city['pothole']}/take", data={}) as missing:
            assert missing.status == 403
        token = await csrf_of(session, web + "/web")
        async with session.post(web + "/web/logout", data={"csrf": token}) as out:
            assert out.status == 200
        async with session.get(web + "/web") as after:
            assert after.status == 401


async def test_a_removed_staff_members_session_ends(city: dict[str, Any], engine: Engine) -> None:
    async with await signed_in(city["roads"]) as session:
        chat, now = city["roads"].chat, engine.clock()
        await engine.db.run(lambda store: store.staff.remove(store.staff.get(chat).id, now))
        async with session.get(city["web"] + "/web") as page:
            assert page.status == 401


# --- organisation scope ---------------------------------------------------------------------------------
async def test_staff_of_another_organisation_get_404_for_the_ticket_its_photos_and_exports(
    city: dict[str, Any], engine: Engine, photos: Any
) -> None:
    web, pothole = city["web"], city["pothole"]
    async with await signed_in(city["roads"]) as roads:
        token = await csrf_of(roads, web + "/web")
        form = aiohttp.FormData()
        form.add_field("csrf", token)
        form.add_field("photos", jpeg_bytes((10, 120, 10)), filename="done.jpg", content_type="image/jpeg")
        async with roads.post(web + f"/web/tickets/{pothole}/resolve", data=form) as done:
            assert done.status == 200
        ticket = await engine.db.run(lambda store: store.tickets.get(pothole))
        sha = ticket.resolution_photos[0]
        async with roads.get(web + f"/web/tickets/{pothole}/photos/{sha}") as photo:
            assert photo.status == 200 and photo.content_type == "image/jpeg"
            assert (await photo.read())[:2] == b"\xff\xd8"
    async with await signed_in(city["light"]) as light:
        for path in (f"/web/tickets/{pothole}", f"/web/tickets/{pothole}/photos/{sha}"):
            async with light.get(web + path) as refused:
                assert refused.status == 404, path
        token = await csrf_of(light, web + "/web")
        comment = {"csrf": token, "text": "x"}
        async with light.post(web + f"/web/tickets/{pothole}/comment", data=comment) as act:
            assert act.status == 404
        for fmt in ("csv", "geojson"):  # asking for roads_service's tickets gives their own only
            async with light.get(web + f"/web/export.{fmt}?organisation=roads_service") as export:
                body = await export.text()
            assert f'"number": {pothole},' not in body and f"\n{pothole}," not in body
            assert str(city["lamp"]) in body
        async with light.get(web + "/web/api/tickets?bbox=104,52,105,53&organisation=roads_service") as data:
            numbers = [f["id"] for f in (await data.json())["features"]]
        assert numbers == [city["lamp"]]


# --- the ticket page and its actions --------------------------------------------------------------------
async def test_resident_text_is_escaped_on_the_ticket_page(city: dict[str, Any]) -> None:
    session = await signed_in(city["roads"])
    async with session, session.get(city["web"] + f"/web/tickets/{city['pothole']}") as page:
        body = await page.text()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_a_comment_and_a_rejection_from_the_web_reach_the_resident(
    city: dict[str, Any], engine: Engine
) -> None:
    web, pothole = city["web"], city["pothole"]
    async with await signed_in(city["roads"]) as session:
        token = await csrf_of(session, web + "/web")
        url = web + f"/web/tickets/{pothole}"
        async with session.post(url + "/comment", data={"csrf": token, "text": "Приедем в четверг."}) as done:
            body = await done.text()
            assert "flash ok" in body and "<blockquote>Приедем в четверг.</blockquote>" in body  # history
        async with session.get(url) as again:  # the notice is said once
            assert "flash" not in await again.text()
        said = await delivered(engine, city["resident"])
        assert keys_of(said) == ["notify.comment"]
        assert "Приедем в четверг." in said[0].text
        async with session.post(url + "/reject", data={"csrf": token, "reason": "bogus"}) as refused:
            assert "flash error" in await refused.text()
        async with session.post(url + "/reject", data={"csrf": token, "reason": "not_municipal"}):
            pass
    ticket = await engine.db.run(lambda store: store.tickets.get(pothole))
    assert ticket.status.value == "rejected"
    assert keys_of(await delivered(engine, city["resident"]))[0] == "notify.rejected"


async def test_the_dispatcher_routes_a_ticket_and_its_new_staff_hear_of_it(
    city: dict[str, Any], engine: Engine
) -> None:
    web, lamp = city["web"], city["lamp"]
    await delivered(engine, city["roads"])
    async with await signed_in(city["dispatcher"]) as session:
        token = await csrf_of(session, web + "/web")
        data = {"csrf": token, "organisation": "roads_service"}
        async with session.post(web + f"/web/tickets/{lamp}/route", data=data) as page:
            body = await page.text()
            assert "flash ok" in body
    ticket = await engine.db.run(lambda store: store.tickets.get(lamp))
    assert ticket.organisation == "roads_service"
    assert ticket.events[-1].action.value == "reroute"
    cards = await delivered(engine, city["roads"])
    assert [f"№{lamp}" in c.text.replace(" ", "") for c in cards] == [True], [c.text for c in cards]


# --- export ---------------------------------------------------------------------------------------------
async def test_exports_parse_back(city: dict[str, Any]) -> None:
    async with await signed_in(city["dispatcher"]) as session:
        async with session.get(city["web"] + "/web/export.csv") as response:
            assert response.content_type == "text/csv"
            raw = await response.read()
        async with session.get(city["web"] + "/web/export.geojson?category=lighting") as response:
            assert response.content_type == "application/geo+json"
            doc = json.loads(await response.read())
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert sorted(int(r["number"]) for r in rows) == sorted([city["pothole"], city["lamp"]])
    pothole = next(r for r in rows if int(r["number"]) == city["pothole"])
    assert pothole["organisation"] == "roads_service" and pothole["status"] == "assigned"
    assert doc["type"] == "FeatureCollection"
    [feature] = doc["features"]
    assert feature["properties"]["number"] == city["lamp"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [LIGHT_POINT[1], LIGHT_POINT[0]]}


async def test_the_map_data_needs_a_bbox_and_answers_only_what_is_in_it(city: dict[str, Any]) -> None:
    async with await signed_in(city["dispatcher"]) as session:
        async with session.get(city["web"] + "/web/api/tickets") as missing:
            assert missing.status == 400
        south, west = ROADS_POINT[0] - 0.0005, ROADS_POINT[1] - 0.0005
        bbox = f"{west},{south},{west + 0.001},{south + 0.001}"
        async with session.get(city["web"] + f"/web/api/tickets?bbox={bbox}") as data:
            numbers = [f["id"] for f in (await data.json())["features"]]
    assert numbers == [city["pothole"]]


# --- in a real browser ----------------------------------------------------------------------------------
async def test_in_a_browser_staff_sign_in_see_markers_filter_and_resolve_with_a_photo(
    city: dict[str, Any], engine: Engine, browser: Any, tmp_path: Any
) -> None:
    web = city["web"]
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone screen
    await page.route(re.compile(r"^https?://(?!127\.0\.0\.1).*"), lambda route: route.abort())  # no tiles
    await page.goto(await web_link(city["dispatcher"]))
    await page.click("#sign-in")
    await page.wait_for_url(web + "/web", timeout=10_000)
    await page.wait_for_selector("#map[data-markers='2']", state="attached", timeout=10_000)
    await page.wait_for_selector(".ticket-marker, .marker-cluster", timeout=10_000)  # drawn, tiles or not
    assert await page.locator("#list tbody tr").count() == 2
    await page.check("input[name=status][value=assigned]")
    await page.select_option("select[name=category]", "lighting")
    await page.click("#apply")
    await page.wait_for_selector("#map[data-markers='1']", state="attached", timeout=10_000)
    await page.check(".leaflet-control-layers-overlays input >> nth=1")  # the heat layer
    await page.wait_for_selector("path.leaflet-interactive, path[fill='#dc3545']", state="attached")
    assert await page.locator("path[fill='#dc3545']").count() == 1  # one disc per report in view
    await shot(page, "map-phone")
    rows = page.locator("#list tbody tr")
    assert await rows.count() == 1 and await rows.first.get_attribute("data-number") == str(city["lamp"])
    await page.close()

    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    await page.route(re.compile(r"^https?://(?!127\.0\.0\.1).*"), lambda route: route.abort())
    await page.goto(await web_link(city["roads"]))
    await page.click("#sign-in")
    await page.wait_for_url(web + "/web", timeout=10_000)
    await page.click(f"#list a[href='/web/tickets/{city['pothole']}']")
    await page.wait_for_selector("#history")
    assert "Яма" in await page.inner_text("#description")
    photo = tmp_path / "done.jpg"
    photo.write_bytes(jpeg_bytes((20, 160, 20)))
    await page.set_input_files("#resolve-form input[type=file]", str(photo))
    await page.fill("#resolve-form textarea[name=comment]", "Яму заделали.")
    await page.click("#resolve")
    await page.wait_for_selector("#resolution-photos img")
    await shot(page, "ticket")
    assert await page.locator(".flash.ok").count() == 1
    loaded = await page.evaluate("document.querySelector('#resolution-photos img').naturalWidth")
    assert loaded > 0
    await page.close()

    said = await delivered(engine, city["resident"])
    assert keys_of(said)[0] == "notify.resolved"
    assert "Яму заделали." in said[0].text and len(said[0].photos) == 1


async def test_the_dashboard_shows_the_figures_and_charts(city: dict[str, Any], browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    await page.goto(await web_link(city["dispatcher"]))
    await page.click("#sign-in")
    await page.wait_for_url(city["web"] + "/web", timeout=10_000)
    await page.goto(city["web"] + "/web/dashboard")
    assert await page.inner_text("#total") == "2"
    drawn = await page.evaluate("Chart.getChart(document.getElementById('weekly')).data.datasets.length")
    assert drawn == 2
    await shot(page, "dashboard")
    await page.close()


async def test_resolving_without_a_photo_is_refused(city: dict[str, Any], engine: Engine) -> None:
    async with await signed_in(city["roads"]) as session:
        token = await csrf_of(session, city["web"] + "/web")
        form = aiohttp.FormData()
        form.add_field("csrf", token)
        async with session.post(city["web"] + f"/web/tickets/{city['pothole']}/resolve", data=form) as page:
            assert "flash error" in await page.text()
    ticket = await engine.db.run(lambda store: store.tickets.get(city["pothole"]))
    assert ticket.status.value == "assigned" and not ticket.resolution_photos


async def test_a_form_posted_from_another_site_is_refused(city: dict[str, Any]) -> None:
    async with await signed_in(city["roads"]) as session:
        token = await csrf_of(session, city["web"] + "/web")
        url = city["web"] + f"/web/tickets/{city['pothole']}/take"
        async with session.post(url, data={"csrf": token}, headers={"Origin": "https://evil.example"}) as bad:
            assert bad.status == 403
        link = await web_link(city["light"])
        data = {"token": link.rsplit("/", 1)[1]}
        async with session.post(
            city["web"] + "/web/login", data=data, headers={"Origin": "https://evil.example"}
        ) as bad:
            assert bad.status == 403


async def test_an_admin_sees_the_whole_city_in_english(engine: Engine, city: dict[str, Any]) -> None:
    admin = Staff(engine, "admin-1", name="Mayor", language="en", channel="console")
    code = await invite(engine, "roads_service", "admin")
    await admin.command("staff", code)
    async with await signed_in(admin) as session:
        async with session.get(city["web"] + f"/web/tickets/{city['lamp']}") as page:
            assert page.status == 200
            assert "Report No." in await page.text()
        async with session.get(city["web"] + "/web/export.csv") as export:
            rows = list(csv.DictReader(io.StringIO((await export.read()).decode("utf-8-sig"))))
    assert len(rows) == 2


# --- the public map (PUBLIC_MAP=on) ---------------------------------------------------------------------
async def test_the_public_map_is_off_by_default_and_shows_no_resident_when_on(
    city: dict[str, Any], app: App, engine: Engine
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(city["web"] + "/map") as off:
            assert off.status == 404
        settings = app.settings.model_copy(update={"public_map": True})
        runner, url = await serve(build_http(replace(app, settings=settings)))
        try:
            async with session.get(url + "/map?lang=en") as page:
                assert page.status == 200 and "Map of reports" in await page.text()
            async with session.get(url + "/map/api/tickets?bbox=104,52,105,53") as data:
                doc = await data.json()
        finally:
            await runner.cleanup()
    assert sorted(f["id"] for f in doc["features"]) == sorted([city["pothole"], city["lamp"]])
    shown = json.dumps(doc, ensure_ascii=False)
    for private in (
        "resident-1",
        "у остановки",
        "фонарь во дворе",
        "roads_service",
        "photos",
        "organisation",
    ):
        assert private not in shown, private
    assert set(doc["features"][0]["properties"]) == {
        "number", "status", "status_name", "category", "address", "created", "resolved"
    }  # fmt: skip


async def test_a_take_reaches_the_resident_and_the_dispatcher_sets_the_place(
    city: dict[str, Any], engine: Engine
) -> None:
    web, pothole = city["web"], city["pothole"]
    async with await signed_in(city["roads"]) as session:
        token = await csrf_of(session, web + "/web")
        async with session.post(web + f"/web/tickets/{pothole}/take", data={"csrf": token}) as page:
            assert "flash ok" in await page.text()
    assert keys_of(await delivered(engine, city["resident"])) == ["notify.taken"]
    async with await signed_in(city["dispatcher"]) as session:
        token = await csrf_of(session, web + "/web")
        place = {"csrf": token, "lat": "52.2901", "lon": "104.2902", "address": "ул. Ленина, 1"}
        async with session.post(web + f"/web/tickets/{pothole}/place", data=place) as page:
            assert "flash ok" in await page.text()
        outside = {**place, "lat": "10", "lon": "10"}  # not in the city: refused as in the bot
        async with session.post(web + f"/web/tickets/{pothole}/place", data=outside) as page:
            assert "flash error" in await page.text()
    ticket = await engine.db.run(lambda store: store.tickets.get(pothole))
    assert (ticket.lat, ticket.lon, ticket.address) == (52.2901, 104.2902, "ул. Ленина, 1")
    assert ticket.events[-1].action.value == "place" and ticket.events[-1].data["name"] == "Диспетчер Анна"


async def test_ended_links_and_sessions_are_pruned(city: dict[str, Any], engine: Engine) -> None:
    link = await web_link(city["roads"])
    session = await signed_in(city["light"])
    await session.close()
    later = engine.clock() + timedelta(hours=13)  # the links (15 min) and the session (12 h) have ended
    assert await engine.db.run(lambda store: store.web_logins.prune(later)) == 3  # two links, one session
    async with aiohttp.ClientSession() as client, client.get(link) as gone:
        assert gone.status == 404  # unknown now, no longer "expired"


async def test_the_dashboards_figures_are_otklik_stats_figures(city: dict[str, Any], engine: Engine) -> None:
    async with await signed_in(city["roads"]) as session:
        token = await csrf_of(session, city["web"] + "/web")
        await session.post(city["web"] + f"/web/tickets/{city['pothole']}/take", data={"csrf": token})
    now = engine.clock() + timedelta(days=30)  # the lamp is overdue by then

    zone = engine.municipality.timezone

    def both(store: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        web = document(store.ticket_search.stats(TicketFilter(), now, zone))
        return web, stats_document(store, now), compute(*reference_rows(store), now)

    web, cli, reference = await engine.db.run(both)
    assert web == cli == reference and web["overdue"] == 2 and web["first_response_hours"]["count"] == 1


async def test_map_markers_written_as_text_are_valid_geojson_whatever_the_address(
    city: dict[str, Any], engine: Engine
) -> None:
    """The bbox answer is written as text, not through dicts: an address with quotes, backslashes, a newline
    and Cyrillic must still parse back exactly, and overdue marks and names must be right."""
    from sqlalchemy import update

    from storage.tables import tickets as rows

    address = 'ул. "Кривая" \\ 5\n</script>'
    await engine.db.run(
        lambda store: store.conn.execute(
            update(rows).where(rows.c.number == city["pothole"]).values(address=address)
        )
    )
    session = await signed_in(city["dispatcher"])
    async with session, session.get(city["web"] + "/web/api/tickets?bbox=104,52,105,53") as data:
        assert data.content_type == "application/geo+json"
        doc = json.loads(await data.text())
    assert doc["type"] == "FeatureCollection" and doc["truncated"] is False
    by_id = {f["id"]: f for f in doc["features"]}
    pothole = by_id[city["pothole"]]
    assert pothole["properties"]["address"] == address
    assert pothole["geometry"] == {"type": "Point", "coordinates": [ROADS_POINT[1], ROADS_POINT[0]]}
    assert pothole["properties"]["status"] == "assigned" and pothole["properties"]["overdue"] is False
    assert pothole["properties"]["organisation"] and pothole["properties"]["category"] != "roads"
