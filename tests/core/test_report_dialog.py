"""Transcripts of the resident's new-report dialog through the real engine and storage."""

from __future__ import annotations

import asyncio
import re

import pytest

from core.engine import Engine
from core.messages import Incoming, Photo
from core.municipality import Municipality
from core.texts import t
from storage.database import Database
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.stores import UNITS_OF_WORK, engine_over
from tests.support import Resident, keys_of, stored_photo, text_is


@pytest.fixture(params=UNITS_OF_WORK)
def engine(request: pytest.FixtureRequest, demo: Municipality) -> Engine:
    """The engine over the database and over the in-memory unit of work: the same transcripts on both."""
    return engine_over(request, demo)


CENTRE = (52.2870, 104.2810)  # ул. Ленина, Irkutsk
MOSCOW = (55.7558, 37.6173)


async def start_report(r: Resident) -> None:
    await r.command("start")
    await r.expect("menu.welcome", "menu.prompt")
    await r.press("menu:new")
    await r.expect("report.category.ask")


async def fill_until_review(r: Resident, photos: list[str]) -> None:
    await start_report(r)
    await r.press("cat:roads")
    await r.expect("report.subcategory.ask")
    await r.press(r.buttons()[0][1])
    await r.expect("report.location.ask")
    assert r.replies[0].ask_location
    await r.pin(*CENTRE)
    await r.expect("report.description.ask")
    await r.say("Глубокая яма на проезжей части, машины объезжают по встречной.")
    await r.expect("report.photos.ask")
    for i, sha in enumerate(photos, 1):
        await r.photos(sha)
        await r.expect("report.photos.ask_more")
        assert f"{i} из 5" in r.replies[0].text
    await r.press("photos:done")
    await r.expect("report.review.ask")


async def test_full_report_creates_a_routed_ticket_with_photos(engine: Engine, photos: PhotoStore) -> None:
    r = Resident(engine)
    shas = [await stored_photo(engine, photos, (i * 40, 10, 10)) for i in range(2)]
    await fill_until_review(r, shas)
    await r.press("review:submit")
    await r.expect("report.submitted", "menu.prompt")
    assert "№ 1" in r.replies[0].text

    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert ticket is not None
    assert ticket.photos == tuple(shas)
    assert ticket.status.value == "assigned"
    assert ticket.organisation is not None and ticket.organisation != engine.municipality.dispatch
    assert ticket.deadline is not None and ticket.deadline > ticket.created_at
    assert [e.action.value for e in ticket.events] == ["create", "assign"]
    assert (ticket.lat, ticket.lon) == CENTRE


async def test_typed_address_and_no_photos(engine: Engine) -> None:
    r = Resident(engine, language="en")
    await r.command("start")
    await r.press("menu:new")
    await r.press("cat:lighting")
    if r.replies[0].text.startswith("Category"):
        await r.press(r.buttons()[0][1])
    await r.expect("report.location.ask")
    await r.say("ул. Карла Маркса, 14")
    await r.expect("report.description.ask")
    await r.say("The street light has not worked for a week.")
    await r.press("photos:done")
    await r.expect("report.review.ask")
    assert "ул. Карла Маркса, 14" in r.replies[0].text
    await r.press("review:submit")
    await r.expect("report.submitted", "menu.prompt")
    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert ticket is not None and ticket.address == "ул. Карла Маркса, 14" and ticket.lat is None
    assert ticket.location_source == "typed"


async def test_bad_inputs_get_a_reask_in_the_users_language(engine: Engine, photos: PhotoStore) -> None:
    r = Resident(engine)
    await start_report(r)
    await r.say("какой-то текст")  # text where a button is asked
    await r.expect("report.category.retry", "report.category.ask")
    await r.send(unsupported="sticker")
    await r.expect("input.unsupported", "report.category.ask")
    assert r.replies[0].text.startswith("Стикер")
    await r.press("cat:roads")
    await r.press(r.buttons()[0][1])
    await r.pin(*MOSCOW)
    await r.expect("report.location.outside", "report.location.ask")
    await r.photos(await stored_photo(engine, photos))
    await r.expect("report.location.retry", "report.location.ask")
    await r.say("ул")
    await r.expect("report.location.address_too_short", "report.location.ask")
    await r.pin(*CENTRE)
    await r.say("   ")
    await r.expect("input.empty", "report.description.ask")
    await r.say("яма")
    await r.expect("report.description.too_short", "report.description.ask")
    await r.say("я" * 10_000)
    await r.expect("report.description.too_long", "report.description.ask")
    assert "10000" in r.replies[0].text
    await r.pin(*CENTRE)
    await r.expect("report.description.retry", "report.description.ask")
    await r.say("Яма глубиной сантиметров двадцать.")
    await r.say("вот фото")
    await r.expect("report.photos.retry", "report.photos.ask")
    await r.send(unsupported="bad_photo")
    await r.expect("input.bad_photo", "report.photos.ask")


