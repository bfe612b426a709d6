"""The staff side through VK, and across channels: a resident reports with a photo, staff get the card (photo,
place, Take / Reject), take the ticket and resolve it with completion photos; the resident receives the very
same bytes and rates. Outbox messages go through the VK sender (and the Telegram one, across channels)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.delivery import DeliveryWorker
from bots.vk.channel import VkChannel
from core.domain.tickets import Status
from core.engine import Engine
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.fakes.telegram_api import TelegramUser
from tests.fakes.vk_api import FakeVk, Sent, VkUser
from tests.support import invite, jpeg_bytes
from tests.telegram_support import Harness, telegram_bot
from tests.vk_support import CENTRE, make_channel, start_polling

ROADS = "roads_service"


def moving_clock() -> Callable[[], datetime]:
    """The tests' fixed NOW, moving with real time: the outbox spaces messages to one chat by the clock."""
    start = datetime.now(UTC)
    return lambda: NOW + (datetime.now(UTC) - start)


@pytest.fixture
async def channel(engine: Engine, photos: PhotoStore, vk: FakeVk, tmp_path: Path) -> AsyncIterator[VkChannel]:
    engine.clock = moving_clock()
    started = await start_polling(make_channel(engine, photos, vk, tmp_path / "data"), vk)
    started.sender.chat_interval = 0.0  # the outbox worker's spacing per chat: not what these tests are about
    yield started
    await started.stop()


async def flush(worker: DeliveryWorker) -> None:
    report = await worker.flush(linger=0.5)
    assert report.pending == 0 and report.dead == 0, report


def number_in(text: str) -> int:
    found = re.search(r"№ (\d+)", text)
    assert found, text
    return int(found.group(1))


async def vk_report(resident: VkUser, image: bytes) -> int:
    await resident.command("start")
    await resident.expect("menu.welcome", "menu.prompt")
    await resident.press("menu:new")
    await resident.expect("report.category.ask")
    await resident.press("cat:roads")
    await resident.expect("report.subcategory.ask")
    await resident.press(resident.button_data()[0])
    await resident.expect("report.location.ask")
    await resident.pin(*CENTRE)
    await resident.receive(1)
    if "nearby:different" in resident.button_data():
        await resident.press("nearby:different")
        await resident.receive(1)
    await resident.say("Глубокая яма на проезжей части у остановки.")
    await resident.expect("report.photos.ask")
    await resident.photos(image)
    await resident.expect("report.photos.ask_more")
    await resident.press("photos:done")
    await resident.expect("report.review.ask")
    await resident.press("review:submit")
    [submitted, _menu] = await resident.expect("report.submitted", "menu.prompt")
    return number_in(submitted.text)


def vk_buttons(message: Sent) -> set[str]:
    return {a["payload"].split('"b":"')[1].rstrip('"}') for a in message.buttons() if a.get("payload")}


async def vk_resolve(staff: VkUser, number: int, done: list[bytes]) -> None:
    await staff.press(f"st:res:{number}")
    await staff.expect("staff.resolve.photos_ask")
    await staff.photos(*done)  # several photos in one message
    await staff.expect("staff.resolve.photos_more")
    await staff.press("res:done")
    await staff.expect("staff.resolve.comment_ask")
    await staff.say("Яму заделали асфальтом.")
    await staff.expect("staff.resolve.done")


async def test_staff_in_vk_resolve_with_photos_and_the_resident_rates(
    channel: VkChannel, vk: FakeVk, engine: Engine, photos: PhotoStore
) -> None:
    worker = DeliveryWorker(engine.db, {"vk": channel.sender}, clock=engine.clock)
    staff, resident = VkUser(vk, 6001), VkUser(vk, 5001)
    await staff.command("staff", await invite(engine, ROADS))
    await staff.expect("staff.joined")

    number = await vk_report(resident, jpeg_bytes((200, 40, 40), (320, 240)))
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.organisation == ROADS

    await flush(worker)
    [card] = await staff.receive(1)  # one VK message: the text, the resident's photo, the place, the buttons
    assert f"№ {number}" in card.text
    assert card.photos == [photos.read(ticket.photos[0])]
    assert (card.lat, card.long) == CENTRE
    assert {f"st:take:{number}", f"st:rej:{number}"} <= vk_buttons(card)

    await staff.press(f"st:take:{number}")
    await staff.expect("staff.take.done")
    await flush(worker)
    [taken] = await resident.receive(1)
    assert f"№ {number}" in taken.text

    done = [jpeg_bytes((30, 160, 30), (300, 200)), jpeg_bytes((30, 30, 160), (300, 200))]
    await vk_resolve(staff, number, done)
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.RESOLVED
    assert list(ticket.resolution_photos) == [photos.store(d).sha256 for d in done]

    await flush(worker)
    [news] = await resident.receive(1)
    # the resident receives the very bytes the photo store holds for the staff member's photos
    assert news.photos == [photos.read(sha) for sha in ticket.resolution_photos]
    assert "асфальтом" in news.text
    assert vk_buttons(news) == {*(f"vd:rate:{number}:{n}" for n in range(1, 6)), f"vd:nf:{number}"}

    await resident.press(f"vd:rate:{number}:5")
    await resident.expect("verdict.thanks")
    assert news.keyboard is None  # the rating buttons are gone: a second press cannot happen
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.CLOSED and ticket.rating == 5
    await flush(worker)
    [rated] = await staff.receive(1)
    assert "5 из 5" in rated.text


