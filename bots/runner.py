"""`otklik run`: start every configured channel, the shared HTTP server (webhooks, health, the city's web)
and background jobs; stop them all cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from bots import telegram, vk
from bots.app import App
from bots.background import deliver_outbox, lifecycle_timers
from bots.errors import SetupError
from bots.widget.channel import create_channel as create_widget
from core.ports import ChannelSender
from web.server import build_http

log = logging.getLogger(__name__)


class Channel(Protocol):
    """A messenger adapter: receives updates (polling or webhook route), hands them to the engine, and
    delivers outbox messages through `sender`."""

    name: str
    sender: ChannelSender

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
    return [deliver_outbox, lifecycle_timers]


def configured_channels(app: App) -> list[Channel]:
    return [channel for factory in channel_factories() if (channel := factory(app)) is not None]


async def serve(
    app: App,
    channels: list[Channel],
    *,
    until: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM — or, with `until` (the console channel's conversation), until it ends.
    The console has no webhooks, so there a port that cannot be had is a warning, not the end of the
    conversation."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)

    http = build_http(app)
    started: list[Channel] = []
    jobs: list[asyncio.Task[None]] = []
    runner: web.AppRunner | None = None
    try:
        for channel in channels:
            started.append(channel)  # stopped below even if its start fails: it closes its HTTP session
            await channel.start(http)
        runner = web.AppRunner(http)
        await runner.setup()
        try:
            announce_web(app, await _listen(runner, app.settings.http_host, app.settings.http_port))
        except SetupError as exc:
            if until is None:
                raise
            print(f"otklik: no web: {exc}", file=sys.stderr)

        senders = {channel.name: channel.sender for channel in channels}
        jobs = [asyncio.create_task(job(app, senders, stopping)) for job in background_jobs()]
        log.info("otklik is running: %s", ", ".join(senders) or "no channels")
        if until is None:
            await stopping.wait()
        else:
            await until()
    finally:
        for channel in started:
            await channel.stop()
        stopping.set()
        await asyncio.gather(*jobs, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()


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