async def test_at_most_five_photos(engine: Engine, photos: PhotoStore) -> None:
    r = Resident(engine)
    shas = [await stored_photo(engine, photos, (i * 30, 0, 0)) for i in range(7)]
    await start_report(r)
    await r.press("cat:roads")
    await r.press(r.buttons()[0][1])
    await r.pin(*CENTRE)
    await r.say("Яма глубиной сантиметров двадцать.")
    await r.photos(*shas[:4])
    await r.expect("report.photos.ask_more")
    await r.photos(*shas[4:])
    await r.expect("report.photos.full")  # one answer: what happened, and that the limit is reached
    assert r.replies[0].text.startswith("Добавлено 1 фото.\n2 фото не поместились и не сохранены")
    assert "5 из 5 — это максимум" in r.replies[0].text
    assert [data for _label, data in r.buttons()] == ["photos:done", "report:cancel"]
    await r.press("photos:done")
    await r.press("review:submit")
    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert ticket is not None and ticket.photos == tuple(shas[:5])


async def test_review_edit_returns_to_review(engine: Engine) -> None:
    r = Resident(engine)
    await fill_until_review(r, [])
    await r.press("review:edit:description")
    await r.expect("report.description.ask")
    await r.say("Новое описание проблемы у дома.")
    await r.expect("report.review.ask")
    assert "Новое описание" in r.replies[0].text
    await r.press("review:edit:category")
    await r.expect("report.category.ask")
    await r.press("cat:yards")
    await r.press(r.buttons()[0][1])
    await r.expect("report.review.ask")
    await r.press("review:edit:location")
    await r.say("ул. Ленина, 5")
    await r.expect("report.review.ask")
    assert "ул. Ленина, 5" in r.replies[0].text


async def test_cancel_from_review_and_stale_buttons(engine: Engine) -> None:
    r = Resident(engine)
    await fill_until_review(r, [])
    old_review_buttons = r.buttons()
    await r.press("report:cancel")
    await r.expect("cancel.done")
    assert "menu:new" in dict(map(reversed, r.buttons()))
    # a button from the old review message no longer applies
    r.replies = []
    await r.send(button=old_review_buttons[0][1])
    await r.expect("button.stale", "menu.prompt")
    await r.send(button="cat:roads")
    await r.expect("button.stale", "menu.prompt")
    tickets = await engine.db.run(lambda store: store.tickets.list())
    assert tickets == []


async def test_subcategory_back_and_stale_subcategory(engine: Engine) -> None:
    r = Resident(engine)
    await start_report(r)
    await r.press("cat:roads")
    await r.press("sub:back")
    await r.expect("report.category.ask")
    await r.press("cat:roads")
    await r.send(button="sub:waste.bins")  # a subcategory of another category
    await r.expect("button.stale", "report.subcategory.ask")


async def test_commands_at_every_step(engine: Engine) -> None:
    r = Resident(engine)
    await start_report(r)
    await r.press("cat:roads")
    await r.command("help")
    await r.expect("help.text", "report.subcategory.ask")
    await r.command("language")
    await r.press("lang:en")
    r.language = "en"
    await r.expect("language.set", "report.subcategory.ask")
    await r.command("start")
    await r.expect("report.resume", "report.subcategory.ask")
    await r.command("frobnicate")
    await r.expect("command.unknown", "report.subcategory.ask")
    await r.command("cancel")
    await r.expect("cancel.done")
    await r.command("cancel")
    await r.expect("cancel.nothing")