@pytest.fixture
async def telegram(engine: Engine, photos: PhotoStore) -> AsyncIterator[Harness]:
    async with telegram_bot(engine, photos, "aiogram") as harness:
        await harness.start()
        yield harness


async def test_reported_in_vk_handled_by_staff_in_telegram(
    channel: VkChannel, telegram: Harness, vk: FakeVk, engine: Engine, photos: PhotoStore
) -> None:
    assert telegram.channel is not None
    worker = DeliveryWorker(
        engine.db, {"vk": channel.sender, "telegram": telegram.channel.sender}, clock=engine.clock
    )
    staff: TelegramUser = telegram.user(6101)
    staff.name = "Иван Петров"
    await staff.command("staff", await invite(engine, ROADS))
    await staff.expect("staff.joined")
    resident = VkUser(vk, 5101)
    image = jpeg_bytes((180, 60, 20), (320, 240))
    number = await vk_report(resident, image)
    ticket = await engine.db.run(lambda store: store.tickets.get(number))

    before = len(telegram.fake.sent)
    await flush(worker)
    card = [m for m in telegram.fake.sent[before:] if m.chat_id == staff.user_id]
    assert card[0].kind == "photo" and card[0].photo == photos.read(ticket.photos[0])  # VK photo in Telegram
    await staff.press(f"st:take:{number}")
    await staff.expect("staff.take.done")
    await staff.press(f"st:res:{number}")
    await staff.expect("staff.resolve.photos_ask")
    done = jpeg_bytes((20, 140, 60), (300, 200))
    await staff.photos(done)
    await staff.expect("staff.resolve.photos_more")
    await staff.press("res:done")
    await staff.expect("staff.resolve.comment_ask")
    await staff.say("Готово.")
    await staff.expect("staff.resolve.done")

    await flush(worker)
    messages = await resident.receive(2)  # taken, then resolved with the photo
    assert messages[-1].photos == [photos.read(photos.store(done).sha256)]  # Telegram photo in VK
    await resident.press(f"vd:rate:{number}:4")
    await resident.expect("verdict.thanks")
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.CLOSED and ticket.rating == 4


async def test_reported_in_telegram_handled_by_staff_in_vk(
    channel: VkChannel, telegram: Harness, vk: FakeVk, engine: Engine, photos: PhotoStore
) -> None:
    assert telegram.channel is not None
    worker = DeliveryWorker(
        engine.db, {"vk": channel.sender, "telegram": telegram.channel.sender}, clock=engine.clock
    )
    staff = VkUser(vk, 6201)
    await staff.command("staff", await invite(engine, ROADS))
    await staff.expect("staff.joined")
    resident: TelegramUser = telegram.user(5201)
    image = jpeg_bytes((40, 40, 200), (320, 240))
    await resident.command("start")
    await resident.press("menu:new")
    await resident.press("cat:roads")
    await resident.press(resident.replies[-1].buttons()[0][1])
    await resident.pin(*CENTRE)
    if any(data == "nearby:different" for m in resident.replies for _l, data in m.buttons()):
        await resident.press("nearby:different")
    await resident.say("Глубокая яма на проезжей части у остановки.")
    await resident.photos(image)
    await resident.press("photos:done")
    await resident.press("review:submit")
    await resident.expect("report.submitted", "menu.prompt")
    number = number_in(resident.replies[0].text)
    ticket = await engine.db.run(lambda store: store.tickets.get(number))

    await flush(worker)
    [card] = await staff.receive(1)
    assert card.photos == [photos.read(ticket.photos[0])]  # the Telegram photo, uploaded to VK
    await staff.press(f"st:take:{number}")
    await staff.expect("staff.take.done")
    done = [jpeg_bytes((10, 120, 10), (300, 200))]
    await vk_resolve(staff, number, done)

    await flush(worker)
    news = [m for m in telegram.fake.sent if m.chat_id == resident.user_id and m.kind == "photo"]
    assert [m.photo for m in news] == [photos.read(photos.store(done[0]).sha256)]  # VK photo in Telegram
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.RESOLVED
