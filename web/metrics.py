"""`GET /metrics`: Prometheus' text format (bots/metrics.py says what is in it)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from bots import metrics
from bots.app import App

log = logging.getLogger(__name__)


def install(http: web.Application, app: App) -> None:
    async def scrape(_: web.Request) -> web.Response:
        try:
            counts, oldest = await app.db.run(
                lambda uow: (uow.outbox.status_counts(), uow.outbox.oldest_pending())
            )
        except Exception:  # the database is away: the process's own figures are still worth a scrape
            log.warning("metrics: the outbox cannot be read", exc_info=True)
        else:
            metrics.record_outbox(counts, oldest, datetime.now(UTC))
        metrics.record_cluster(app.cluster.leader)
        body = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})

    http.router.add_get("/metrics", scrape)
