"""`/healthz` (the process answers) and `/readyz` (it can reach its database, the schema is the code's, and
whether it leads): what a load balancer or an orchestrator probes before sending traffic (DESIGN.md §12)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bots.app import App
from core.messages import ChatRef

log = logging.getLogger(__name__)
PROBE = ChatRef("health", "probe")
"""A chat no channel ever writes: reading it is the cheapest real round trip through the unit of work."""


def install(http: web.Application, app: App) -> None:
    schema_current = False  # once current, it stays so: a newer schema (a rolling upgrade) is allowed too

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        nonlocal schema_current
        role = app.cluster.standing
        try:
            await app.db.run(lambda uow: uow.dialogs.load(PROBE))
            problem = None if schema_current else await asyncio.to_thread(app.schema_problem)
        except Exception:  # the database is down or unreachable: not ready, and say so without details
            log.warning("readiness probe: the database cannot be reached", exc_info=True)
            return web.json_response({"status": "database unreachable", "role": role}, status=503)
        if problem is not None:
            return web.json_response({"status": "schema behind", "role": role, "detail": problem}, status=503)
        schema_current = True
        return web.json_response({"status": "ok", "schema": "current", "role": role})

    http.router.add_get("/healthz", healthz)
    http.router.add_get("/readyz", readyz)
