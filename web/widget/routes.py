"""The widget's routes on the shared server. Everything the browser sends is hostile:

- **Who**: a signed token (bots/widget/identity.py) in the `X-Widget-Token` header (the panel keeps it in
  the page's localStorage) or the HttpOnly cookie; a forged or malformed one is refused (401) before anything
  is read. Every query is scoped to the token's own chat id: there is no resident id in any URL, and photo
  links are bound to the resident they were shown to.
- **Where from**: a request carrying an `Origin` is served only for this server's own origin and those in
  `WIDGET_ORIGINS` (403 otherwise); CORS answers name exactly that origin. Every API call must carry the
  `X-Widget` header, which no form or plain link can send cross-site (CSRF), and JSON must say so.
- **How much**: bodies are read up to a bound (JSON 96 KiB; photos `MAX_PHOTOS` of `MAX_MB` each, at most
  `HTTP_MAX_BODY_BYTES` in all, chunked or not) and parsed strictly; a resident and an address are
  rate-limited. Every refusal is a JSON `{error, message}` with the message in the resident's language.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import BodyPartReader, web

from bots.app import App
from bots.widget.channel import Conversations, Unavailable, chat_of
from bots.widget.identity import Identity, load_identity
from bots.widget.limits import UPLOAD_COST, RateLimits
from bots.widget.live import LIVE
from bots.widget.render import render
from bots.widget.translate import BODY_MAX, BadAction, event_id, language, parse_body, translate
from bots.widget.webapps import telegram_user, vk_user
from core.geo import GeocoderError, city_bounds
from core.messages import ChatRef, Incoming
from core.payload import decode_reply
from core.photo_limits import MAX_MB, MAX_PHOTOS
from core.texts import LANGUAGES, catalogue, normalise_language, t

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LEAFLET = Path(__file__).parents[1] / "node_modules" / "leaflet" / "dist"
COOKIE = "otklik_widget"
COOKIE_DAYS = 365
POLL_SECONDS = 15.0
"""An open event stream looks at the inbox this often even when not woken (another process delivered), and
sends a keep-alive comment so proxies keep it open."""
STREAM_BATCH = 50
STREAMS_PER_RESIDENT = 8
"""Open event streams one resident may hold (tabs of the city's site): more is a loop or an attack."""
GEOCODE_TIMEOUT = 5.0
QUERY_MAX = 200
CAPTION_MAX = 2000
_SHA = re.compile(r"[0-9a-f]{64}")
_AFTER = re.compile(r"\d{1,18}")
API_HEADERS = "Content-Type, X-Widget, X-Widget-Token, X-Widget-Lang"
MESSENGER_FRAMES = {"telegram": "https://web.telegram.org", "vk": "https://vk.com https://*.vk.com"}
"""Where the messengers' web versions frame a Web App / Mini App (their mobile apps use a web view)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE = web.AppKey("widget", "WidgetDoor")


class Refused(Exception):
    """An answer other than success: status, code, and the catalogue key of the message."""

    def __init__(self, status: int, code: str, key: str, **params: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.key, self.params = status, code, key, params


def allowed_origins(setting: str) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/") for o in setting.split(",") if o.strip() and o.strip() != "self")


class WidgetDoor:
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        self.identity: Identity = load_identity(app.settings)
        self.conversations = Conversations(app)
        self.limits = RateLimits(app.settings.widget_rate_per_minute)
        self.origins = allowed_origins(app.settings.widget_origins)
        self.closing = asyncio.Event()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )
        self.script_text = _script(self.templates)

    # --- the edges: language, origin, token, limits ------------------------------------------------------
    def lang(self, request: web.Request) -> str:
        said = request.headers.get("X-Widget-Lang") or request.query.get("lang")
        if said in LANGUAGES:
            return str(said)
        accept = request.headers.get("Accept-Language", "")[:100].lower()
        first = accept.split(",")[0].split("-")[0].strip()
        return normalise_language(first if first in LANGUAGES else None, self.settings.default_language)

    def origin_allowed(self, request: web.Request) -> str | None:
        """The request's Origin when it is allowed ("" when none was sent); None when refused."""
        origin = request.headers.get("Origin")
        if origin is None:
            return ""
        if self.own(origin, request) or origin in self.origins:
            return origin
        return None

    @staticmethod
    def own(origin: str, request: web.Request) -> bool:
        """This server's own pages (/chat, the map): the same host, over either scheme, since a proxy that
        terminates TLS hands us plain HTTP for what the browser calls https://."""
        return origin in (f"http://{request.host}", f"https://{request.host}")

    def frame_ancestors(self) -> str:
        return " ".join(["'self'", *sorted(self.origins)])

    def chat_id(self, request: web.Request, *, required: bool = True) -> str | None:
        header = request.headers.get("X-Widget-Token")
        token = header if header is not None else request.cookies.get(COOKIE)
        chat_id = self.identity.chat_id(token)
        if chat_id is None and required:
            raise Refused(401, "token", "widget.error.token")
        return chat_id

    def limit(self, request: web.Request, chat_id: str, cost: float = 1.0) -> None:
        wait = self.limits.take(chat_id, request.remote or "", cost)
        if wait:
            raise Refused(429, "rate", "widget.error.rate", seconds=max(1, round(wait)))

    async def json_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise Refused(415, "content_type", "widget.error.bad_request")
        if request.content_length is not None and request.content_length > BODY_MAX:
            raise Refused(413, "too_large", "widget.error.too_long")
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(64 * 1024):  # read() may return part of what came
            size += len(chunk)
            if size > BODY_MAX:
                raise Refused(413, "too_large", "widget.error.too_long")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return parse_body(raw)
        except BadAction as exc:
            if exc.code == "too_large":
                raise Refused(413, "too_large", "widget.error.too_long") from None
            raise Refused(400, exc.code, "widget.error.bad_request") from None

    def api(self, handler: Handler) -> Handler:
        """CORS, CSRF, refusals in the resident's language, and transient failures as 503 (retry)."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            origin = self.origin_allowed(request)
            lang = self.lang(request)
            try:
                if origin is None:
                    raise Refused(403, "origin", "widget.error.origin")
                if request.method != "OPTIONS" and request.headers.get("X-Widget") != "1":
                    raise Refused(403, "csrf", "widget.error.bad_request")
                response = await handler(request)
            except Refused as refused:
                response = web.json_response(
                    {"error": refused.code, "message": t(lang, refused.key, **refused.params)},
                    status=refused.status,
                )
                if refused.status == 429:
                    response.headers["Retry-After"] = str(refused.params.get("seconds", 1))
            except Unavailable:
                response = web.json_response(
                    {"error": "unavailable", "message": t(lang, "channel.error")}, status=503
                )
            if response.prepared:  # an event stream set its own headers before it started
                return response
            if origin:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
            response.headers["Cache-Control"] = "no-store"
            return response

        return wrapped

    async def preflight(self, request: web.Request) -> web.Response:
        origin = self.origin_allowed(request)
        if not origin:
            return web.Response(status=403)
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": API_HEADERS,
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )

    def replies(self, chat_id: str, replies: list[Any]) -> list[dict[str, Any]]:
        return [render(reply, chat_id, self.identity) for reply in replies]

    # --- the API ------------------------------------------------------------------------------------------
    async def session(self, request: web.Request) -> web.StreamResponse:
        """Open a panel: the resident's token (a new one when none or a forged one came), what to show first,
        and how many delivered messages they have not seen."""
        body = await self.json_body(request)
        if set(body) - {"lang"}:
            raise Refused(400, "fields", "widget.error.bad_request")
        lang = language(body.get("lang")) or self.lang(request)
        chat_id = self.chat_id(request, required=False)
        token = request.headers.get("X-Widget-Token") or request.cookies.get(COOKIE)
        if chat_id is None:
            token = self.identity.issue()
            chat_id = self.identity.chat_id(token)
            assert chat_id is not None
        self.limit(request, chat_id)
        replies = await self.conversations.open(chat_id, lang)
        unread = await self.app.db.run(lambda uow: uow.widget_inbox.unread(chat_id))
        response = web.json_response(
            {"token": token, "replies": self.replies(chat_id, replies), "unread": unread}
        )
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        response.set_cookie(
            COOKIE,
            str(token),
            max_age=COOKIE_DAYS * 86400,
            path="/widget/",
            httponly=True,
            secure=secure,
            samesite="None" if secure else "Lax",
        )
        return response

    async def send(self, request: web.Request) -> web.StreamResponse:
        chat_id = self.chat_id(request)
        assert chat_id is not None
        body = await self.json_body(request)
        self.limit(request, chat_id)
        try:
            incoming = translate(body, chat_id, self.lang(request))
        except BadAction as exc:
            raise Refused(400, exc.code, "widget.error.bad_request") from None
        replies = await self.conversations.act(incoming)
        return web.json_response({"replies": self.replies(chat_id, replies)})

    async def photos(self, request: web.Request) -> web.StreamResponse:
        chat_id = self.chat_id(request)
        assert chat_id is not None
        if request.content_type != "multipart/form-data":
            raise Refused(415, "content_type", "widget.error.bad_request")
        if request.content_length is not None and request.content_length > self.upload_budget:
            raise self.too_much()
        self.limit(request, chat_id, UPLOAD_COST)
        key, caption, files = await self._read_photos(request)
        incoming = Incoming(chat_of(chat_id), "w" + key, self.lang(request))
        replies = await self.conversations.upload(incoming, files, caption)
        return web.json_response({"replies": self.replies(chat_id, replies)})

    @property
    def upload_budget(self) -> int:
        """Bytes one upload may carry in all (HTTP_MAX_BODY_BYTES), whatever its framing says."""
        return self.settings.http_max_body_bytes

    def too_much(self) -> Refused:
        megabytes = self.upload_budget // (1024 * 1024)
        return Refused(413, "too_large", "widget.error.too_many_bytes", max_mb=megabytes)

    async def _read_photos(self, request: web.Request) -> tuple[str, str | None, list[bytes | str]]:
        """The multipart upload read part by part, each bounded, all within `upload_budget`: a chunked body
        (no Content-Length) is bounded as well as a declared one."""
        reader = await request.multipart()
        budget = Budget(self.upload_budget, self.too_much)
        key: str | None = None
        caption: str | None = None
        files: list[bytes | str] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Refused(400, "multipart", "widget.error.bad_request")
            if part.name == "id" and key is None:
                try:
                    key = event_id((await budget.read(part, 80) or b"").decode("ascii", "replace"))
                except BadAction:
                    raise Refused(400, "id", "widget.error.bad_request") from None
            elif part.name == "caption" and caption is None:
                text = await budget.read(part, CAPTION_MAX * 4)
                if text is None:
                    raise Refused(413, "too_large", "widget.error.too_long")
                caption = text.decode("utf-8", "replace")[:CAPTION_MAX]
            elif part.name == "photo":
                if len(files) >= MAX_PHOTOS:
                    raise Refused(413, "too_many", "widget.error.too_many_photos", max=MAX_PHOTOS)
                data = await budget.read(part, MAX_MB * 1024 * 1024)
                files.append(data if data is not None else "photo_too_large")
            else:
                raise Refused(400, "multipart", "widget.error.bad_request")
        if key is None or not files:
            raise Refused(400, "multipart", "widget.error.bad_request")
        return key, caption or None, files

    async def read(self, request: web.Request) -> web.StreamResponse:
        chat_id = self.chat_id(request)
        assert chat_id is not None
        body = await self.json_body(request)
        up_to = body.get("up_to")
        if set(body) - {"up_to"}:
            raise Refused(400, "fields", "widget.error.bad_request")
        if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 <= up_to < 2**62:
            raise Refused(400, "up_to", "widget.error.bad_request")
        now = datetime.now(UTC)
        await self.app.db.run(lambda uow: uow.widget_inbox.mark_read(chat_id, up_to, now))
        unread = await self.app.db.run(lambda uow: uow.widget_inbox.unread(chat_id))
        return web.json_response({"unread": unread})

    async def geocode(self, request: web.Request) -> web.StreamResponse:
        """Address search for the map picker, through the engine's geocoder, inside the city's bounds."""
        chat_id = self.chat_id(request)
        assert chat_id is not None
        query = request.query.get("q", "").strip()
        if not 2 <= len(query) <= QUERY_MAX:
            raise Refused(400, "query", "widget.error.bad_request")
        self.limit(request, chat_id)
        engine = self.app.engine
        if engine.geocoder is None:
            return web.json_response({"places": [], "off": True})
        lang = self.lang(request)
        try:
            found = await asyncio.wait_for(
                engine.geocoder.search(query, lang, city_bounds(engine.municipality), 5), GEOCODE_TIMEOUT
            )
        except (GeocoderError, TimeoutError):
            raise Refused(503, "geocoder", "widget.error.geocoder") from None
        places = [
            {"label": place.label, "lat": place.lat, "lon": place.lon}
            for place in found
            if engine.municipality.contains(place.lat, place.lon)
        ]
        return web.json_response({"places": places})

    async def webapp_point(self, request: web.Request) -> web.StreamResponse:
        """The map page opened as a Telegram Web App or a VK Mini App returns a point: the platform's signed
        launch data says which messenger resident it is (forged: 403). The pin goes through the engine as
        that resident's update; the answers reach them in their messenger through the outbox."""
        body = await self.json_body(request)
        if set(body) - {"id", "platform", "data", "lat", "lon", "lang"}:
            raise Refused(400, "fields", "widget.error.bad_request")
        chat = self._webapp_chat(body.get("platform"), body.get("data"))
        self.limit(request, chat.key)
        try:
            point = translate(
                {"id": body.get("id"), "kind": "location", "lat": body.get("lat"), "lon": body.get("lon")},
                chat.chat_id,
                None,
            )
        except BadAction as exc:
            raise Refused(400, exc.code, "widget.error.bad_request") from None
        incoming = replace(point, chat=chat, event_key="map-" + point.event_key)
        await self.conversations.relay(incoming)
        return web.json_response({"ok": True})

    def _webapp_chat(self, platform: object, data: object) -> ChatRef:
        if not isinstance(data, str):
            raise Refused(400, "data", "widget.error.bad_request")
        now = time.time()
        user: str | None = None
        if platform == "telegram" and self.settings.telegram_bot_token is not None:
            user = telegram_user(data, self.settings.telegram_bot_token.get_secret_value(), now)
        elif platform == "vk" and self.settings.vk_app_secret is not None:
            user = vk_user(data, self.settings.vk_app_secret.get_secret_value(), now)
        if user is None:
            raise Refused(403, "signature", "widget.error.signature")
        return ChatRef(str(platform), user, user)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the resident's delivered messages after `after`, then each new one as the
        outbox delivers it (woken by the sender; looked for every POLL_SECONDS in any case)."""
        chat_id = self.chat_id(request)
        assert chat_id is not None
        after_raw = request.query.get("after", "0")
        if not _AFTER.fullmatch(after_raw):
            raise Refused(400, "after", "widget.error.bad_request")
        last = int(after_raw)
        if LIVE.streams(chat_id) >= STREAMS_PER_RESIDENT:
            raise Refused(429, "streams", "widget.error.rate", seconds=int(POLL_SECONDS))
        stream = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                "Vary": "Origin",
            }
        )
        origin = self.origin_allowed(request)
        if origin:
            stream.headers["Access-Control-Allow-Origin"] = origin
            stream.headers["Access-Control-Allow-Credentials"] = "true"
        await stream.prepare(request)
        woken = LIVE.subscribe(chat_id)
        try:
            await stream.write(b": open\n\n")
            while not self.closing.is_set():
                woken.clear()
                sent, last = await self._stream_batch(stream, chat_id, last)
                if sent == STREAM_BATCH:
                    continue
                try:
                    await asyncio.wait_for(woken.wait(), POLL_SECONDS)
                except TimeoutError:
                    await stream.write(b": ping\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            LIVE.unsubscribe(chat_id, woken)
        return stream

    async def _stream_batch(self, stream: web.StreamResponse, chat_id: str, after: int) -> tuple[int, int]:
        """Write the messages after `after` as events; how many, and the last id written."""
        items = await self.app.db.run(lambda uow: uow.widget_inbox.after(chat_id, after, STREAM_BATCH))
        if not items:
            return 0, after
        unread = await self.app.db.run(lambda uow: uow.widget_inbox.unread(chat_id))
        for item in items:
            reply = self.replies(chat_id, [decode_reply(chat_of(chat_id), item.payload)])[0]
            data = json.dumps({"id": item.id, "read": item.read, "unread": unread, "reply": reply})
            await stream.write(f"id: {item.id}\nevent: message\ndata: {data}\n\n".encode())
        return len(items), items[-1].id

    async def photo(self, request: web.Request) -> web.StreamResponse:
        chat_id = self.chat_id(request)
        assert chat_id is not None
        sha = request.match_info["sha"]
        mac = request.query.get("s", "")
        if not _SHA.fullmatch(sha) or not _same(mac, self.identity.photo_mac(chat_id, sha)):
            raise Refused(404, "photo", "widget.error.photo")
        try:
            data = await asyncio.to_thread(self.app.photos.read, sha)
        except (KeyError, FileNotFoundError, ValueError):
            raise Refused(404, "photo", "widget.error.photo") from None
        return web.Response(
            body=data,
            content_type="image/jpeg",
            headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    # --- pages ----------------------------------------------------------------------------------------------
    async def script(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=self.script_text,
            content_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    def page(self, name: str, request: web.Request, framed_by: str = "", **values: Any) -> web.Response:
        lang = self.lang(request)
        ancestors = f"{self.frame_ancestors()} {framed_by}".strip()
        html = self.templates.get_template(name).render(lang=lang, ui=ui_texts(lang), **values)
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Content-Security-Policy": f"frame-ancestors {ancestors}",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return self.page("chat.html", request, city=self.app.engine.municipality.name(self.lang(request)))

    async def map(self, request: web.Request) -> web.StreamResponse:
        """The map picker, framed by the panel: it posts the chosen point to the page that opened it, whose
        origin must be this server's own or one in WIDGET_ORIGINS."""
        app = request.query.get("app", "")
        parent = request.query.get("origin", "")
        if app not in ("", "telegram", "vk"):
            raise web.HTTPBadRequest(text="unknown app")
        if not app and not self.own(parent, request) and parent not in self.origins:
            raise web.HTTPForbidden(text="origin not allowed")
        municipality = self.app.engine.municipality
        bounds = city_bounds(municipality)
        config = {
            "bounds": [[bounds.south, bounds.west], [bounds.north, bounds.east]],
            "tiles": self.settings.widget_tiles_url,
            "parent": "" if app else parent,
            "app": app,
            "search": self.app.engine.geocoder is not None and not app,
        }
        framed_by = MESSENGER_FRAMES.get(app, "")
        return self.page("map.html", request, config=config, framed_by=framed_by)


class Budget:
    """Bytes left for one request's parts; past it the request is refused at once."""

    def __init__(self, left: int, refusal: Callable[[], Refused]) -> None:
        self.left = left
        self.refusal = refusal

    async def read(self, part: BodyPartReader, limit: int) -> bytes | None:
        """The part, or None when it is longer than `limit` (the rest is read off and counted, not kept)."""
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(256 * 1024):
            self.left -= len(chunk)
            if self.left < 0:
                raise self.refusal()
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
        return b"".join(chunks) if size <= limit else None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def ui_texts(lang: str) -> dict[str, str]:
    """The panel's own words (`widget.ui.*`) in one language."""
    prefix = "widget.ui."
    return {key.removeprefix(prefix): t(lang, key) for key in catalogue(lang) if key.startswith(prefix)}


def _script(templates: jinja2.Environment) -> str:
    texts = {lang: ui_texts(lang) for lang in LANGUAGES}
    return templates.get_template("widget.js").render(
        ui=json.dumps(texts, ensure_ascii=False).replace("</", "<\\/"), max_photos=MAX_PHOTOS
    )


def install(http: web.Application, app: App) -> None:
    """Nothing unless WIDGET_ORIGINS is set: the widget is a channel the operator turns on."""
    if not app.settings.widget_origins.strip():
        return
    door = WidgetDoor(app)
    http[STATE] = door

    async def closing(_: web.Application) -> None:
        door.closing.set()
        LIVE.wake_all()

    http.on_shutdown.append(closing)
    router = http.router
    router.add_get("/widget.js", door.script)
    router.add_get("/chat", door.chat)
    router.add_get("/widget/map", door.map)
    router.add_static("/widget/static/", HERE / "static", append_version=False)
    router.add_static("/widget/leaflet/", LEAFLET, append_version=False)
    for path, handler, method in (
        ("/widget/api/session", door.session, "POST"),
        ("/widget/api/send", door.send, "POST"),
        ("/widget/api/photos", door.photos, "POST"),
        ("/widget/api/read", door.read, "POST"),
        ("/widget/api/events", door.events, "GET"),
        ("/widget/api/geocode", door.geocode, "GET"),
        ("/widget/api/webapp/point", door.webapp_point, "POST"),
        ("/widget/photo/{sha}", door.photo, "GET"),
    ):
        router.add_route(method, path, door.api(handler))
        router.add_route("OPTIONS", path, door.preflight)
