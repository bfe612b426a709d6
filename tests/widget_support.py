"""The widget's test doors: the shared server with the widget on (WIDGET_ORIGINS naming a host site on
another origin), that host site (a page embedding widget.js, with hostile CSS), and helpers to talk to the
API as the panel does and to have the outbox deliver through the widget's sender."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bots.app import App
from bots.delivery import DeliveryWorker
from bots.widget.identity import Identity, load_identity
from bots.widget.sender import WidgetSender
from core import lifecycle
from core.domain.tickets import Action
from tests.fakes import serve
from web.server import build_http

HOSTILE_CSS = """
* { color: rgb(255, 0, 0) !important; font-size: 40px !important; }
button { display: none !important; }
div { background: rgb(0, 255, 0) !important; }
otklik-widget { opacity: 0.1; }
"""


@dataclass
class Site:
    """The city's website: a page that embeds the widget with one line."""

    url: str = ""
    widget: str = ""
    lang: str = "ru"
    extra: list[str] = field(default_factory=list)

    async def page(self, _: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=f"""<!doctype html><html lang="{self.lang}"><head><meta charset="utf-8">
<style>{HOSTILE_CSS}</style></head><body><h1>Администрация города</h1><p class="news">Новости</p>
<script src="{self.widget}/widget.js" async></script></body></html>""",
        )


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    holder = Site()
    http = web.Application()
    http.router.add_get("/", holder.page)
    runner, url = await serve(http)
    holder.url = url
    yield holder
    await runner.cleanup()


@pytest.fixture
def widget_app(app: App, site: Site) -> App:
    settings = app.settings.model_copy(
        update={"widget_origins": site.url, "widget_secret": None, "widget_rate_per_minute": 30}
    )
    return replace(app, settings=settings)


@pytest.fixture
async def widget(widget_app: App, site: Site) -> AsyncIterator[str]:
    """The shared server with the widget on; yields its base URL (the site's page embeds it)."""
    runner, url = await serve(build_http(widget_app))
    site.widget = url
    yield url
    await runner.cleanup()


class Panel:
    """Talks to the API as widget.js does."""

    def __init__(self, session: aiohttp.ClientSession, base: str, lang: str = "ru", origin: str = "") -> None:
        self.session = session
        self.base = base
        self.lang = lang
        self.origin = origin
        self.token = ""

    def headers(self, json: bool = True) -> dict[str, str]:
        h = {"X-Widget": "1", "X-Widget-Lang": self.lang}
        if self.token:
            h["X-Widget-Token"] = self.token
        if self.origin:
            h["Origin"] = self.origin
        if json:
            h["Content-Type"] = "application/json"
        return h

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.session.post(self.base + path, json=body, headers=self.headers()) as response:
            return response.status, await response.json()

    async def open(self) -> dict[str, Any]:
        status, body = await self.post("/widget/api/session", {"lang": self.lang})
        assert status == 200, body
        self.token = body["token"]
        return body

    async def send(self, kind: str, **fields: Any) -> tuple[int, Any]:
        return await self.post("/widget/api/send", {"id": secrets.token_hex(8), "kind": kind, **fields})

    async def texts(self, kind: str, **fields: Any) -> list[str]:
        status, body = await self.send(kind, **fields)
        assert status == 200, body
        return [reply["text"] for reply in body["replies"]]

    async def replies(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        status, body = await self.send(kind, **fields)
        assert status == 200, body
        return list(body["replies"])


def identity(app: App) -> Identity:
    """The server's own token signer (the same secret file in DATA_DIR)."""
    return load_identity(app.settings)


def with_gps(data: bytes) -> bytes:
    """The JPEG with an EXIF GPS position, as a phone camera writes it."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 17.0, 0.0), 3: "E", 4: (104.0, 17.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def deliver(app: App) -> int:
    """Run the outbox once through the widget's sender (as `otklik run`'s worker does)."""
    worker = DeliveryWorker(app.db, {"widget": WidgetSender(app.db)})
    report = await worker.flush(linger=0.0)
    return report.sent


async def staff_comment(app: App, number: int, text: str) -> None:
    """A comment to the resident, written through the core's one lifecycle function."""

    def job(store: Any) -> None:
        tx = lifecycle.Tx(store, app.engine.municipality, app.engine.clock())
        ticket = store.tickets.lock(number)
        assert ticket is not None
        lifecycle.apply(tx, ticket, Action.COMMENT, "system", comment=text)

    await app.db.run(job)


__all__ = [
    "Panel",
    "Site",
    "deliver",
    "identity",
    "site",
    "staff_comment",
    "widget",
    "widget_app",
    "with_gps",
]
