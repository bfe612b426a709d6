"""The VK test harness: a channel of ours against the fake VK API (tests/fakes/vk_api.py)."""

from __future__ import annotations

from pathlib import Path

from bots.vk.api import RequestWindow
from bots.vk.channel import VkChannel
from core.engine import Engine
from storage.photos import PhotoStore
from storage.poll_positions import DbPollPositions
from tests.fakes import wait_for
from tests.fakes.vk_api import FakeVk, VkUser

CENTRE = (52.2870, 104.2810)  # ул. Ленина, Irkutsk


def make_channel(
    engine: Engine, photos: PhotoStore, vk: FakeVk, data_dir: Path, **options: object
) -> VkChannel:
    """A channel on the fake, with short long-poll waits and back-off, and no rate limit unless asked."""
    return VkChannel(
        engine,
        engine.db,
        photos,
        token=vk.token,
        positions=DbPollPositions(engine.db),
        api_url=vk.api_url,
        data_dir=data_dir,
        **{"wait": 2, "backoff": 0.01, "limiter": RequestWindow(rate=1000), **options},  # type: ignore[arg-type]
    )


async def start_polling(channel: VkChannel, vk: FakeVk) -> VkChannel:
    """Start long poll and wait for its first request, so that events pushed next are not before its ts."""
    before = vk.long_polls
    await channel.start(None)
    await wait_for(lambda: vk.long_polls > before, what="the first long-poll request")
    return channel


async def to_place_step(user: VkUser) -> None:
    """A resident's report from /start up to the question where the problem is, through the channel."""
    await user.command("start")
    await user.expect("menu.welcome", "menu.prompt")
    await user.press("menu:new")
    await user.expect("report.category.ask")
    await user.press("cat:roads")
    await user.expect("report.subcategory.ask")
    await user.press(user.button_data()[0])
    await user.expect("report.location.ask")


async def to_photo_step(user: VkUser) -> None:
    """A resident's report from /start up to the photo step, through the channel."""
    await to_place_step(user)
    await user.pin(*CENTRE)
    await user.expect("report.description.ask")
    await user.say("Глубокая яма на проезжей части, машины объезжают по встречной.")
    await user.expect("report.photos.ask")
