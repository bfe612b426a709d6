"""Background jobs of `otklik run` (registered in bots/runner.py): outbox delivery, lifecycle timers and the
photo collector."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bots.app import App, Collected
from bots.console import CHANNEL as CONSOLE
from bots.console.sender import ConsoleSender
from bots.delivery import DeliveryWorker
from core.jobs import run_timers
from core.ports import ChannelSender

log = logging.getLogger(__name__)

TIMER_INTERVAL = 60.0
"""Seconds between runs of the auto-close and overdue jobs."""
PHOTO_GC_INTERVAL = 3600.0
"""Seconds between runs of the photo collector (the first at start): it reads every dialog; hourly will do."""


def console_sender(app: App) -> ConsoleSender:
    return ConsoleSender(app.db, app.photos, app.settings.data_dir / "console")


def with_console(app: App, senders: Mapping[str, ChannelSender]) -> dict[str, ChannelSender]:
    """Console users live in this database, so their messages can always be delivered."""
    return {CONSOLE: console_sender(app), **senders}


async def deliver_outbox(app: App, senders: dict[str, ChannelSender], stopping: asyncio.Event) -> None:
    await DeliveryWorker(app.db, with_console(app, senders), pace=app.pace).run(stopping)


async def collect_photos(app: App, now: datetime) -> Collected:
    """Photos nothing refers to, `PHOTO_GC_HOURS` after their latest upload: file and row removed."""
    return await app.collect_photos(now, timedelta(hours=app.settings.photo_gc_hours))


async def lifecycle_timers(app: App, senders: dict[str, ChannelSender], stopping: asyncio.Event) -> None:
    """The time-based jobs, on the engine's clock (tests move it): lifecycle timers, then storage pruning and
    (hourly) the photo collector."""
    loop = asyncio.get_running_loop()
    photos_collected_at = -PHOTO_GC_INTERVAL
    while not stopping.is_set():
        await _logged("lifecycle timers", run_lifecycle_timers(app))
        await _logged("pruning processed events", prune_processed_events(app))
        if loop.time() - photos_collected_at >= PHOTO_GC_INTERVAL:
            photos_collected_at = loop.time()
            await _logged("photo collection", collect_photos(app, app.engine.clock()))
            await _logged("pruning web sessions", prune_web_logins(app))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=TIMER_INTERVAL)


async def _logged(what: str, job: Awaitable[Any]) -> None:
    """Await one job of the loop; a failure is logged with its traceback and the loop goes on (the next
    round tries again)."""
    try:
        await job
    except Exception:
        log.exception("%s failed", what)


async def run_lifecycle_timers(app: App) -> None:
    """Auto-close, overdue and retention on the engine's clock, in one transaction; logs what they did."""
    done = await app.db.run(
        partial(
            run_timers,
            municipality=app.engine.municipality,
            now=app.engine.clock(),
            retention_days=app.engine.privacy.retention_days,
        )
    )
    if any(done.values()):
        log.info("timers: %s", {k: len(v) for k, v in done.items()})


async def prune_web_logins(app: App) -> int:
    """Forget the web's sign-in links and sessions a day after they expired or ended (core/weblogin.py)."""
    before = app.engine.clock() - timedelta(days=1)
    return await app.db.run(lambda store: store.web_logins.prune(before))


async def prune_processed_events(app: App) -> int:
    """Forget delivery ids older than PROCESSED_EVENTS_DAYS: each update leaves one row, and
    no platform redelivers after days. Returns how many were removed."""
    before = app.engine.clock() - timedelta(days=app.settings.processed_events_days)
    removed = await app.db.run(lambda store: store.events.prune(before))
    if removed:
        log.info("pruned %d processed events older than %s", removed, before.isoformat(timespec="seconds"))
    return removed
