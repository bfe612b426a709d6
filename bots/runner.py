"""`otklik run`: start every configured channel, the shared HTTP server (webhooks, health, the city's web)
and background jobs; stop them all cleanly on SIGINT/SIGTERM.

With several workers on one database (bots/roles.py, DESIGN.md §12) every worker delivers the outbox and
serves webhooks (by its role), and only the elected leader polls and runs the timers."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from aiohttp import web

from bots import telegram, vk
from bots.app import App
from bots.background import deliver_outbox, lifecycle_timers
from bots.errors import SetupError
from bots.roles import lead
from bots.widget.channel import create_channel as create_widget
from core.ports import ChannelSender
from web import server as web_server
from web.server import build_http

log = logging.getLogger(__name__)

GC_THRESHOLDS = (10_000, 20, 50)
"""The cyclic collector's thresholds while serving (Python's are 700, 10, 10). Under load a worker holds
thousands of objects of the updates in flight: at Python's a collection ran every few updates and the
older generations' passes over what survived took ~14 % of a busy worker's main thread (bench/cluster.py,
counted with gc.callbacks); at these, ~5-8 %. The youngest generation's work is about the same either way
(it looks at the same live objects, less often); the gain is the rarer passes over the older ones. Cyclic
garbage waits a little longer: a pass of the youngest every 10,000 allocations (milliseconds under load)."""


def settle_for_serving() -> None:
    """What start-up made (modules, the libraries' types) lives as long as the process: out of the collector's
    sight, its collections do not walk it again and again (DESIGN.md §10); then `GC_THRESHOLDS`. The
    collector was off during start-up (bots/entry.py). `serve` calls it once everything has started, and
    bench/telegram_channel.py before it measures a channel, so that the bench runs it as `otklik run` does."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()


class Channel(Protocol):
    """A messenger adapter: receives updates (polling or webhook route), hands them to the engine, and
    delivers outbox messages through `sender`."""

    name: str
    sender: ChannelSender
    polls: bool
    """Receives by polling the platform (leader only) rather than on a webhook route (every web worker)."""

    async def start(self, http: web.Application | None) -> None:
        """Begin receiving. Webhook channels add their routes to `http` (before it starts listening); tests of
        polling pass None."""

    async def stop(self) -> None:
        """Stop receiving; finish the update in hand; leave no task behind."""


ChannelFactory = Callable[[App], Channel | None]
"""Builds a channel from the settings, or None when it is not configured (no token)."""

BackgroundJob = Callable[[App, dict[str, ChannelSender], asyncio.Event], Awaitable[None]]
"""A loop that runs until the event is set (outbox delivery, deadline checks)."""


def channel_factories() -> list[ChannelFactory]:
    """Every channel otklik knows; each returns None unless its settings are present."""
    return [telegram.create_channel, vk.create_channel, create_widget]


def background_jobs() -> list[BackgroundJob]:
    """Every background job: `worker_jobs` run on each delivering worker, `leader_jobs` on the leader."""
    return [*worker_jobs(), *leader_jobs()]


def worker_jobs() -> list[BackgroundJob]:
    return [deliver_outbox]


def leader_jobs() -> list[BackgroundJob]:
    """Jobs exactly one worker may run at a time (the timers would act twice; Telegram refuses a second
    poller with 409 Conflict)."""
    return [lifecycle_timers]


def configured_channels(app: App) -> list[Channel]:
    return [channel for factory in channel_factories() if (channel := factory(app)) is not None]


async def serve(
    app: App,
    channels: list[Channel],
    *,
    until: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve by `app.cluster.role`: webhook routes (web, all), outbox delivery (worker, all), and the
    leader's polling and timers while this worker is elected (worker, all). Until SIGINT/SIGTERM — or, with
    `until` (the console channel's conversation), until that ends; the console has no webhooks, so there a
    port that cannot be had is a warning, not the end of the conversation."""
    cluster = app.cluster
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)

    http = build_http(app)
    hooked = [channel for channel in channels if not channel.polls] if cluster.serves_webhooks else []
    started: list[Channel] = []
    jobs: list[asyncio.Task[None]] = []
    runner: web.AppRunner | None = None
    try:
        for channel in hooked:
            started.append(channel)  # stopped below even if its start fails: it closes its HTTP session
            await channel.start(http)
        runner = web_server.runner(http)
        await runner.setup()
        try:
            announce_web(app, await _listen(runner, app.settings.http_host, app.settings.http_port))
        except SetupError as exc:
            if until is None:
                raise
            print(f"otklik: no web: {exc}", file=sys.stderr)

        senders = {channel.name: channel.sender for channel in channels}
        if cluster.delivers:
            jobs = [asyncio.create_task(job(app, senders, stopping)) for job in worker_jobs()]
        if cluster.elects:
            unused = {channel.name: channel for channel in channels if channel.polls}
            term_jobs = partial(_lead_term, app, unused, senders)
            jobs.append(asyncio.create_task(lead(app.leader_lock(), cluster, term_jobs, stopping)))
        settle_for_serving()
        _give_back_freed_memory()
        log.info("otklik is running (%s): %s", cluster.role, ", ".join(senders) or "no channels")
        if until is None:
            await _until(stopping, jobs)
        else:
            await until()
    finally:
        for channel in started:
            await channel.stop()
        stopping.set()
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome  # a leader term that failed (a polling channel that could not start): say so


async def _until(stopping: asyncio.Event, jobs: list[asyncio.Task[None]]) -> None:
    """Until a signal, or a job ending on its own (a failed leader term)."""
    waiter = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([waiter, *jobs], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


async def _lead_term(
    app: App, unused: dict[str, Channel], senders: dict[str, ChannelSender], term: asyncio.Event
) -> None:
    """One leadership term: the polling channels and the timers, until the term ends. The first term polls
    with the channels `otklik run` built (so one process keeps one sender per bot, as before); a later one
    (leadership lost and won again) builds fresh ones, a stopped channel not being restartable."""
    if unused:
        polling = list(unused.values())
        unused.clear()
    else:
        polling = [channel for channel in configured_channels(app) if channel.polls]
    started: list[Channel] = []
    jobs: list[asyncio.Task[None]] = []
    try:
        for channel in polling:
            started.append(channel)
            await channel.start(None)
        jobs = [asyncio.create_task(job(app, senders, term)) for job in leader_jobs()]
        await term.wait()
    finally:
        # Together: a deposed leader's VK long poll must not go on while Telegram's stop drains (up to 30 s).
        stops = await asyncio.gather(*(channel.stop() for channel in started), return_exceptions=True)
        for channel, outcome in zip(started, stops, strict=True):
            if isinstance(outcome, Exception):
                log.error("stopping the %s poller failed", channel.name, exc_info=outcome)
        term.set()
        await asyncio.gather(*jobs, return_exceptions=True)


def announce_web(app: App, address: str) -> None:
    """Say where the city's web is; `/web` links point at the port actually bound (HTTP_PORT=0) unless a
    public base URL is set."""
    log.info("http on %s", address)
    if not (app.settings.web_base_url or app.settings.webhook_base_url):
        app.engine.web_url = address
    print(f"otklik: web at {app.engine.web_url}/web (sign in: /web in the bot)", file=sys.stderr)


async def _listen(runner: web.AppRunner, host: str, port: int) -> str:
    """Start listening and return the address actually bound (`HTTP_PORT=0` picks a free port)."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise SetupError(
            f"cannot listen on {host}:{port} ({exc.strerror}); change HTTP_HOST or HTTP_PORT"
        ) from exc
    bound_host, bound_port = runner.addresses[0][:2]
    return f"http://{bound_host}:{bound_port}"


def _give_back_freed_memory() -> None:
    """Hand the heap pages start-up freed (import-time temporaries, a library's discarded schemas) back to
    the system, so the idle process's RSS is what it holds (glibc keeps them otherwise); a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
