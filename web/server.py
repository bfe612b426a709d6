"""The one aiohttp application every HTTP door installs its routes on: messenger webhooks (added by their
channels), health checks, and — as they land — the city's dashboard, Open311 and the widget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web, web_log

from bots.app import App
from web import dashboard, health, metrics, open311, widget

WEBHOOK_PATHS = frozenset({"/telegram/webhook", "/vk/callback"})
"""The messengers' webhook routes (bots/telegram/webhook.py, bots/vk/callback.py): a request per update."""

RouteInstaller = Callable[[web.Application, App], None]
"""Adds one door's routes (and its startup/cleanup hooks) to the shared application."""


def route_installers() -> list[RouteInstaller]:
    """Every web door otklik serves, in the order their routes are added."""
    return [health.install, metrics.install, dashboard.install, open311.install, widget.install]


def build_http(app: App) -> web.Application:
    # Photos arrive through the widget and the dashboard; aiohttp's 1 MiB default would refuse them before
    # our own limits (core/photo_limits.py) can answer in the user's language.
    http = web.Application(client_max_size=app.settings.http_max_body_bytes)
    for install in route_installers():
        install(http, app)
    return http


class AccessLogger(web_log.AccessLogger):
    """aiohttp's access log (INFO: `otklik -v`) without the webhooks the server accepted: those are a line per
    update, hundreds a second under load — formatting, redacting and writing them was about a twentieth of a
    worker's CPU per update (bench/cluster.py --profile) — and `otklik_updates_handled` counts them already. A
    webhook refused or failed (status 400 and up) is logged as before, and so is every other request."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status < 400 and request.path in WEBHOOK_PATHS:
            return
        super().log(request, response, time)


def runner(http: web.Application, **options: Any) -> web.AppRunner:
    """The application's runner, with our access log."""
    return web.AppRunner(http, access_log_class=AccessLogger, **options)