async def test_my_reports_lists_tickets_with_details_and_history(engine: Engine) -> None:
    r = Resident(engine)
    await fill_until_review(r, [])
    await r.press("review:submit")
    await r.command("my")
    await r.expect("mine.list")
    await r.press("ticket:1")
    await r.expect("ticket.details")
    assert t("ru", "action.create") in r.replies[0].text
    other = Resident(engine, chat_id="200")
    await other.send(button="ticket:1")  # someone else's ticket is not shown
    await other.expect("ticket.not_found")
    await other.command("my")
    await other.expect("mine.empty")


async def test_half_finished_dialog_survives_a_restart(
    engine: Engine, demo: Municipality, database_url: str
) -> None:
    if not isinstance(engine.db, Database):
        pytest.skip("surviving a restart is the database's job, not the in-memory fake's")
    r = Resident(engine)
    await start_report(r)
    await r.press("cat:roads")
    engine.db.close()  # the process stops

    again = Database(database_url)
    try:
        r.engine = Engine(again, demo, clock=lambda: NOW)
        await r.say("привет")
        await r.expect("report.subcategory.retry", "report.subcategory.ask")
    finally:
        again.close()


async def test_repeated_event_key_is_processed_once(engine: Engine) -> None:
    r = Resident(engine)
    await fill_until_review(r, [])
    submit = Incoming(r.chat, "same-delivery", "ru", button="review:submit")
    first = await engine.handle(submit)
    second = await engine.handle(submit)
    # The repeat changes nothing; it only asks the current question again (the answer may have been lost).
    assert len(first) == 2 and second == [first[-1]]
    assert len(await engine.db.run(lambda store: store.tickets.list())) == 1


async def test_repeat_of_an_older_update_says_nothing(engine: Engine) -> None:
    """Only the chat's latest update is re-asked: a batch fetched again after a crash asks once at most."""
    r = Resident(engine)
    older = Incoming(r.chat, "older", "ru", command="start")
    await engine.handle(older)
    await engine.handle(Incoming(r.chat, "latest", "ru", button="menu:new"))
    assert await engine.handle(older) == []
    again = await engine.handle(Incoming(r.chat, "latest", "ru", button="menu:new"))
    assert keys_of(again) == ["report.category.ask"]


async def test_two_bots_update_1_are_both_handled(engine: Engine) -> None:
    """After the operator switches bots on one database, the new bot's update ids start again."""
    r = Resident(engine)
    first = await engine.handle(Incoming(r.chat, "1", "ru", command="start", bot="111"))
    second = await engine.handle(Incoming(r.chat, "1", "ru", button="menu:new", bot="222"))
    assert keys_of(first) == ["menu.welcome", "menu.prompt"]
    assert keys_of(second) == ["report.category.ask"]


async def test_concurrent_updates_for_one_chat_keep_state_consistent(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine)
    shas = [await stored_photo(engine, photos, (i * 50, 0, 0)) for i in range(4)]
    await start_report(r)
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(*CENTRE)
    await r.say("Яма глубиной сантиметров двадцать.")
    # an album arrives as four updates at once: none of them may overwrite another's photo
    answers = await asyncio.gather(*(Resident(engine).photos(sha) for sha in shas))
    counts = sorted(int(a[0].text.split(" из ")[0].split()[-1]) for a in answers)
    assert counts == [1, 2, 3, 4]
    state = await engine.db.run(lambda store: store.dialogs.load(r.chat))
    assert state is not None and sorted(state["slots"]["photos"]) == sorted(shas)


# --- photos sent early, repeats and the limit said exactly; natural texts -----
async def to_description(r: Resident, point: tuple[float, float] = CENTRE) -> None:
    await start_report(r)
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(*point)
    await r.expect("report.description.ask")


async def test_captioned_photo_at_the_description_step_is_kept_and_its_caption_is_the_description(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine)
    sha = await stored_photo(engine, photos)
    await to_description(r)
    await r.send(photos=(Photo(sha),), text="Яма на проезжей части у остановки, глубокая.")
    assert len(r.replies) == 2 and text_is(r.replies[1], "report.photos.ask_more")
    assert r.replies[0].text == "Подпись к фото сохранена как описание.\nДобавлено 1 фото."
    assert "Приложено фото: 1 из 5" in r.replies[1].text  # the photo step shows it as already added
    await r.press("photos:done")
    await r.expect("report.review.ask")
    await r.press("review:submit")
    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert ticket is not None and ticket.photos == (sha,)
    assert ticket.description == "Яма на проезжей части у остановки, глубокая."


