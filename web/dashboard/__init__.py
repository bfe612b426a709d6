"""The city's web: the dashboard with its map, ticket pages, staff actions, charts and exports (pages.py),
signed in through a one-time link from the bot (core/weblogin.py, auth.py)."""

from web.dashboard.pages import install

__all__ = ["install"]
