"""The widget's map as a Telegram Web App and a VK Mini App: the platforms' launch signatures are checked on
the server (valid, altered, forged, stale), and a point returned by a messenger resident goes through the
engine as their update, answered in their messenger through the outbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from playwright.async_api import expect
from pydantic import SecretStr

from bots.app import App
from bots.widget.webapps import telegram_user, vk_sign, vk_user
from core.messages import ChatRef, Incoming
from core.texts import t
from tests.fakes import serve
from web.server import build_http

BOT_TOKEN = "123456:TEST-token-for-the-web-app"
VK_SECRET = "vk-mini-app-secret"
RESIDENT = ChatRef("telegram", "777000", "777000")


def init_data(fields: dict[str, str], token: str = BOT_TOKEN) -> str:
    """initData as Telegram signs it (core.telegram.org/bots/webapps)."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    signed = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": signed})


def telegram_fields(user_id: int = 777000, at: float | None = None) -> dict[str, str]:
    return {
        "auth_date": str(int(at if at is not None else time.time())),
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps({"id": user_id, "first_name": "Ира", "language_code": "ru"}, ensure_ascii=False),
    }


def test_telegram_init_data_is_trusted_only_with_its_signature() -> None:
    now = time.time()
    good = init_data(telegram_fields())
    assert telegram_user(good, BOT_TOKEN, now) == "777000"
    assert telegram_user(good, "654321:another-bot", now) is None
    assert telegram_user(good.replace("777000", "777001"), BOT_TOKEN, now) is None  # another user
    assert telegram_user(init_data(telegram_fields(), token="654321:x"), BOT_TOKEN, now) is None
    assert telegram_user(init_data(telegram_fields(at=now - 3 * 86400)), BOT_TOKEN, now) is None  # stale
    assert telegram_user(good + "&auth_date=1", BOT_TOKEN, now) is None  # a field twice
    no_hash = urlencode(telegram_fields())
    for forged in (no_hash, "", "%%%", "hash=" + "0" * 64, "x" * 5000):
        assert telegram_user(forged, BOT_TOKEN, now) is None, forged


def test_vk_launch_params_are_trusted_only_with_their_signature() -> None:
    # VK's published example (SevereCloud/vksdk vkapps.ParamsVerify; no vk_ts in it, so no age to check)
    published = (
        "vk_user_id=494075&vk_app_id=6736218&vk_is_app_user=1&vk_are_notifications_enabled=1&vk_language=ru"
        "&vk_access_token_settings=&vk_platform=android&sign=htQFduJpLxz7ribXRZpDFUH-XEUhC9rBPTJkjUFEkRA"
    )
    now = time.time()
    assert vk_user(published, "wvl68m4dR1UpLrVRli", now, require_ts=False) == "494075"
    assert vk_user(published, "wvl68m4dR1UpLrVRli", now) is None  # without vk_ts: refused by default
    assert vk_user(published.replace("494075", "494076"), "wvl68m4dR1UpLrVRli", now, require_ts=False) is None

    params = {"vk_user_id": "42", "vk_app_id": "1", "vk_ts": str(int(now)), "vk_language": "ru"}
    signed = urlencode({**params, "sign": vk_sign(params, VK_SECRET)})
    assert vk_user("?" + signed, VK_SECRET, now) == "42"
    assert vk_user(signed, "another-secret", now) is None
    stale = {**params, "vk_ts": str(int(now - 3 * 86400))}
    assert vk_user(urlencode({**stale, "sign": vk_sign(stale, VK_SECRET)}), VK_SECRET, now) is None


@pytest.fixture
async def webapp_server(app: App) -> Any:
    settings = app.settings.model_copy(
        update={
            "widget_origins": "self",
            "telegram_bot_token": SecretStr(BOT_TOKEN),
            "vk_app_secret": SecretStr(VK_SECRET),
        }
    )
    served = replace(app, settings=settings)
    runner, url = await serve(build_http(served))
    yield url, served
    await runner.cleanup()


async def at_place_step(app: App, chat: ChatRef = RESIDENT) -> None:
    """A messenger resident in the middle of a report, asked for the place."""
    for n, what in enumerate(({"command": "start"}, {"button": "menu:new"}, {"button": "cat:roads"})):
        replies = await app.engine.handle(Incoming(chat, f"u{n}", "ru", **what))
    first = replies[-1].buttons[0][0][1]
    replies = await app.engine.handle(Incoming(chat, "u9", "ru", button=first))
    assert replies[-1].ask_location


async def outbox_for(app: App, chat: ChatRef) -> list[str]:
    def rows(store: Any) -> list[str]:
        from sqlalchemy import text

        found = store.conn.execute(
            text("SELECT payload FROM outbox WHERE channel = :c AND chat_id = :i ORDER BY id"),
            {"c": chat.channel, "i": chat.chat_id},
        )
        return [(json.loads(p) if isinstance(p, str) else p)["text"] for (p,) in found]

    return await app.db.run(rows)


