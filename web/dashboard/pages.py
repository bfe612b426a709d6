"""The city's web: sign-in through a link from the bot, the map with its list, ticket pages with staff
actions, the dashboard and the exports (README "The city's web").

Every read goes through the session's scope (`Viewer.scope`): staff see their organisation's tickets only,
enforced in the query (a ticket, photo or export of another organisation is a 404, as if it did not exist).
Every change goes through the bot's own functions (web/dashboard/actions.py), so a change made here reaches
the resident through the outbox exactly as one made in the bot does.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from bots.app import App
from core import weblogin
from core.domain.policy import REJECT_REASONS, WAITING, is_overdue
from core.domain.tickets import Status, Ticket
from core.export import BATCH, CONTENT_TYPES, FORMATS, Writer
from core.geo import city_bounds
from core.labels import category_label, local_date, organisation_name, place_label, reason_text
from core.photo_limits import MAX_PHOTOS
from core.ports import TicketPoint
from core.stats import document
from core.texts import t
from web.dashboard import actions, auth, charts, filters
from web.dashboard.auth import Signer, Viewer

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent.parent
VENDOR = {
    "leaflet": WEB / "node_modules" / "leaflet" / "dist",
    "markercluster": WEB / "node_modules" / "leaflet.markercluster" / "dist",
    "chartjs": WEB / "node_modules" / "chart.js" / "dist",
}
PAGE = 50
MAP_MAX = 5000
"""At most this many markers per bbox answer; the answer says when there were more (zoom in)."""
SHA256 = re.compile(r"[0-9a-f]{64}")
STATUS_COLOURS = {
    "new": "#6c757d",
    "assigned": "#0d6efd",
    "in_progress": "#fd7e14",
    "resolved": "#198754",
    "closed": "#20c997",
    "rejected": "#343a40",
    "reopened": "#d63384",
}

FEATURE = (
    '{"type":"Feature","id":%d,"geometry":{"type":"Point","coordinates":[%r,%r]},"properties":{"number":%d,'
    '"status":"%s","status_name":%s,"category":%s,"organisation":%s,"address":%s,"overdue":%s}}'
)
"""One map marker as GeoJSON (RFC 7946); `%r` of a finite float is valid JSON, and the bbox query only
returns tickets with a point."""
_json = json.JSONEncoder(ensure_ascii=False).encode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Desk:
    """The web's handlers over one App: templates, the signer, and the scoped reads."""

    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings
        secret = (
            settings.web_session_secret.get_secret_value().encode() if settings.web_session_secret else None
        )
        self.signer = Signer(secret)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(WEB / "templates"),
            autoescape=True,  # every template, whatever its name: all user text is escaped
            undefined=jinja2.StrictUndefined,
        )
        tile = urlsplit(settings.map_tile_url.replace("{s}", "a"))
        tile_origin = f"{tile.scheme}://{tile.netloc}".replace("://a.", "://*.") if tile.netloc else ""
        self.csp = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob: {tile_origin}; connect-src 'self'; frame-ancestors 'none'; "
            "form-action 'self'; base-uri 'none'"
        )

    @property
    def municipality(self) -> Any:
        return self.app.engine.municipality

    def now(self) -> datetime:
        return self.app.engine.clock()

    # --- rendering ---------------------------------------------------------------------------------------
    def render(
        self, name: str, lang: str, *, status: int = 200, viewer: Viewer | None = None, **values: Any
    ) -> web.Response:
        m = self.municipality
        template = self.templates.get_template(f"dashboard/{name}")
        html = template.render(
            lang=lang,
            t=lambda key, **params: t(lang, key, **params),
            viewer=viewer,
            city=m.name(lang),
            role=t(lang, f"web.role.{viewer.member.role}") if viewer else "",
            org_name=lambda code: organisation_name(m, lang, code),
            status_name=lambda s: t(lang, f"status.{getattr(s, 'value', s)}"),
            local=lambda moment, kind="datetime": local_date(m, lang, moment, kind),
            flash=(flash := values.pop("flash", None)),
            **values,
        )
        response = web.Response(text=html, content_type="text/html", status=status)
        if flash is not None:  # shown once: a reload does not say it again
            response.del_cookie(auth.FLASH_COOKIE, path=auth.COOKIE_PATH)
        self.harden(response)
        return response

    def harden(self, response: web.StreamResponse) -> None:
        response.headers["Content-Security-Policy"] = self.csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        # The sign-in link carries its token in the path: never let it leave in a Referer.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"

    def message(self, lang: str, key: str, status: int, viewer: Viewer | None = None) -> web.Response:
        return self.render("message.html", lang, status=status, viewer=viewer, text=t(lang, key))

    def not_found(self, viewer: Viewer) -> web.Response:
        return self.message(viewer.lang, "web.not_found", 404, viewer)

    # --- who is looking ----------------------------------------------------------------------------------
    async def viewer(self, request: web.Request) -> Viewer | None:
        token = auth.session_token(request, self.signer)
        if token is None:
            return None
        now = self.now()
        member = await self.app.db.run(lambda store: weblogin.session_member(store, token, now))
        if member is None:
            return None
        return Viewer(member, token, self.signer.csrf(token))

    def signed_in(self, handler: Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]) -> Handler:
        """The handler for a live session; anyone else is told how to sign in (401). A POST must also carry
        the session's CSRF token (403 otherwise)."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            viewer = await self.viewer(request)
            lang = auth.accept_language(request, self.app.settings.default_language)
            if viewer is None:
                response = self.message(lang, "web.sign_in_needed", 401)
                auth.clear_session(response)
                return response
            if request.method == "POST":
                if not auth.same_origin(request):
                    return self.message(viewer.lang, "web.csrf", 403, viewer)
                form = await request.post()
                sent = form.get("csrf")
                if not isinstance(sent, str) or not _same(sent, viewer.csrf):
                    log.warning("web: a form without the session's CSRF token was refused (%s)", request.path)
                    return self.message(viewer.lang, "web.csrf", 403, viewer)
            return await handler(request, viewer)

        return wrapped

    # --- sign-in -----------------------------------------------------------------------------------------
    async def login_page(self, request: web.Request) -> web.StreamResponse:
        """Shows who is signing in and a button: a GET never uses the link up, so a messenger's link preview
        cannot spend it."""
        token = request.match_info["token"]
        lang = auth.accept_language(request, self.app.settings.default_language)
        now = self.now()
        found = await self.app.db.run(lambda store: weblogin.check_link(store, token, now))
        if isinstance(found, str):
            return self.message(lang, found, 404 if found == "web.link.invalid" else 410)
        lang = found.language if found.language in ("ru", "en") else lang
        intro = t(
            lang,
            "web.link.intro",
            name=found.name,
            organisation=organisation_name(self.municipality, lang, found.organisation),
            role=t(lang, f"web.role.{found.role}"),
        )
        return self.render("login.html", lang, token=token, intro=intro)

    async def login(self, request: web.Request) -> web.StreamResponse:
        lang = auth.accept_language(request, self.app.settings.default_language)
        if not auth.same_origin(request):
            return self.message(lang, "web.csrf", 403)
        form = await request.post()
        token = form.get("token")
        if not isinstance(token, str):
            return self.message(lang, "web.link.invalid", 404)
        now = self.now()
        done = await self.app.db.run(lambda store: weblogin.redeem(store, token, now))
        if isinstance(done, str):
            return self.message(lang, done, 404 if done == "web.link.invalid" else 410)
        _member, session = done
        response = see_other("/web")
        auth.set_session(response, request, self.signer, session, self.app.settings.web_url)
        self.harden(response)
        return response

    async def logout(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        now = self.now()
        await self.app.db.run(lambda store: weblogin.sign_out(store, viewer.session, now))
        response = self.message(viewer.lang, "web.signed_out", 200)
        auth.clear_session(response)
        return response

    # --- the map and the list ----------------------------------------------------------------------------
    def chosen(self, request: web.Request, viewer: Viewer) -> filters.Chosen:
        return filters.parse(request.query, self.municipality, viewer.scope(), self.now())

    async def map_page(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        chosen = self.chosen(request, viewer)
        before = _number(request.query.get("before", ""))
        where = chosen.where
        rows, count = await self.app.db.run(
            lambda store: (
                store.ticket_search.find(where, PAGE + 1, before),
                store.ticket_search.count(where),
            )
        )
        query = filters.query_string(chosen.form)
        more = rows[PAGE].number + 1 if len(rows) > PAGE else None
        bounds = city_bounds(self.municipality)
        m = self.municipality
        return self.render(
            "map.html",
            viewer.lang,
            viewer=viewer,
            flash=auth.take_flash(request, self.signer),
            form=chosen.form,
            rows=[self.row(viewer.lang, r) for r in rows[:PAGE]],
            count=count,
            next_url=("/web?" + urlencode([*query, ("before", str(more))])) if more else "",
            query=urlencode(query),
            statuses=[s.value for s in Status],
            categories=[(c.code, c.name(viewer.lang), c.parent is not None) for c in m.categories],
            organisations=[(o.code, o.name(viewer.lang)) for o in m.organisations]
            if viewer.whole_city
            else [],
            map_config={
                "tiles": self.app.settings.map_tile_url,
                "attribution": self.app.settings.map_tile_attribution,
                "bounds": [[bounds.south, bounds.west], [bounds.north, bounds.east]],
                "data": "/web/api/tickets?" + urlencode(query),
                "colours": STATUS_COLOURS,
                "layers": {
                    "markers": t(viewer.lang, "web.map.markers"),
                    "heat": t(viewer.lang, "web.map.heat"),
                },
            },
            map_max=MAP_MAX,
        )

    def row(self, lang: str, p: TicketPoint) -> dict[str, Any]:
        m = self.municipality
        category = m.category(p.subcategory or p.category)
        return {
            "number": p.number,
            "status": p.status.value,
            "category": category.name(lang) if category else p.category,
            "address": p.address
            or (f"{p.lat:.5f}, {p.lon:.5f}" if p.lat is not None and p.lon is not None else "—"),
            "organisation": organisation_name(m, lang, p.organisation),
            "created": local_date(m, lang, p.created_at, "date"),
            "deadline": local_date(m, lang, p.deadline, "date"),
            "overdue": is_overdue(p, self.now()),
        }

    async def map_data(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """GeoJSON of the filtered tickets inside the map's view (`bbox=west,south,east,north`) only."""
        bbox = filters.parse_bbox(request.query.get("bbox", ""))
        if bbox is None:
            return web.json_response({"error": "bbox=west,south,east,north is required"}, status=400)
        where = filters.with_bbox(self.chosen(request, viewer).where, bbox)
        lang, m, now = viewer.lang, self.municipality, self.now()
        found = await self.app.db.run(lambda store: store.ticket_search.markers(where, now, MAP_MAX + 1))
        names: dict[tuple[str, str | None], str] = {}
        statuses = {s.value: _json(t(lang, f"status.{s.value}")) for s in Status}

        def name(kind: str, code: str | None) -> str:
            """Names once per answer, JSON-encoded, not once per marker: a bbox may hold thousands."""
            key = (kind, code)
            if key not in names:
                if kind == "category":
                    known = m.category(code or "")
                    names[key] = _json(known.name(lang) if known else str(code))
                else:
                    names[key] = _json(organisation_name(m, lang, code))
            return names[key]

        # Each marker written straight as GeoJSON text: no dicts per marker to build and walk again.
        features = ",".join(
            FEATURE
            % (
                number,
                lon,
                lat,
                number,
                status,
                statuses[status],
                name("category", code),
                name("organisation", org),
                _json(address),
                "true" if overdue else "false",
            )
            for number, status, code, lat, lon, address, org, overdue in found[:MAP_MAX]
        )
        truncated = "true" if len(found) > MAP_MAX else "false"
        body = f'{{"type":"FeatureCollection","features":[{features}],"truncated":{truncated}}}'
        response = web.Response(text=body, content_type="application/geo+json")
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- one ticket --------------------------------------------------------------------------------------
    async def scoped_ticket(
        self, request: web.Request, viewer: Viewer
    ) -> tuple[Ticket, dict[int, str]] | None:
        number = _number(request.match_info["number"])
        if number is None:
            return None

        def read(store: Any) -> tuple[Ticket, dict[int, str]] | None:
            ticket = store.tickets.get(number)
            if ticket is None or not viewer.may_see(ticket.organisation):
                return None
            ids = {ticket.taken_by} | {_staff_id(e.actor) for e in ticket.events}
            names = {}
            for staff_id in ids - {None}:
                member = store.staff.by_id(staff_id)
                if member is not None:
                    names[staff_id] = member.name
            return ticket, names

        return await self.app.db.run(read)

    async def ticket_page(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        found = await self.scoped_ticket(request, viewer)
        if found is None:
            return self.not_found(viewer)
        ticket, names = found
        lang, m, me = viewer.lang, self.municipality, viewer.member
        own = ticket.organisation == me.organisation
        history = [
            {
                "action": t(lang, f"action.{e.action.value}"),
                "at": local_date(m, lang, e.at, "datetime"),
                "who": _who(lang, e.actor, e.data, names),
                "status": t(lang, f"status.{e.to_status.value}"),
                "comment": e.comment,
                "reason": reason_text(lang, e.data) if e.data.get("reason") else "",
                "organisation": organisation_name(m, lang, e.data["organisation"])
                if e.data.get("organisation")
                else "",
                "photos": list(e.photos),
            }
            for e in ticket.events
        ]
        waiting = ticket.status in WAITING
        return self.render(
            "ticket.html",
            lang,
            viewer=viewer,
            flash=auth.take_flash(request, self.signer),
            ticket=ticket,
            category=category_label(m, lang, ticket),
            place=place_label(lang, ticket)
            if ticket.address or ticket.lat is not None
            else t(lang, "web.ticket.no_place"),
            overdue=is_overdue(ticket, self.now()),
            taken_by=names.get(ticket.taken_by or 0, ""),
            history=history,
            can={
                "take": own and ticket.status in (Status.ASSIGNED, Status.REOPENED),
                "comment": own and waiting,
                "resolve": own and ticket.status in (Status.ASSIGNED, Status.IN_PROGRESS, Status.REOPENED),
                "reject": (own or me.is_dispatcher) and waiting,
                "route": me.is_dispatcher and waiting,
            },
            reasons=[
                (r, t(lang, f"staff.reason.{r}"))
                for r in REJECT_REASONS
                if not (r == "wrong_org" and ticket.status == Status.NEW)
            ],
            targets=[
                (o.code, o.name(lang))
                for o in m.organisations
                if o.kind != "dispatch" and o.code != ticket.organisation
            ],
            max_photos=MAX_PHOTOS,
            point={
                "lat": ticket.lat,
                "lon": ticket.lon,
                "tiles": self.app.settings.map_tile_url,
                "attribution": self.app.settings.map_tile_attribution,
                "colour": STATUS_COLOURS[ticket.status.value],
            },
        )

    async def photo(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """A photo of a ticket the viewer may see, and only one that belongs to that ticket."""
        sha = request.match_info["sha"]
        if not SHA256.fullmatch(sha):
            return self.not_found(viewer)
        found = await self.scoped_ticket(request, viewer)
        if found is None:
            return self.not_found(viewer)
        ticket = found[0]
        belongs = {*ticket.photos, *ticket.resolution_photos, *(p for e in ticket.events for p in e.photos)}
        if sha not in belongs:
            return self.not_found(viewer)
        try:
            data = await _read_photo(self.app, sha)
        except FileNotFoundError:
            return self.not_found(viewer)
        response = web.Response(body=data, content_type="image/jpeg")
        response.headers["Cache-Control"] = "private, max-age=86400"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def act(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        kind = request.match_info["action"]
        number = _number(request.match_info["number"])
        if number is None or kind not in actions.KINDS:
            return self.not_found(viewer)
        found = await self.scoped_ticket(request, viewer)
        if found is None:
            return self.not_found(viewer)
        form = await request.post()
        texts, ok = await actions.run(self.app, viewer.member, kind, number, form)
        response = see_other(f"/web/tickets/{number}")
        auth.set_flash(response, self.signer, texts, "ok" if ok else "error")
        return response

    # --- the dashboard and the exports -------------------------------------------------------------------
    async def dashboard(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        chosen = self.chosen(request, viewer)
        where, form = chosen.where, dict(chosen.form)
        if where.created_from is None and where.created_to is None and "from" not in request.query:
            start = (self.now() - timedelta(days=90)).astimezone(ZoneInfo(self.municipality.timezone)).date()
            return see_other(
                "/web/dashboard?" + urlencode([*filters.query_string(form), ("from", start.isoformat())])
            )
        now = self.now()
        zone = self.municipality.timezone
        figures = await self.app.db.run(lambda store: store.ticket_search.stats(where, now, zone))
        doc = document(figures)
        series = charts.weekly(figures)
        m, lang = self.municipality, viewer.lang

        def cat_name(code: str) -> str:
            c = m.category(code)
            return c.name(lang) if c else code

        chart_data = {
            "weeks": series["weeks"],
            "datasets": [{"label": cat_name(c), "data": v} for c, v in series["by_category"].items()],
            "trend": series["resolution_median"],
            "trend_label": t(lang, "web.dash.trend"),
        }
        orgs = [
            {
                "name": organisation_name(m, lang, code if code != "—" else None),
                "total": o["total"],
                "in_deadline": o["resolved_within_deadline"]["share"],
                "rating": o["rating"]["mean"],
                "overdue": o["overdue"],
                "resolution": o["resolution_hours"]["median"],
            }
            for code, o in doc["organisations"].items()
        ]
        return self.render(
            "dashboard.html",
            lang,
            viewer=viewer,
            form=chosen.form,
            doc=doc,
            by_category=[(cat_name(c), n) for c, n in doc["by_category"].items()],
            orgs=orgs,
            chart_data=chart_data,
            query=urlencode(filters.query_string(chosen.form)),
            categories=[(c.code, c.name(lang), c.parent is not None) for c in m.categories],
            organisations=[(o.code, o.name(lang)) for o in m.organisations] if viewer.whole_city else [],
            statuses=[s.value for s in Status],
        )

    async def export(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """The filtered list, streamed in batches (keyset paging): memory stays flat at a million rows."""
        fmt = request.match_info["format"]
        if fmt not in FORMATS:
            return self.not_found(viewer)
        where = self.chosen(request, viewer).where
        writer = Writer(fmt, self.municipality, self.now())
        response = web.StreamResponse(
            headers={
                "Content-Type": CONTENT_TYPES[fmt],
                "Content-Disposition": f'attachment; filename="tickets.{fmt}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        await response.write(writer.head().encode())
        before: int | None = None
        while True:
            batch = await self.app.db.run(partial(_batch, where, before))
            if batch:
                await response.write(writer.chunk(batch).encode())
            if len(batch) < BATCH:
                break
            before = batch[-1].number
        await response.write(writer.tail().encode())
        await response.write_eof()
        return response


def see_other(location: str) -> web.Response:
    """A 303 to a page of ours, returned (not raised) so that cookies can be set on it."""
    return web.Response(status=303, headers={"Location": location})


def _batch(where: Any, before: int | None, store: Any) -> Any:
    return store.ticket_search.find(where, BATCH, before)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 12 else None


def _staff_id(actor: str) -> int | None:
    kind, _, ident = actor.partition(":")
    return int(ident) if kind == "staff" and ident.isdigit() else None


def _who(lang: str, actor: str, data: dict[str, str], names: dict[int, str]) -> str:
    staff_id = _staff_id(actor)
    if staff_id is not None:
        return data.get("name") or names.get(staff_id, actor)
    return t(lang, "web.ticket.system" if actor == "system" else "web.ticket.resident")


async def _read_photo(app: App, sha: str) -> bytes:
    return await asyncio.get_running_loop().run_in_executor(None, app.photos.read, sha)


def install(http: web.Application, app: App) -> Desk:
    """The staff's pages; the desk they share (the public map, when on, is served from it too)."""
    desk = Desk(app)
    r = http.router
    r.add_get("/web/login/{token}", desk.login_page)
    r.add_post("/web/login", desk.login)
    r.add_post("/web/logout", desk.signed_in(desk.logout))
    r.add_get("/web", desk.signed_in(desk.map_page))
    r.add_get("/web/api/tickets", desk.signed_in(desk.map_data))
    r.add_get("/web/tickets/{number}", desk.signed_in(desk.ticket_page))
    r.add_get("/web/tickets/{number}/photos/{sha}", desk.signed_in(desk.photo))
    r.add_post("/web/tickets/{number}/{action}", desk.signed_in(desk.act))
    r.add_get("/web/dashboard", desk.signed_in(desk.dashboard))
    r.add_get("/web/export.{format}", desk.signed_in(desk.export))
    r.add_static("/web/static/dashboard", WEB / "static" / "dashboard")
    for name, folder in VENDOR.items():
        if folder.is_dir():  # scripts/setup.sh installs them; without them the pages lack the map, not data
            r.add_static(f"/web/static/vendor/{name}", folder)
        else:
            log.warning("web: %s is missing (run scripts/setup.sh): the map or charts will not show", folder)
    return desk
