"""The VKontakte channel (vkbottle): Bots Long Poll or the Callback API; see channel.py."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.app import App
    from bots.vk.channel import VkChannel


def create_channel(app: App) -> VkChannel | None:
    """The `channel_factories()` entry: None unless VK_GROUP_TOKEN is set (vkbottle is imported only then)."""
    settings = app.settings
    token = settings.vk_group_token.get_secret_value() if settings.vk_group_token else ""
    if not token:
        return None
    from bots.vk.api import RequestWindow
    from bots.vk.channel import VkChannel
    from bots.vk.sender import SharedWindow

    # every API call of the community at VK_RATE: booked in one row shared by every worker on PostgreSQL
    # (named by a hash of the token, the same in every worker), this process's own window on SQLite
    rate = settings.vk_rate
    shared = app.shared_pace(f"vk:{hashlib.blake2b(token.encode(), digest_size=8).hexdigest()}", rate)
    return VkChannel(
        app.engine,
        app.db,
        app.photos,
        token=token,
        positions=app.poll_positions(),
        data_dir=settings.data_dir,
        group_id=settings.vk_group_id,
        api_url=settings.vk_api_url,
        confirmation_code=settings.vk_confirmation_code,
        secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else "",
        callback_api=bool(settings.webhook_base_url),
        map_app_id=settings.vk_app_id if settings.map_page_url else None,  # the Mini App shows that page
        limiter=SharedWindow(shared, rate) if shared is not None else RequestWindow(rate),
    )