async def post_point(url: str, platform: str, data: str) -> tuple[int, Any]:
    body = {"id": secrets.token_hex(8), "platform": platform, "data": data, "lat": 52.287, "lon": 104.281}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/widget/api/webapp/point",
            json=body,
            headers={"X-Widget": "1", "X-Widget-Lang": "ru", "Origin": url},
        ) as response,
    ):
        return response.status, await response.json()


async def test_a_point_from_the_telegram_web_app_moves_the_residents_report_on(webapp_server: Any) -> None:
    url, app = webapp_server
    await at_place_step(app)
    forged = init_data(telegram_fields(), token="999:not-our-bot")
    assert await post_point(url, "telegram", forged) == (
        403,
        {"error": "signature", "message": t("ru", "widget.error.signature")},
    )
    assert await outbox_for(app, RESIDENT) == []

    assert await post_point(url, "telegram", init_data(telegram_fields())) == (200, {"ok": True})
    assert await outbox_for(app, RESIDENT) == [t("ru", "report.description.ask", min=10, count=2000)]


async def test_the_map_page_as_a_telegram_web_app_sends_the_clicked_point(
    webapp_server: Any, browser: Any
) -> None:
    url, app = webapp_server
    await at_place_step(app)
    page = await browser.new_page()
    signed = init_data(telegram_fields())
    await page.goto(f"{url}/widget/map?app=telegram&lang=ru#tgWebAppData={quote(signed)}&tgWebAppVersion=7.0")
    await page.locator("#map").click()
    await page.locator("#confirm").click()
    await expect(page.locator("#hint")).to_have_text(t("ru", "widget.ui.map_sent"), timeout=10_000)
    assert await outbox_for(app, RESIDENT) == [t("ru", "report.description.ask", min=10, count=2000)]


async def test_a_point_from_the_vk_mini_app_moves_the_residents_report_on(webapp_server: Any) -> None:
    url, app = webapp_server
    vk_resident = ChatRef("vk", "42", "42")
    await at_place_step(app, vk_resident)
    params = {
        "vk_user_id": "42",
        "vk_app_id": "51234",
        "vk_ts": str(int(time.time())),
        "vk_platform": "desktop_web",
    }
    forged = urlencode({**params, "sign": vk_sign(params, "not-our-app-secret")})
    assert (await post_point(url, "vk", forged))[0] == 403
    altered = urlencode({**params, "vk_user_id": "43", "sign": vk_sign(params, VK_SECRET)})
    assert (await post_point(url, "vk", altered))[0] == 403
    assert await outbox_for(app, vk_resident) == []

    signed = urlencode({**params, "sign": vk_sign(params, VK_SECRET)})
    assert await post_point(url, "vk", signed) == (200, {"ok": True})
    assert await outbox_for(app, vk_resident) == [t("ru", "report.description.ask", min=10, count=2000)]


async def test_the_telegram_bots_map_button_opens_the_page_whose_point_moves_the_report_on(
    app: App, photos: Any
) -> None:
    """The whole loop as `otklik run` composes it: the bot (create_channel, aiogram, on the fake Bot API)
    offers the Web App in the place step, its URL is this server's map page, and the point the page posts
    with Telegram's signed initData goes on in that resident's dialog."""
    from bots.telegram import create_channel
    from tests.fakes.telegram_api import TOKEN, FakeTelegram
    from tests.telegram_support import FAST, Harness, open_report

    public = "https://city.example.org"
    fake = await FakeTelegram().start()
    update = {
        "widget_origins": "self",
        "telegram_bot_token": SecretStr(TOKEN),
        "telegram_api_url": fake.url,
        "web_base_url": public,
    }
    served = replace(app, settings=app.settings.model_copy(update=update))
    runner, url = await serve(build_http(served))
    harness = Harness(fake, app.engine, photos, "aiogram")
    try:
        channel = create_channel(served, FAST)
        assert channel is not None
        await channel.start(None)
        harness.channel = channel
        user = harness.user(user_id=5001)
        await open_report(user, map_offered=True)
        [(label, button_url)] = user.replies[-1].web_apps()
        assert label == t("ru", "messenger_map.button")
        assert button_url == public + "/widget/map?app=telegram&lang=ru"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + button_url.removeprefix(public)) as page,
        ):
            assert page.status == 200 and '"app": "telegram"' in (await page.text())  # the page as a Web App

        assert await post_point(url, "telegram", init_data(telegram_fields(5001), token=TOKEN)) == (
            200,
            {"ok": True},
        )
        resident = ChatRef("telegram", "5001", "5001")
        assert await outbox_for(served, resident) == [t("ru", "report.description.ask", min=10, count=2000)]
    finally:
        await harness.stop()
        await runner.cleanup()
        await fake.stop()

    # an http base URL: Telegram would refuse the button, so the bot offers none
    plain = served.settings.model_copy(update={"web_base_url": "http://127.0.0.1:8080"})
    channel = create_channel(replace(served, settings=plain), FAST)
    assert channel is not None and channel.sender.map_url == ""
    # the widget off (an https base but no map page served): none either
    https_off = served.settings.model_copy(update={"widget_origins": ""})
    channel = create_channel(replace(served, settings=https_off), FAST)
    assert channel is not None and channel.sender.map_url == ""
