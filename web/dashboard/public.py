"""The public map (`PUBLIC_MAP=on`; off by default): anonymous visitors see reports as FixMyStreet's public
map shows them — category, status, address and dates — never a resident's name, id, phone, description or
photos, and never rejected reports (spam, not municipal). The same bbox query as the staff map, answering
only what is in view."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from core.domain.tickets import Status
from core.geo import city_bounds
from core.labels import local_date
from core.texts import t
from web.dashboard import auth, filters
from web.dashboard.pages import MAP_MAX, STATUS_COLOURS, Desk

PUBLIC_STATUSES = tuple(s.value for s in Status if s != Status.REJECTED)


def install(http: web.Application, desk: Desk) -> None:
    def chosen(request: web.Request) -> filters.Chosen:
        found = filters.parse(request.query, desk.municipality, (), desk.now())
        statuses = tuple(s for s in found.where.statuses if s in PUBLIC_STATUSES) or PUBLIC_STATUSES
        where = replace(found.where, statuses=statuses, organisations=(), overdue_at=None)
        return filters.Chosen(where, found.form)

    async def page(request: web.Request) -> web.StreamResponse:
        lang = auth.accept_language(request, desk.app.settings.default_language)
        if request.query.get("lang") in ("ru", "en"):
            lang = request.query["lang"]
        found = chosen(request)
        m = desk.municipality
        bounds = city_bounds(m)
        query = [(k, v) for k, v in filters.query_string(found.form) if k in ("status", "category")]
        return desk.render(
            "public.html",
            lang,
            form=found.form,
            statuses=list(PUBLIC_STATUSES),
            categories=[(c.code, c.name(lang), c.parent is not None) for c in m.categories],
            map_config={
                "tiles": desk.app.settings.map_tile_url,
                "attribution": desk.app.settings.map_tile_attribution,
                "bounds": [[bounds.south, bounds.west], [bounds.north, bounds.east]],
                "data": "/map/api/tickets?" + urlencode([*query, ("lang", lang)]),
                "colours": STATUS_COLOURS,
                "link": False,
            },
            map_max=MAP_MAX,
        )

    async def data(request: web.Request) -> web.StreamResponse:
        bbox = filters.parse_bbox(request.query.get("bbox", ""))
        if bbox is None:
            return web.json_response({"error": "bbox=west,south,east,north is required"}, status=400)
        lang = request.query.get("lang") if request.query.get("lang") in ("ru", "en") else "ru"
        where = filters.with_bbox(chosen(request).where, bbox)
        found = await desk.app.db.run(lambda store: store.ticket_search.find(where, MAP_MAX + 1))
        m = desk.municipality

        def props(p: Any) -> dict[str, Any]:
            category = m.category(p.subcategory or p.category)
            return {
                "number": p.number,
                "status": p.status.value,
                "status_name": t(lang, f"status.{p.status.value}"),
                "category": category.name(lang) if category else p.category,
                "address": p.address,
                "created": local_date(m, lang, p.created_at, "date"),
                "resolved": local_date(m, lang, p.resolved_at, "date") if p.resolved_at else "",
            }

        doc = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": p.number,
                    "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
                    "properties": props(p),
                }
                for p in found[:MAP_MAX]
            ],
            "truncated": len(found) > MAP_MAX,
        }
        return web.json_response(doc, content_type="application/geo+json")

    http.router.add_get("/map", page)
    http.router.add_get("/map/api/tickets", data)
