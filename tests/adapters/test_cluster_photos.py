"""The S3 photo store under several workers (issue 15): three apps built as `otklik run` builds them, each
with its own DATA_DIR (another host), over one PostgreSQL database and one bucket (moto's S3 server, a real
HTTP server on 127.0.0.1). Photos a resident sent to one worker are delivered by the others, which have never
seen them on their own disk."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bots.app import App, build_app
from bots.background import deliver_outbox
from bots.settings import Settings
from bots.vk import create_channel
from core.demo import DEMO_CONFIG_PATH
from core.messages import ChatRef, Photo, Reply
from storage.database import Database
from storage.photos import register_photo
from storage.s3_photos import S3PhotoStore
from tests.fakes import wait_for
from tests.fakes.vk_api import FakeVk
from tests.s3_support import create_bucket, moto_server, s3_settings
from tests.support import jpeg_bytes

BUCKET = "city-photos"


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        create_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture
def workers(db: Database, tmp_path: Path, vk: FakeVk, s3_endpoint: str) -> Iterator[list[App]]:
    """Three workers with PHOTO_STORE in the bucket, each on a host of its own (DATA_DIR: its photo cache)."""
    if db.is_sqlite:
        pytest.skip("several workers share a PostgreSQL database: set TEST_DATABASE_URL")
    apps: list[App] = []
    for n in range(3):
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=db.url.render_as_string(hide_password=False),
            data_dir=tmp_path / f"host{n}",
            municipality_config=DEMO_CONFIG_PATH,
            geocoder="off",
            **s3_settings(s3_endpoint, f"s3://{BUCKET}/city"),
            vk_group_token=vk.token,
            vk_group_id=vk.group_id,
            vk_api_url=vk.api_url,
        )
        apps.append(build_app(settings))
    yield apps
    for app in apps:
        app.close()


async def test_photos_one_worker_stored_are_delivered_by_the_others_from_the_bucket_each_uploaded_once(
    workers: list[App], vk: FakeVk
) -> None:
    receiver, *deliverers = workers
    assert all(isinstance(app.photos, S3PhotoStore) for app in workers)
    images = [jpeg_bytes((40 * n, 90, 200 - 30 * n)) for n in range(4)]
    stored = [receiver.photos.store(data) for data in images]  # as the worker that got them stores them
    await receiver.db.run(lambda uow: [register_photo(uow.conn, photo) for photo in stored])
    shas = [photo.sha256 for photo in stored]
    assert not any(app.photos.path_of(sha).exists() for app in deliverers for sha in shas)

    # every photo to two staff chats (a chat each: no chat's spacing to wait for): a photo is uploaded to VK
    # once, whichever worker sends it first
    messages = [
        Reply(
            text=f"ticket photo {n} for {peer}",
            chat=ChatRef("vk", str(peer), str(peer)),
            language="ru",
            photos=(Photo(sha),),
        )
        for n, sha in enumerate(shas)
        for peer in (7300 + 2 * n, 7301 + 2 * n)
    ]
    at = datetime.now(UTC)
    await receiver.db.run(lambda uow: [uow.outbox.enqueue(message, at) for message in messages])

    stopping = asyncio.Event()
    channels = [create_channel(app) for app in deliverers]
    senders: list[dict[str, Any]] = [{"vk": channel.sender} for channel in channels if channel is not None]
    jobs = [
        asyncio.create_task(deliver_outbox(app, sender, stopping))
        for app, sender in zip(deliverers, senders, strict=True)
    ]
    try:
        await wait_for(lambda: len(vk.sent) >= len(messages), 30, "every photo delivered")
    finally:
        stopping.set()
        await asyncio.gather(*jobs)
        for channel in channels:
            assert channel is not None
            await channel.stop()

    assert sorted(m.text for m in vk.sent) == sorted(m.text for m in messages)  # each once
    assert sorted(vk.uploads.values()) == sorted(photo.path.read_bytes() for photo in stored)
    for message in vk.sent:  # each message carries its own photo
        n = int(message.text.split()[2])
        assert message.photos == [stored[n].path.read_bytes()]
    cached = {sha for app in deliverers for sha in shas if app.photos.path_of(sha).exists()}
    assert cached == set(shas)  # read from the bucket into the delivering hosts' caches
