"""The website chat widget: a channel adapter over the same engine as the bots (DESIGN.md §3), reached over
HTTP (routes in web/widget/). A resident is anonymous: a random token kept by their browser, stored by us
only as a hash (the chat id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.app import App
    from bots.widget.channel import WidgetChannel

CHANNEL = "widget"


def create_channel(app: App) -> WidgetChannel | None:
    """The `channel_factories()` entry: None unless WIDGET_ORIGINS is set."""
    if not app.settings.widget_origins.strip():
        return None
    from bots.widget.channel import WidgetChannel

    return WidgetChannel(app)
