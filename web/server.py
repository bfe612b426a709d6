"""The one aiohttp application every HTTP door installs its routes on: messenger webhooks (added by their
channels), health checks, and — as they land — the city's dashboard, Open311 and the widget."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bots.app import App
from web import dashboard, health, metrics, open311, widget

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
