"""The staff side through Telegram, with both libraries: a resident reports with a photo, staff of the
organisation get the card (photo, pin, Take / Reject) in Telegram, take the ticket and resolve it with an
album of completion photos; the resident receives the very same photo bytes, then rates — or says *not
fixed*, and the ticket reopens to the same organisation. Outbox messages go through the Telegram sender."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bots.delivery import DeliveryWorker
from core.domain.tickets import Status
from core.engine import Engine
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.fakes.telegram_api import Sent, TelegramUser
from tests.support import invite, jpeg_bytes
from tests.telegram_support import CENTRE, Harness, open_report, ticket

ROADS = "roads_service"


def moving_clock() -> Callable[[], datetime]:
    """The tests' fixed NOW, moving with real time: the outbox spaces messages to one chat by the clock."""
    start = datetime.now(UTC)
    return lambda: NOW + (datetime.now(UTC) - start)


async def report_with_a_photo(resident: TelegramUser, image: bytes) -> int:
    await open_report(resident)
    await resident.pin(*CENTRE)
    if any(data.startswith("nearby:") for m in resident.replies for _l, data in m.buttons()):
        await resident.press("nearby:different")
    await resident.expect("report.description.ask")
    await resident.say("Глубокая яма на проезжей части у остановки.")
    await resident.photos(image)
    await resident.expect("report.photos.ask_more")
    await resident.press("photos:done")
    await resident.press("review:submit")
    await resident.expect("report.submitted", "menu.prompt")
    found = re.search(r"№ (\d+)", resident.replies[0].text)
    assert found
    return int(found.group(1))


class Setup:
    def __init__(self, bot: Harness, worker: DeliveryWorker) -> None:
        self.bot = bot
        self.worker = worker
        self.staff = bot.user(6001)
        self.staff.name = "Иван Петров"
        self.resident = bot.user(5001)

    async def deliver_outbox(self, user: TelegramUser) -> list[Sent]:
        """Run the outbox; what `user` received meanwhile."""
        before = len(self.bot.fake.sent)
        report = await self.worker.flush(linger=0.5)
        assert report.pending == 0 and report.dead == 0, report
        return [m for m in self.bot.fake.sent[before:] if m.chat_id == user.user_id]


@pytest.fixture
async def setup(bot: Harness, engine: Engine) -> Setup:
    engine.clock = moving_clock()
    channel = await bot.start()
    worker = DeliveryWorker(bot.db, {"telegram": channel.sender}, clock=engine.clock)
    return Setup(bot, worker)


async def resolved(setup: Setup, photos: PhotoStore) -> tuple[int, list[bytes]]:
    """Report → card to staff → Take → Resolve with an album of two photos → the resident is told."""
    bot, staff, resident = setup.bot, setup.staff, setup.resident
    await staff.command("staff", await invite(bot.engine, ROADS))
    await staff.expect("staff.joined")

    image = jpeg_bytes((200, 40, 40), (320, 240))
    number = await report_with_a_photo(resident, image)
    made = await ticket(bot.engine, number)
    assert made.organisation == ROADS

    card = await setup.deliver_outbox(staff)
    assert [m.kind for m in card] == ["photo", "location", "text"]
    assert card[0].photo == photos.read(made.photos[0])  # the resident's photo, as stored
    assert card[1].location == CENTRE
    assert f"№ {number}" in card[2].text
    assert {f"st:take:{number}", f"st:rej:{number}"} <= {data for _l, data in card[2].buttons()}

    await staff.press(f"st:take:{number}")
    await staff.expect("staff.take.done")
    [taken] = await setup.deliver_outbox(resident)
    assert f"№ {number}" in taken.text

    await staff.press(f"st:res:{number}")
    await staff.expect("staff.resolve.photos_ask")
    done = [jpeg_bytes((30, 160, 30), (300, 200)), jpeg_bytes((30, 30, 160), (300, 200))]
    await staff.photos(*done)  # an album: one answer
    await staff.expect("staff.resolve.photos_more")
    await staff.press("res:done")
    await staff.expect("staff.resolve.comment_ask")
    await staff.say("Яму заделали асфальтом.")
    await staff.expect("staff.resolve.done")
    return number, done


async def test_staff_resolve_with_photos_reaches_the_resident_who_rates(
    setup: Setup, photos: PhotoStore
) -> None:
    number, done = await resolved(setup, photos)
    bot, resident = setup.bot, setup.resident
    made = await ticket(bot.engine, number)
    assert made.status == Status.RESOLVED and len(made.resolution_photos) == 2

    news = await setup.deliver_outbox(resident)
    assert [m.kind for m in news] == ["photo", "photo", "text"]
    assert news[0].media_group_id is not None and news[0].media_group_id == news[1].media_group_id
    # the resident receives the very bytes the photo store holds for the staff member's photos
    assert [m.photo for m in news[:2]] == [photos.read(sha) for sha in made.resolution_photos]
    assert [photos.store(d).sha256 for d in done] == list(made.resolution_photos)
    assert "асфальтом" in news[2].text
    assert [data for _l, data in news[2].buttons()] == [
        *(f"vd:rate:{number}:{n}" for n in range(1, 6)),
        f"vd:nf:{number}",
    ]

    await resident.press(f"vd:rate:{number}:5")
    await resident.expect("verdict.thanks")
    made = await ticket(bot.engine, number)
    assert made.status == Status.CLOSED and made.rating == 5
    [rated] = await setup.deliver_outbox(setup.staff)
    assert "5 из 5" in rated.text
    # the rating buttons are gone from the resident's message: a second press cannot happen
    assert not news[2].buttons()


async def test_not_fixed_reopens_to_the_same_organisation(setup: Setup, photos: PhotoStore) -> None:
    number, _done = await resolved(setup, photos)
    resident, staff = setup.resident, setup.staff
    await setup.deliver_outbox(resident)

    await resident.press(f"vd:nf:{number}")
    await resident.expect("verdict.reopen.ask")
    await resident.say("Яму засыпали щебнем, после дождя она снова на месте.")
    await resident.expect("verdict.reopen.photos_ask")
    proof = jpeg_bytes((90, 90, 0), (200, 150))
    await resident.photos(proof)
    await resident.expect("verdict.reopen.photos_more")
    await resident.press("ro:done")
    await resident.expect("verdict.reopened")

    made = await ticket(setup.bot.engine, number)
    assert made.status == Status.REOPENED and made.organisation == ROADS
    card = await setup.deliver_outbox(staff)
    assert card[0].kind == "photo" and card[0].photo == photos.read(photos.store(proof).sha256)
    assert "снова на месте" in card[-1].text
    await staff.press(f"st:take:{number}")
    await staff.expect("staff.take.done")
