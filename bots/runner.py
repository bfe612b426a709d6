"""`otklik run`: start every configured channel, the shared HTTP server (webhooks, health, the city's web)
and background jobs; stop them all cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from bots import telegram, vk
from bots.app import App
from bots.background import deliver_outbox, lifecycle_timers
from bots.errors import SetupError
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
    return [telegram.create_channel, vk.create_channel]


def background_jobs() -> list[BackgroundJob]:
    return [deliver_outbox, lifecycle_timers]


def configured_channels(app: App) -> list[Channel]:
    return [channel for factory in channel_factories() if (channel := factory(app)) is not None]


async def serve(app: App, channels: list[Channel]) -> None:
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
        address = await _listen(runner, app.settings.http_host, app.settings.http_port)
        log.info("http on %s", address)

        senders = {channel.name: channel.sender for channel in channels}
        jobs = [asyncio.create_task(job(app, senders, stopping)) for job in background_jobs()]
        # What start-up made (modules, the libraries' types) lives as long as the process: out of the
        # collector's sight, its collections do not walk it again and again (DESIGN.md §10).
        gc.collect()
        gc.freeze()
        _give_back_freed_memory()
        log.info("otklik is running: %s", ", ".join(senders) or "no channels")
        await stopping.wait()
    finally:
        for channel in started:
            await channel.stop()
        stopping.set()
        await asyncio.gather(*jobs, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()


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
