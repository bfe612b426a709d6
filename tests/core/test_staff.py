"""Staff working through the bot: invites, the card they are sent, take / comment / resolve / reject, and
the refusals (not staff, another organisation's ticket, a stale button, a race on Take)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.domain.tickets import Status
from core.engine import Engine
from core.messages import Reply
from core.municipality import Municipality
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.stores import UNITS_OF_WORK, engine_over
from tests.support import Clock, Resident, Staff, delivered, invite, stored_photo, submit_report, text_is


@pytest.fixture(params=UNITS_OF_WORK)
def engine(request: pytest.FixtureRequest, demo: Municipality) -> Engine:
    """The engine over the database and over the in-memory unit of work: the same transcripts on both."""
    return engine_over(request, demo)


ROADS = "roads_service"  # a pothole anywhere in the city goes here
UK = "uk_pravoberezhnaya"


def buttons(reply: Reply) -> list[str]:
    return [data for row in reply.buttons for _label, data in row]


async def ticket_of(engine: Engine, number: int):  # type: ignore[no-untyped-def]
    return await engine.db.run(lambda store: store.tickets.get(number))


async def test_invite_codes_are_single_use_and_expire(engine: Engine) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine)
    await s.command("staff")
    await s.expect("staff.invite.usage")
    await s.command("staff", "AAAA-BBBB")
    await s.expect("staff.invite.invalid")

    code = await invite(engine, ROADS)
    await s.command("staff", code.lower().replace("-", " "))  # case, spaces and dashes do not matter
    await s.expect("staff.joined")
    assert "st:q" in buttons(s.replies[0])

    other = Staff(engine, "s2", name="Другой")
    await other.command("staff", code)
    await other.expect("staff.invite.used")

    late = await invite(engine, ROADS)
    clock.advance(hours=73)
    await other.command("staff", late)
    await other.expect("staff.invite.expired")

    dispatcher = Staff(engine, "d1", name="Диспетчер")
    await dispatcher.join("dispatch", "dispatcher")
    members = await engine.db.run(lambda store: store.staff.all())
    assert [(m.organisation, m.role) for m in members] == [(ROADS, "staff"), ("dispatch", "dispatcher")]


async def test_a_sixth_wrong_staff_code_within_an_hour_is_refused_unchecked_until_the_hour_is_over(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """300 wrong `/staff CODE` tries from one chat met no limit and left nothing in the log."""
    clock = Clock(NOW)
    engine.clock = clock
    guesser = Staff(engine, "g1")
    with caplog.at_level(logging.WARNING, logger="core.staffing"):
        for n in range(5):
            await guesser.command("staff", f"ZZZZ-ZZZ{n + 2}")
            await guesser.expect("staff.invite.invalid")
            clock.advance(minutes=1)
    failures = [r.getMessage() for r in caplog.records if "wrong /staff code" in r.getMessage()]
    assert len(failures) == 5 and "test chat" in failures[0] and "5 of 5" in failures[-1]
    assert not any("ZZZZ" in m or "g1" in m for m in failures)  # neither the code nor the chat id

    code = await invite(engine, ROADS)
    await guesser.command("staff", code)  # the right code, but only after the hour
    await guesser.expect("staff.invite.too_many")
    assert "11:00" in guesser.replies[0].text  # the first wrong try (10:00 in Irkutsk) ages out then

    restarted = Engine(engine.db, engine.municipality, clock=clock)  # the count is in the database
    again = Staff(restarted, "g1")
    clock.advance(minutes=54)  # 10:59
    await again.command("staff", code)
    await again.expect("staff.invite.too_many")
    other = Staff(restarted, "g2")  # another chat is not held back
    await other.command("staff", "ZZZZ-ZZZZ")
    await other.expect("staff.invite.invalid")

    clock.advance(minutes=1)  # 11:00: the first wrong try is an hour old
    await again.command("staff", code)
    await again.expect("staff.joined")


async def test_a_resident_reaches_no_staff_command_or_button(engine: Engine) -> None:
    r = Resident(engine)
    number = await submit_report(r)
    for command in ("queue", "ticket"):
        await r.command(command, str(number))
        await r.expect("staff.only", "menu.prompt")
    for data in (f"st:take:{number}", f"st:res:{number}", f"st:open:{number}", "st:q", f"dp:route:{number}"):
        await r.send(button=data)
        await r.expect("staff.only", "menu.prompt")
    assert (await ticket_of(engine, number)).status == Status.ASSIGNED


async def test_the_full_staff_path_take_comment_resolve_with_photos(
    engine: Engine, photos: PhotoStore
) -> None:
    s = Staff(engine)
    await s.join(ROADS)
    r = Resident(engine)
    report_photo = await stored_photo(engine, photos, (10, 10, 200))
    number = await submit_report(r, photos=(report_photo,))

    # the card: number, place, description, the resident's photo and pin, Take / Reject
    [card] = await delivered(engine, s)
    assert text_is(card, "staff.card.text") and f"№ {number}" in card.text
    assert "Глубокая яма" in card.text and card.photos[0].sha256 == report_photo
    assert card.location is not None and card.extra["lang"] == "ru"
    assert {f"st:take:{number}", f"st:rej:{number}"} <= set(buttons(card))

    await s.command("queue")
    await s.expect("staff.queue.title")
    await s.press(f"st:open:{number}")
    await s.expect("staff.card.text")

    await s.press(f"st:take:{number}")
    await s.expect("staff.take.done")
    assert f"st:res:{number}" in buttons(s.replies[0])
    [taken] = await delivered(engine, r)
    assert text_is(taken, "notify.taken")

    await s.press(f"st:com:{number}")
    await s.expect("staff.comment.ask")
    await s.say("Выезд бригады запланирован на четверг.")
    await s.expect("staff.comment.sent")
    [comment] = await delivered(engine, r)
    assert text_is(comment, "notify.comment") and "на четверг" in comment.text

    await s.send(button=f"st:res:{number}")
    await s.expect("staff.resolve.photos_ask")
    await s.say("готово")  # text where a photo is required
    await s.expect("staff.resolve.photo_required", "staff.resolve.photos_ask")
    await s.send(button="res:done")  # "done" without a photo: refused
    await s.expect("staff.resolve.photo_required", "staff.resolve.photos_ask")
    done_photo = await stored_photo(engine, photos, (0, 200, 0))
    await s.photos(done_photo)
    await s.expect("staff.resolve.photos_more")
    await s.press("res:done")
    await s.expect("staff.resolve.comment_ask")
    await s.say("Яму заделали асфальтом.")
    await s.expect("staff.resolve.done")

    [resolved] = await delivered(engine, r)
    assert text_is(resolved, "notify.resolved") and "асфальтом" in resolved.text
    assert [p.sha256 for p in resolved.photos] == [done_photo]
    assert buttons(resolved) == [*(f"vd:rate:{number}:{n}" for n in range(1, 6)), f"vd:nf:{number}"]

    ticket = await ticket_of(engine, number)
    assert ticket.status == Status.RESOLVED and ticket.resolution_photos == (done_photo,)
    assert [e.action.value for e in ticket.events] == ["create", "assign", "take", "comment", "resolve"]
    assert ticket.events[2].actor.startswith("staff:") and ticket.events[2].data["name"] == "Иван Петров"
    assert ticket.events[4].photos == (done_photo,)


async def test_cancel_a_resolve_keeps_the_ticket(engine: Engine) -> None:
    s = Staff(engine)
    await s.join(ROADS)
    number = await submit_report(Resident(engine))
    await s.send(button=f"st:take:{number}")
    await s.send(button=f"st:res:{number}")
    await s.command("start")
    await s.expect("staff.resume", "staff.resolve.photos_ask")
    await s.press("report:cancel")
    await s.expect("staff.cancelled")
    assert (await ticket_of(engine, number)).status == Status.IN_PROGRESS


async def test_two_staff_press_take_at_once_exactly_one_wins(engine: Engine) -> None:
    a = Staff(engine, "sa", name="Анна")
    b = Staff(engine, "sb", name="Борис")
    await a.join(ROADS)
    await b.join(ROADS)
    number = await submit_report(Resident(engine))
    results = await asyncio.gather(a.send(button=f"st:take:{number}"), b.send(button=f"st:take:{number}"))
    outcomes = sorted(
        "won" if text_is(replies[0], "staff.take.done") else "lost"
        for replies in results
        if text_is(replies[0], "staff.take.done") or text_is(replies[0], "staff.take.already")
    )
    assert outcomes == ["lost", "won"], [r[0].text for r in results]
    ticket = await ticket_of(engine, number)
    winner, loser = (a, b) if text_is(results[0][0], "staff.take.done") else (b, a)
    assert winner.name in loser.replies[0].text  # the loser is told who has it
    assert [e.action.value for e in ticket.events].count("take") == 1
    await winner.send(button=f"st:take:{number}")
    await winner.expect("staff.take.mine")


async def test_staff_of_another_organisation_and_stale_buttons_are_refused(
    engine: Engine, photos: PhotoStore
) -> None:
    roads = Staff(engine, "s1")
    uk = Staff(engine, "s2", name="Сотрудник УК")
    await roads.join(ROADS)
    await uk.join(UK)
    number = await submit_report(Resident(engine))
    for data in (f"st:take:{number}", f"st:res:{number}", f"st:rej:{number}", f"st:open:{number}"):
        await uk.send(button=data)
        await uk.expect("staff.foreign")
    await uk.command("ticket", str(number))
    await uk.expect("staff.foreign")
    await uk.send(button="st:take:999")
    await uk.expect("staff.not_found")

    await roads.send(button=f"st:res:{number}")  # resolving without taking is allowed
    await roads.photos(await stored_photo(engine, photos))
    await roads.press("res:done")
    await roads.press("res:skip")
    await roads.expect("staff.resolve.done")
    for data in (f"st:take:{number}", f"st:res:{number}", f"st:rej:{number}"):
        await roads.send(button=data)
        await roads.expect("staff.stale")
    await roads.send(button="st:frobnicate:1")
    await roads.expect("button.stale")


async def test_reject_with_reasons_and_duplicate_number(engine: Engine) -> None:
    s = Staff(engine)
    await s.join(ROADS)
    r = Resident(engine)
    first = await submit_report(r)
    second = await submit_report(r, point=(52.2700, 104.3000), description="Ещё одна яма на этой улице.")
    await delivered(engine, r)

    await s.send(button=f"st:rej:{second}")
    await s.expect("staff.reject.ask")
    assert buttons(s.replies[0])[:4] == ["rej:wrong_org", "rej:duplicate", "rej:not_municipal", "rej:spam"]
    await s.say("просто текст")
    await s.expect("staff.reject.retry", "staff.reject.ask")
    await s.press("rej:duplicate")
    await s.expect("staff.reject.duplicate_ask")
    await s.say("номер сто")
    await s.expect("staff.reject.duplicate_retry", "staff.reject.duplicate_ask")
    await s.say(str(second))
    await s.expect("staff.reject.duplicate_self", "staff.reject.duplicate_ask")
    await s.say("999")
    await s.expect("staff.reject.duplicate_unknown", "staff.reject.duplicate_ask")
    await s.say(f"№ {first}")
    await s.expect("staff.reject.done")

    [rejected] = await delivered(engine, r)
    assert text_is(rejected, "notify.rejected") and f"№ {first}" in rejected.text
    ticket = await ticket_of(engine, second)
    assert ticket.status == Status.REJECTED
    assert ticket.events[-1].data == {
        "reason": "duplicate",
        "duplicate_of": str(first),
        "name": "Иван Петров",
    }

    await s.send(button=f"st:rej:{first}")
    await s.press("rej:not_municipal")
    await s.expect("staff.reject.done")
    [rejected] = await delivered(engine, r)
    assert "не относится к ведению города" in rejected.text


async def test_wrong_organisation_returns_the_ticket_to_the_dispatcher(engine: Engine) -> None:
    s = Staff(engine)
    d = Staff(engine, "d1", name="Диспетчер Мария")
    await s.join(ROADS)
    await d.join("dispatch", "dispatcher")
    r = Resident(engine)
    number = await submit_report(r)
    await s.send(button=f"st:take:{number}")
    await delivered(engine, r)

    await s.send(button=f"st:rej:{number}")
    await s.press("rej:wrong_org")
    await s.expect("staff.reject.returned")
    ticket = await ticket_of(engine, number)
    assert ticket.status == Status.NEW and ticket.organisation == "dispatch" and ticket.taken_by is None
    assert ticket.events[-1].action.value == "return" and ticket.events[-1].data["from"] == ROADS

    [returned] = await delivered(engine, r)
    assert text_is(returned, "notify.returned")
    [card] = await delivered(engine, d)
    assert text_is(card, "staff.card.text") and "вернул обращение" in card.text
    assert f"dp:route:{number}" in buttons(card)
    await s.send(button=f"st:take:{number}")  # the old card of the organisation no longer works
    await s.expect("staff.foreign")


async def test_english_speaking_staff_get_english_cards(engine: Engine) -> None:
    s = Staff(engine, language="en", name="John")
    code = await invite(engine, ROADS)
    await s.command("staff", code)
    await s.expect("staff.joined")
    await submit_report(Resident(engine))
    [card] = await delivered(engine, s)
    assert text_is(card, "staff.card.text", "en") and card.extra["lang"] == "en"


async def test_staff_help_lists_staff_commands_not_the_resident_help(engine: Engine) -> None:
    s = Staff(engine)
    await s.join(ROADS)
    await s.command("help")
    await s.expect("help.staff", "menu.prompt")
    assert "/queue" in s.replies[0].text and "/ticket N" in s.replies[0].text
    assert "/web" in s.replies[0].text  # the sign-in link to the city's web
    await s.press("menu:help")
    await s.expect("help.staff", "menu.prompt")

    d = Staff(engine, "d1", name="Dispatcher", language="en")
    await d.join("dispatch", "dispatcher")
    await d.command("help")
    await d.expect("help.dispatcher", "menu.prompt")
    assert "/queue" in d.replies[0].text

    r = Resident(engine)
    await r.command("help")
    await r.expect("help.text", "menu.prompt")
