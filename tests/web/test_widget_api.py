"""The widget's JSON API as the panel uses it, over the real engine and storage: identity, origins, CSRF,
strict parsing, rate limits, and answers in the resident's language."""

from __future__ import annotations

import aiohttp

from core.texts import t
from tests.widget_support import Panel, site, widget, widget_app

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
