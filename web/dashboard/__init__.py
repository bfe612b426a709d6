"""The city's web: the dashboard with its map, ticket pages, staff actions, charts and exports (pages.py),
signed in through a one-time link from the bot (core/weblogin.py, auth.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from bots.app import App


def install(http: web.Application, app: App) -> None:
    """The pages and their HTTP stack are imported only by the server: `otklik tickets export` uses this
    package's filters without them, and admin commands start faster."""
    from web.dashboard.pages import install as install_pages

    desk = install_pages(http, app)
    if app.settings.public_map:
        from web.dashboard import public

        public.install(http, desk)
