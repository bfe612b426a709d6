"""`/healthz` (the process answers) and `/readyz` (it can also reach its database): what a load balancer
or an orchestrator probes before sending traffic (DESIGN.md §12)."""

from __future__ import annotations

import logging

from aiohttp import web

from bots.app import App
from core.messages import ChatRef

log = logging.getLogger(__name__)
PROBE = ChatRef("health", "probe")
"""A chat no channel ever writes: reading it is the cheapest real round trip through the unit of work."""


def install(http: web.Application, app: App) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            await app.db.run(lambda uow: uow.dialogs.load(PROBE))
        except Exception:  # the database is down or unreachable: not ready, and say so without details
            log.warning("readiness probe: the database cannot be reached", exc_info=True)
            return web.json_response({"status": "database unreachable"}, status=503)
        return web.json_response({"status": "ok"})

    http.router.add_get("/healthz", healthz)
    http.router.add_get("/readyz", readyz)
