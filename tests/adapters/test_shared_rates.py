"""The platforms' rates as settings (TELEGRAM_RATE, VK_RATE), kept by every worker on one PostgreSQL database
together: two apps built as `otklik run` builds them, over one database, are two workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from bots.app import App, build_app
from bots.settings import Settings
from bots.telegram import create_channel as create_telegram
from bots.vk import create_channel as create_vk
from core.demo import DEMO_CONFIG_PATH
from core.messages import Reply
from storage.database import Database
from tests.fakes.vk_api import FakeVk


def settings_for(database_url: str, data_dir: Path, **values: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        data_dir=data_dir,
        municipality_config=DEMO_CONFIG_PATH,
        geocoder="off",
        **values,
    )


@pytest.fixture
def workers(db: Database, tmp_path: Path, vk: FakeVk) -> Iterator[list[App]]:
    """Two workers with VK_RATE=10 on the test's PostgreSQL database."""
    if db.is_sqlite:
        pytest.skip("SQLite has one process: its pace is that process's own")
    apps: list[App] = []
    for n in range(2):
        settings = settings_for(
            db.url.render_as_string(hide_password=False),
            tmp_path / f"w{n}",
            vk_group_token=vk.token,
            vk_api_url=vk.api_url,
            vk_rate=10,
            telegram_bot_token="123456:shared-rate-test",
            telegram_rate=1000,
        )
        apps.append(build_app(settings))
    yield apps
    for app in apps:
        app.close()


async def test_vk_answers_keep_vk_rate_across_workers(workers: list[App], vk: FakeVk) -> None:
    channels = [create_vk(app) for app in workers]
    try:
        started = time.monotonic()
        await asyncio.gather(
            *(
                channels[n % 2].sender.reply(  # type: ignore[union-attr]
                    1000 + n, [Reply(text=f"answer {n}")], f"event-{n}"
                )
                for n in range(12)
            )
        )
        elapsed = time.monotonic() - started
    finally:
        for channel in channels:
            assert channel is not None
            await channel.stop()
    assert len(vk.calls_of("messages.send")) == 12
    # 12 requests at 10/s between them: the last slot is 1.1 s after the first, whichever worker booked it.
    # Each worker alone (6 requests, its own window of 10 a second) would have sent at once.
    assert elapsed >= 1.0, elapsed


async def test_the_rates_reach_the_senders_and_the_outbox_keeps_the_bulk_limit(workers: list[App]) -> None:
    tg, channel = create_telegram(workers[0]), create_vk(workers[0])
    assert tg is not None and channel is not None
    try:
        assert tg.sender.limits.bot_rate == 1000
        # notifications: Telegram's 30 a second per message, however high the rate (the sender paces them)
        assert tg.sender.bulk_pace is not None and tg.sender.max_per_second == 0
        # each notification's slot is booked in the bot's shared pace too: it does not queue for it again
        assert tg.sender.bulk_holds_bot_slot
        assert channel.api.limiter.rate == 10
        assert channel.sender.max_per_second == 20
    finally:
        await tg.api.close()
        await channel.stop()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_RATE", "0"),
        ("TELEGRAM_RATE", "100000"),
        ("VK_RATE", "-1"),
        ("VK_RATE", "5000"),
        ("DATABASE_POOL_SIZE", "0"),
        ("DATABASE_STATEMENT_TIMEOUT", "-1"),
        ("DATABASE_STATEMENT_TIMEOUT", "soon"),
    ],
)
def test_wrong_rates_and_pool_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert name.lower() in str(caught.value)