async def test_photo_without_caption_at_the_description_step_is_kept_and_the_text_is_asked(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine)
    first, second = [await stored_photo(engine, photos, (i * 90, 20, 20)) for i in range(2)]
    await to_description(r)
    await r.photos(first)
    assert len(r.replies) == 2 and text_is(r.replies[1], "report.description.ask")
    assert r.replies[0].text.startswith("Добавлено 1 фото.\nФото сохранены для обращения: 1 из 5.")
    await r.send(photos=(Photo(first), Photo(second)), text="Яма")  # a repeat, a new one, a short caption
    assert len(r.replies) == 2 and text_is(r.replies[1], "report.description.ask")
    assert r.replies[0].text.splitlines() == [
        "Добавлено 1 фото.",
        "1 фото уже было добавлено раньше — повторно не сохраняем.",
        "Фото сохранены для обращения: 2 из 5. Теперь опишите проблему текстом.",
        t("ru", "report.description.too_short", count=10),
    ]
    await r.say("Глубокая яма на проезжей части у остановки.")
    await r.expect("report.photos.ask_more")
    assert "Приложено фото: 2 из 5" in r.replies[0].text
    await r.press("photos:done")
    await r.press("review:submit")
    ticket = await engine.db.run(lambda store: store.tickets.get(1))
    assert ticket is not None and ticket.photos == (first, second)


async def test_duplicate_photo_is_announced_as_already_added_not_added(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine, language="en")
    sha = await stored_photo(engine, photos)
    await to_description(r)
    await r.say("A deep pothole on the carriageway by the bus stop.")
    await r.photos(sha)
    await r.expect("report.photos.ask_more")
    assert r.replies[0].text.startswith("1 photo added.\nPhotos attached: 1 of 5.")
    await r.photos(sha)
    await r.expect("report.photos.ask_more")
    assert r.replies[0].text.startswith("1 photo was already added before — not saved twice.\n")
    assert "added.\n" not in r.replies[0].text and "1 of 5" in r.replies[0].text


async def test_at_five_of_five_the_prompt_says_the_limit_is_reached_and_offers_done(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine)
    shas = [await stored_photo(engine, photos, (i * 40, 0, 60)) for i in range(5)]
    await to_description(r)
    await r.say("Яма глубиной сантиметров двадцать.")
    await r.photos(*shas[:4])
    await r.expect("report.photos.ask_more")
    await r.photos(shas[4])
    await r.expect("report.photos.full")
    assert "Пришлите ещё" not in r.replies[0].text and "это максимум" in r.replies[0].text
    await r.command("help")  # re-asked: still full, no news repeated
    assert r.replies[-1].text == t("ru", "report.photos.full", news="", count=5, max=5)
    await r.press("photos:done")
    await r.expect("report.review.ask")


async def test_one_report_reads_naturally_and_english_says_no_with_a_clear_date(engine: Engine) -> None:
    r = Resident(engine, language="en")
    await to_description(r)
    await r.say("A deep pothole on the carriageway by the bus stop.")
    await r.press("photos:done")
    await r.press("review:submit")
    await r.expect("report.submitted", "menu.prompt")
    assert r.replies[0].text.startswith("Report No. 1 registered")
    assert re.search(r"by \d{1,2} (Dec|Jan) 20\d\d\.$", r.replies[0].text), r.replies[0].text
    await r.command("my")
    assert r.replies[0].text == "Your report:"
    await r.press("ticket:1")
    assert "Report No. 1\n" in r.replies[0].text and "Created: 1 Dec 2026, 10:00" in r.replies[0].text
    russian = Resident(engine, chat_id="300")  # elsewhere: not offered to join the first one
    await russian.command("my")
    await russian.expect("mine.empty")
    await to_description(russian, (52.2790, 104.3000))
    await russian.say("Глубокая яма на проезжей части у остановки.")
    await russian.press("photos:done")
    await russian.press("review:submit")
    await russian.command("my")
    assert russian.replies[0].text == "Ваше обращение:"
