"""The Open311 GeoReport v2 door: `/open311/v2/…` in `.json` and `.xml`, reads for anyone, POST for API keys,
and the `servicerequestupdates` extension. Handlers parse (web/open311/parsing.py), ask the domain
(core/open311.py) through the unit of work, and answer in the spec's shapes (web/open311/formats.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from aiohttp import web

import web.open311.filing as filing
import web.open311.parsing as parsing
from bots.app import App
from core import open311
from core.change import Tx
from core.domain.tickets import Action
from core.labels import local_date
from core.municipality import Municipality
from core.open311 import open_or_closed, public_note, service_code, update_description
from core.ports import ApiKey, Open311UnitOfWork, PublicTicket, PublicUpdate, RequestQuery
from core.texts import LANGUAGES, t
from web.open311.formats import FORMATS, Nested, errors, iso, respond
from web.open311.limits import RateLimiter
from web.open311.parsing import Problems, Rejected, reject, single

log = logging.getLogger(__name__)

BASE = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = datetime(2026, 12, 1, tzinfo=UTC)
"""When this API last changed in a way clients notice (discovery's `changeset`)."""
MAX_CODES = 100
LOOPBACK = frozenset({"127.0.0.1", "::1"})
Handler = Callable[[web.Request, str, str], Awaitable[web.Response]]


class Open311:
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        self.limiter = RateLimiter()
        self._notices: dict[tuple[str, datetime, str | None], str] = {}

    # --- shared -----------------------------------------------------------------------------------------
    @property
    def municipality(self) -> Municipality:
        return self.app.engine.municipality

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.municipality.timezone)

    @property
    def jurisdiction(self) -> str:
        return self.settings.open311_jurisdiction_id or self.municipality.code

    def language(self, request: web.Request, asked: str = "") -> str:
        """`locale` (ru, en, en_US, ru-RU…), else the first known language of Accept-Language, else the
        city's language."""
        candidates = [asked or request.query.get("locale", "")]
        candidates += [part.split(";")[0] for part in request.headers.get("Accept-Language", "").split(",")]
        for candidate in candidates:
            code = candidate.strip()[:2].lower()
            if code in LANGUAGES:
                return code
        return self.settings.default_language

    def door(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Format and language first, then the handler; whatever it refuses becomes the spec's error
        document, and an unexpected failure a 500 in the same shape (details only in the log)."""

        async def serve(request: web.Request) -> web.Response:
            response = await answer(request)
            if request.method == "GET":  # public reads: open-data portals and maps read them from browsers
                response.headers["Access-Control-Allow-Origin"] = "*"
            return response

        async def answer(request: web.Request) -> web.Response:
            fmt = request.match_info["fmt"]
            lang = self.language(request)
            try:
                if fmt not in FORMATS:
                    raise reject(404, "format", format=fmt[:10])
                return await handler(request, fmt, lang)
            except Rejected as refused:
                described = [
                    (code, t(refused.lang or lang, f"open311.error.{key}", **params))
                    for code, key, params in refused.problems.found
                ]
                return errors(fmt, described, refused.headers)
            except Exception:
                log.exception("open311: %s %s failed", request.method, request.path)
                return errors(fmt, [(500, t(lang, "open311.error.internal"))])

        return serve

    async def caller(self, request: web.Request, params: Mapping[str, str], *, write: bool) -> ApiKey | None:
        """The API key (required to write, optional to read but checked when given), then its rate limit."""
        given = params.get("api_key", "")
        key: ApiKey | None = None
        if given or write:
            key = await self.app.db.run(lambda uow: open311.find_key(uow, given)) if given else None
            if key is None:
                raise reject(403, "api_key")
            if write and not key.can_write:
                raise reject(403, "read_only")
        caller, limit = (
            (f"key:{key.name}", key.rate_per_minute)
            if key is not None
            else (f"addr:{client_address(request)}", self.settings.open311_rate_per_minute)
        )
        wait = self.limiter.hit(caller, limit, time.monotonic())
        if wait is not None:
            refused = reject(429, "rate", seconds=wait)
            refused.headers["Retry-After"] = str(wait)
            raise refused
        return key

    def check_jurisdiction(self, params: Mapping[str, str]) -> None:
        given = params.get("jurisdiction_id")
        if given is not None and given.strip() != self.jurisdiction:
            raise reject(400, "jurisdiction", jurisdiction=given[:40])

    async def query(self, request: web.Request) -> dict[str, str]:
        problems = Problems()
        params = single(request.query.items(), problems, None)
        if problems:
            raise Rejected(problems)
        await self.caller(request, params, write=False)
        self.check_jurisdiction(params)
        return params

    # --- services ---------------------------------------------------------------------------------------
    async def discovery(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        await self.query(request)
        base = (self.settings.webhook_base_url.rstrip("/") or f"{request.scheme}://{request.host}") + BASE
        changeset = iso(CHANGESET, self.tz)
        document = {
            "changeset": changeset,
            "contact": self.settings.open311_contact or self.municipality.name(lang),
            "key_service": t(lang, "open311.key_service"),
            "endpoints": Nested(
                "endpoint",
                [
                    {
                        "specification": SPECIFICATION,
                        "url": base,
                        "changeset": changeset,
                        "type": "production",
                        "formats": Nested("format", ["text/xml", "application/json"]),
                    }
                ],
            ),
        }
        return respond(fmt, "discovery", None, document)

    async def service_list(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        await self.query(request)
        items = []
        for group, service in open311.services(self.municipality):
            names = {*group.names.values(), *service.names.values()} - {service.name(lang)}
            items.append(
                {
                    "service_code": service.code,
                    "service_name": service.name(lang),
                    "description": " → ".join(dict.fromkeys((group.name(lang), service.name(lang)))),
                    "metadata": False,
                    "type": "realtime",
                    "keywords": ", ".join(sorted(names)),
                    "group": group.name(lang),
                }
            )
        return respond(fmt, "services", "service", items)

    async def service_definition(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        await self.query(request)
        code = request.match_info["code"]
        if open311.service_of(self.municipality, code) is None:
            raise reject(404, "service", code=code[:64])
        raise reject(404, "no_definition", code=code)  # no service asks extra questions (metadata=false)

    # --- requests ---------------------------------------------------------------------------------------
    def notice(self, lang: str, deadline: datetime | None, organisation: str | None) -> str | None:
        """The deadline sentence; remembered per (language, deadline, organisation): a page of 1,000 requests
        has a few dozen distinct ones."""
        if deadline is None:
            return None
        key = (lang, deadline, organisation)
        if (said := self._notices.get(key)) is not None:
            return said
        org = self.municipality.organisation(organisation)
        said = t(
            lang,
            "open311.notice",
            deadline=local_date(self.municipality, lang, deadline),
            organisation=org.name(lang) if org else (organisation or "—"),
        )
        if len(self._notices) > 10_000:
            self._notices.clear()
        self._notices[key] = said
        return said

    def photo_url(self, sha256: str | None) -> str | None:
        prefix = self.settings.open311_photo_url
        return f"{prefix}{sha256}" if prefix and sha256 else None

    def request_item(self, ticket: PublicTicket, lang: str) -> dict[str, Any]:
        """One request as the spec lists its fields; nothing of the author, staff or person fields."""
        code = service_code(ticket.category, ticket.subcategory)
        category = self.municipality.category(code)
        org = self.municipality.organisation(ticket.organisation)
        return {
            "service_request_id": str(ticket.number),
            "status": open_or_closed(ticket.status),
            "status_notes": public_note(lang, ticket.note) or None,
            "service_name": category.name(lang) if category else code,
            "service_code": code,
            "description": ticket.description,
            "agency_responsible": org.name(lang) if org else None,
            "service_notice": self.notice(lang, ticket.deadline, ticket.organisation),
            "requested_datetime": iso(ticket.created_at, self.tz),
            "updated_datetime": iso(ticket.updated_at, self.tz),
            "expected_datetime": iso(ticket.deadline, self.tz),
            "address": ticket.address or None,
            "address_id": None,
            "zipcode": None,
            "lat": ticket.lat,
            "long": ticket.lon,
            "media_url": ticket.media_url or self.photo_url(ticket.photo),
        }

    async def search(self, query: RequestQuery) -> list[PublicTicket]:
        rows = await self.app.db.run(lambda uow: cast(Open311UnitOfWork, uow).open311.search(query))
        return list(rows)

    async def request_list(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        params = await self.query(request)
        problems = Problems()
        limit, offset = parsing.page(params, problems)
        if "service_request_id" in params:  # overrides every other filter
            query = RequestQuery(
                numbers=parsing.ids(params["service_request_id"], problems), limit=limit, offset=offset
            )
        else:
            codes = tuple(c.strip() for c in params.get("service_code", "").split(",") if c.strip())
            if len(codes) > MAX_CODES:
                problems.add(400, "service_codes", max=MAX_CODES)
                codes = ()
            for code in codes:
                if self.municipality.category(code) is None:
                    problems.add(400, "service_filter", code=code[:64])
            statuses: frozenset[Any] = frozenset()
            for word in (w.strip() for w in params.get("status", "").split(",") if w.strip()):
                if word not in open311.STATUS_OF:
                    problems.add(400, "status")
                    break
                statuses |= open311.STATUS_OF[word]
            start, end = parsing.window(params, self.app.engine.clock(), self.tz, problems)
            query = RequestQuery(
                service_codes=codes, start=start, end=end, statuses=statuses, limit=limit, offset=offset
            )
        if problems:
            raise Rejected(problems)
        rows = await self.search(query)
        return respond(fmt, "service_requests", "request", [self.request_item(r, lang) for r in rows])

    async def request_one(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        await self.query(request)
        text = request.match_info["id"]
        rows = (
            await self.search(RequestQuery(numbers=(int(text),), limit=1))
            if parsing.WHOLE_ID.fullmatch(text)
            else []
        )
        if not rows:
            raise reject(404, "request", id=text[:20])
        return respond(fmt, "service_requests", "request", [self.request_item(rows[0], lang)])

    async def token(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        """POST answers with the `service_request_id` at once, never with a token: every token is unknown."""
        await self.query(request)
        raise reject(404, "token", token=request.match_info["token"][:64])

    async def updates(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        params = await self.query(request)
        problems = Problems()
        limit, offset = parsing.page(params, problems)
        start, end = parsing.window(params, self.app.engine.clock(), self.tz, problems)
        if problems:
            raise Rejected(problems)
        rows = await self.app.db.run(
            lambda uow: cast(Open311UnitOfWork, uow).open311.updates(start, end, limit, offset)
        )
        return respond(
            fmt, "service_request_updates", "request_update", [self.update_item(u, lang) for u in rows]
        )

    def update_item(self, update: PublicUpdate, lang: str) -> dict[str, Any]:
        photos = update.event.photos if update.event.action == Action.RESOLVE else ()
        return {
            "update_id": str(update.id),
            "service_request_id": str(update.number),
            "status": open_or_closed(update.status),
            "updated_datetime": iso(update.event.at, self.tz),
            "description": update_description(lang, update.event),
            "media_url": self.photo_url(photos[0] if photos else None),
        }

    # --- POST requests ----------------------------------------------------------------------------------
    async def create(self, request: web.Request, fmt: str, lang: str) -> web.Response:
        body = await filing.read_body(request)
        problems = Problems()
        fields = parsing.form(body, problems)
        if "api_key" not in fields and "api_key" in request.query:  # some clients send it in the URL
            fields["api_key"] = request.query["api_key"]
        key = await self.caller(request, fields, write=True)
        assert key is not None
        lang = self.language(request, fields.get("locale", ""))
        self.check_jurisdiction(fields)
        m = self.municipality
        report, submission = filing.validate(m, fields, key, lang, problems)
        if problems:
            raise Rejected(problems, lang=lang)
        report = await filing.locate(self.app.engine, report, lang, self.settings.default_language)
        now = self.app.engine.clock()
        filed = await self.app.db.run(lambda uow: open311.submit(Tx(uow, m, now), report, submission))
        log.info("open311: key %s filed ticket %s", key.name, filed.number)
        answer = {
            "service_request_id": str(filed.number),
            "service_notice": self.notice(lang, filed.deadline, filed.organisation),
            "account_id": None,
        }
        return respond(fmt, "service_requests", "request", [answer])


def client_address(request: web.Request) -> str:
    """Who a read without a key is counted against: the peer, or — behind a reverse proxy on this machine —
    the address that proxy appended last to X-Forwarded-For (earlier entries are the client's own claim)."""
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote in LOOPBACK:
        return forwarded.split(",")[-1].strip()[:64] or remote
    return remote


def install(http: web.Application, app: App) -> None:
    door = Open311(app)
    fmt = "{fmt:[a-z0-9]+}"
    routes = [
        ("GET", f"{BASE}/discovery.{fmt}", door.discovery),
        ("GET", f"{BASE}/services.{fmt}", door.service_list),
        ("GET", BASE + "/services/{code:[^/]+}." + fmt, door.service_definition),
        ("GET", f"{BASE}/requests.{fmt}", door.request_list),
        ("POST", f"{BASE}/requests.{fmt}", door.create),
        ("GET", BASE + "/requests/{id:[^/.]+}." + fmt, door.request_one),
        ("GET", BASE + "/tokens/{token:[^/.]+}." + fmt, door.token),
        ("GET", f"{BASE}/servicerequestupdates.{fmt}", door.updates),
    ]
    for method, path, handler in routes:
        http.router.add_route(method, path, door.door(handler))
