"""The widget's JSON API as the panel uses it, over the real engine and storage: identity, origins, CSRF,
strict parsing, rate limits, and answers in the resident's language."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
from PIL import Image

from bots.app import App
from bots.widget.render import photo_url
from core.messages import ChatRef, Photo, Reply
from core.texts import t
from tests.fakes import serve
from tests.fakes.images import photo, png
from tests.widget_support import Panel, Site, deliver, identity, site, widget, widget_app, with_gps
from web.server import build_http

__all__ = ["site", "widget", "widget_app"]


async def test_a_new_resident_is_greeted_in_the_page_language_and_gets_a_signed_token(widget: str) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget, lang="en")
        async with session.post(
            widget + "/widget/api/session", json={"lang": "en"}, headers=panel.headers()
        ) as response:
            assert response.status == 200
            body = await response.json()
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "Path=/widget/" in cookie
        assert body["token"].count(".") == 1 and body["token"] in cookie
        assert body["replies"][0]["text"] == t("en", "menu.welcome")
        assert body["unread"] == 0
        assert body["replies"][-1]["buttons"], "the main menu's buttons"


async def test_a_forged_token_is_refused_in_the_residents_language(widget: str) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget, lang="en")
        await panel.open()
        random, _mac = panel.token.split(".")
        for forged in (random + ".AAAAAAAAAAAAAAAAAAAAAA", "x" * 500, "no-dot", ""):
            panel.token = forged
            status, body = await panel.send("text", text="hello")
            assert status == 401, forged
            assert body == {"error": "token", "message": t("en", "widget.error.token")}


async def test_a_forged_token_gets_a_new_identity_not_someone_elses(widget: str) -> None:
    async with aiohttp.ClientSession() as session:
        first = Panel(session, widget)
        await first.open()
        await first.texts("button", data="menu:new")
        stranger = Panel(aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()), widget)
        try:
            stranger.token = first.token.split(".")[0] + ".forged"
            body = await stranger.open()
            assert body["token"] != first.token
            assert body["replies"][0]["text"] == t("ru", "menu.welcome")  # a new resident, not the report
        finally:
            await stranger.session.close()


async def test_a_photo_link_works_only_for_the_resident_it_was_shown_to(widget: str, widget_app: App) -> None:
    stored = widget_app.photos.store(photo(200, 100))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as one_session:
        one = Panel(one_session, widget)
        await one.open()
        other = Panel(one_session, widget)
        await other.open()
        chat_one = identity(widget_app).chat_id(one.token)
        assert chat_one is not None
        url = widget + photo_url(stored.sha256, chat_one, identity(widget_app))
        async with one_session.get(url, headers=one.headers(json=False)) as response:
            assert response.status == 200
            assert (await response.read())[:2] == b"\xff\xd8"
        async with one_session.get(url, headers=other.headers(json=False)) as response:
            assert response.status == 404
        async with one_session.get(url.split("?")[0], headers=one.headers(json=False)) as response:
            assert response.status == 404


async def test_an_origin_not_in_widget_origins_is_refused(widget: str, site: Site) -> None:
    async with aiohttp.ClientSession() as session:
        evil = Panel(session, widget, origin="https://evil.example")
        status, body = await evil.post("/widget/api/session", {"lang": "ru"})
        assert status == 403 and body["message"] == t("ru", "widget.error.origin")
        async with session.options(
            widget + "/widget/api/send",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        ) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers

        city = Panel(session, widget, origin=site.url)
        async with session.options(
            widget + "/widget/api/send",
            headers={"Origin": site.url, "Access-Control-Request-Method": "POST"},
        ) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == site.url
            assert "X-Widget-Token" in response.headers["Access-Control-Allow-Headers"]
        await city.open()
        async with session.get(widget + "/chat?lang=en") as response:
            policy = response.headers["Content-Security-Policy"]
            assert policy == f"frame-ancestors 'self' {site.url}"
        async with session.get(widget + "/widget/map", params={"origin": "https://evil.example"}) as response:
            assert response.status == 403


async def test_a_request_without_the_widget_header_is_refused_as_cross_site(widget: str) -> None:
    """A form or a link on another site cannot add headers: without `X-Widget` nothing happens (CSRF)."""
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget)
        await panel.open()
        headers = panel.headers()
        del headers["X-Widget"]
        async with session.post(
            widget + "/widget/api/send", json={"id": "abcdefgh", "kind": "text", "text": "x"}, headers=headers
        ) as response:
            assert response.status == 403
        form = aiohttp.FormData({"id": "abcdefgh", "kind": "text", "text": "x"})
        async with session.post(
            widget + "/widget/api/send", data=form, headers=panel.headers(json=False)
        ) as r:
            assert r.status == 415


async def test_bad_input_is_answered_in_the_residents_language(widget: str) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget, lang="en")
        await panel.open()
        bad_request = t("en", "widget.error.bad_request")
        for body in (
            [1, 2],
            {"id": "abcdefgh", "kind": "sticker"},
            {"id": "short", "kind": "text", "text": "hi"},
            {"id": "abcdefgh", "kind": "text", "text": 5},
            {"id": "abcdefgh", "kind": "text", "text": "hi", "admin": True},
            {"id": "abcdefgh", "kind": "location", "lat": 1e400, "lon": 0},
            {"id": "abcdefgh", "kind": "location", "lat": True, "lon": 0},
            {"id": "abcdefgh", "kind": "button", "data": "x" * 300},
        ):
            status, answer = await panel.post("/widget/api/send", body)
            assert (status, answer["message"]) == (400, bad_request), body
        async with session.post(
            widget + "/widget/api/send",
            data=b'{"id": "abcdefgh", "kind": "location", "lat": NaN, "lon": 1}',
            headers=panel.headers(),
        ) as response:
            assert response.status == 400
        status, answer = await panel.post(
            "/widget/api/send", {"id": "abcdefgh", "kind": "text", "text": "я" * 60_000}
        )
        assert (status, answer["message"]) == (413, t("en", "widget.error.too_long"))


CENTRE = {"lat": 52.2870, "lon": 104.2810}


async def to_description(panel: Panel) -> None:
    await panel.texts("button", data="menu:new")
    subcategories = await panel.replies("button", data="cat:roads")
    first = subcategories[-1]["buttons"][0][0]["data"]
    asked = await panel.replies("button", data=first)
    assert asked[-1]["ask_location"]
    assert await panel.texts("location", **CENTRE) == [
        t(panel.lang, "report.description.ask", min=10, count=2000)
    ]


async def test_a_ten_thousand_character_description_gets_the_dialogs_answer(widget: str) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget, lang="en")
        await panel.open()
        await to_description(panel)
        texts = await panel.texts("text", text="x" * 10_000)
        assert texts[0] == t("en", "report.description.too_long", count=10_000, max=2000)
        texts = await panel.texts("text", text="A deep pothole at the bus stop, cars swerve.")
        assert texts == [t("en", "report.photos.ask", max=5)]


async def test_a_burst_over_the_rate_limit_is_told_when_to_try_again(widget: str) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget)
        await panel.open()
        answers = [await panel.send("button", data="menu:help") for _ in range(40)]
        refused = [body for status, body in answers if status == 429]
        assert refused, "30 a minute after a burst of 30: forty at once cannot all pass"
        assert all(status == 200 for status, _ in answers[:29])
        assert refused[0]["message"].startswith(t("ru", "widget.error.rate", seconds=2)[:20])


async def upload(panel: Panel, *files: bytes) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("id", secrets.token_hex(8))
    for data in files:
        form.add_field("photo", data, filename="p.jpg", content_type="image/jpeg")
    async with panel.session.post(
        panel.base + "/widget/api/photos", data=form, headers=panel.headers(json=False)
    ) as response:
        return response.status, await response.json()


async def test_photos_are_checked_as_for_the_bots(widget: str, widget_app: App) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget, lang="en")
        await panel.open()
        status, body = await upload(panel, photo(400, 300))  # at the menu: answered, not stored
        assert status == 200
        await to_description(panel)
        await panel.texts("text", text="A deep pothole at the bus stop, cars swerve.")
        status, body = await upload(panel, b"this is not a picture at all")
        assert status == 200
        assert body["replies"][0]["text"].startswith(t("en", "input.bad_photo")[:20])
        status, body = await upload(panel, png(9400, 9400))
        assert body["replies"][0]["text"].startswith(
            t("en", "input.photo_too_many_pixels", max_mp=40, webp_mp=10)[:20]
        )
        status, body = await upload(panel, *[photo(300, 200)] * 6)
        assert (status, body["message"]) == (413, t("en", "widget.error.too_many_photos", max=5))
        status, body = await upload(panel, with_gps(photo(4000, 3000)))
        assert status == 200 and "1" in body["replies"][0]["text"]
        kept = [Image.open(path) for path in widget_app.photos.root.rglob("*.jpg")]
        assert len(kept) == 1, "only the photo a step took was stored"
        assert kept[0].size == (2560, 1920)
        assert not kept[0].getexif().get_ifd(0x8825), "the GPS position is stripped"


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict]:
    """The next `count` events of a stream (bounded by the caller's timeout)."""
    events: list[dict] = []
    buffer = b""
    while len(events) < count:
        buffer += await response.content.readany()
        while b"\n\n" in buffer:
            chunk, buffer = buffer.split(b"\n\n", 1)
            data = [line[6:] for line in chunk.split(b"\n") if line.startswith(b"data: ")]
            if data:
                events.append(json.loads(b"".join(data)))
    return events


async def test_completion_photos_reach_the_open_stream_and_only_their_resident_can_load_them(
    widget: str, widget_app: App
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        panel = Panel(session, widget, lang="en")
        await panel.open()
        chat_id = identity(widget_app).chat_id(panel.token)
        assert chat_id is not None
        stored = widget_app.photos.store(photo(800, 600))
        await widget_app.db.run(lambda uow: uow.photo_registry.register(stored))
        events_url = widget + "/widget/api/events?after=0"
        async with session.get(events_url, headers=panel.headers(json=False)) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            notice = Reply(
                text="Work done on report No. 7.",
                photos=(Photo(stored.sha256),),
                chat=ChatRef("widget", chat_id, chat_id),
            )
            await widget_app.db.run(lambda uow: uow.outbox.enqueue(notice, datetime.now(UTC)))
            assert await deliver(widget_app) == 1
            (event,) = await asyncio.wait_for(read_events(stream, 1), 10)
        assert event["reply"]["text"] == "Work done on report No. 7."
        assert event["unread"] == 1 and event["read"] is False
        (url,) = event["reply"]["photos"]
        async with session.get(widget + url, headers=panel.headers(json=False)) as response:
            assert response.status == 200 and await response.read() == widget_app.photos.read(stored.sha256)
        other = Panel(session, widget)
        await other.open()
        async with session.get(widget + url, headers=other.headers(json=False)) as response:
            assert response.status == 404
        status, body = await panel.post("/widget/api/read", {"up_to": event["id"]})
        assert (status, body) == (200, {"unread": 0})
        assert (await panel.open())["unread"] == 0


async def test_one_resident_cannot_hold_unbounded_event_streams(widget: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        panel = Panel(session, widget)
        await panel.open()
        url, headers = widget + "/widget/api/events", panel.headers(json=False)
        streams = []
        try:
            for _ in range(8):
                response = await session.get(url, headers=headers)
                assert response.status == 200
                await response.content.readuntil(b"\n\n")  # ": open": the stream is registered
                streams.append(response)
            async with session.get(url, headers=headers) as refused:
                assert refused.status == 429
        finally:
            for response in streams:
                response.close()
        other = Panel(session, widget)
        await other.open()
        async with session.get(url, headers=other.headers(json=False)) as response:
            assert response.status == 200


async def test_oversized_uploads_are_refused_with_an_answer(widget: str, widget_app: App) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget, lang="en")
        await panel.open()
        await to_description(panel)
        await panel.texts("text", text="A deep pothole at the bus stop, cars swerve.")
        status, body = await upload(panel, b"\xff\xd8" + secrets.token_bytes(21 * 1024 * 1024))
        assert status == 200
        assert body["replies"][0]["text"] == t("en", "input.photo_too_large", max_mb=20)
        assert not list(widget_app.photos.root.rglob("*.jpg"))

    small = widget_app.settings.model_copy(update={"http_max_body_bytes": 1024 * 1024})
    runner, url = await serve(build_http(replace(widget_app, settings=small)))
    try:
        async with aiohttp.ClientSession() as session:
            panel = Panel(session, url, lang="en")
            await panel.open()
            status, body = await upload(panel, photo(300, 200), secrets.token_bytes(1024 * 1024))
            assert (status, body["message"]) == (413, t("en", "widget.error.too_many_bytes", max_mb=1))
    finally:
        await runner.cleanup()


def test_widget_origins_must_be_origins_since_they_go_into_headers() -> None:
    from pydantic import ValidationError

    from bots.settings import Settings, describe_errors

    assert (
        Settings(_env_file=None, widget_origins=" https://city.ru,self ").widget_origins
        == "https://city.ru,self"
    )  # type: ignore[call-arg]
    for bad in ("city.ru", "https://city.ru; script-src *", "https://city.ru/path", "javascript:alert(1)"):
        try:
            Settings(_env_file=None, widget_origins=bad)  # type: ignore[call-arg]
        except ValidationError as exc:
            (line,) = describe_errors(exc)
            assert line.startswith("WIDGET_ORIGINS: ") and "not an origin" in line
        else:
            raise AssertionError(bad)


async def test_an_action_sent_again_after_a_lost_answer_is_handled_once(widget: str, widget_app: App) -> None:
    async with aiohttp.ClientSession() as session:
        panel = Panel(session, widget)
        await panel.open()
        await to_description(panel)
        action = {"id": "retry-0001", "kind": "text", "text": "Глубокая яма у остановки, машины объезжают."}
        first = await panel.post("/widget/api/send", action)
        again = await panel.post("/widget/api/send", action)
        asked = t("ru", "report.photos.ask", max=5)
        assert [r["text"] for r in first[1]["replies"]] == [asked]
        assert [r["text"] for r in again[1]["replies"]] == [asked]  # asked again, not taken twice
        chat = identity(widget_app).chat_id(panel.token)
        state = await widget_app.db.run(lambda uow: uow.dialogs.load(ChatRef("widget", chat or "")))
        assert state is not None and state["slots"]["description"].startswith("Глубокая яма")


async def test_the_servers_own_pages_behind_a_tls_proxy_are_not_refused(widget: str) -> None:
    """A proxy terminating TLS hands us http; the browser says Origin: https://<our host>."""
    async with aiohttp.ClientSession() as session:
        host = widget.removeprefix("http://")
        panel = Panel(session, widget, origin=f"https://{host}")
        assert (await panel.open())["token"]
        async with session.get(widget + "/widget/map", params={"origin": f"https://{host}"}) as response:
            assert response.status == 200
        lookalike = Panel(session, widget, origin=f"https://{host}.evil.example")
        status, _body = await lookalike.post("/widget/api/session", {"lang": "ru"})
        assert status == 403
