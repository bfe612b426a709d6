"""The VKontakte channel (vkbottle): Bots Long Poll or the Callback API; see channel.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.app import App
    from bots.vk.channel import VkChannel


def create_channel(app: App) -> VkChannel | None:
    """The `channel_factories()` entry: None unless VK_GROUP_TOKEN is set (vkbottle is imported only then)."""
    token = app.settings.vk_group_token
    if token is None or not token.get_secret_value():
        return None
    from bots.vk.channel import VkChannel

    return VkChannel.from_app(app)
