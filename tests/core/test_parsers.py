"""Every button and command parser survives any string: residents, staff and dispatchers, in the
states where the parsers are reachable, get at least one polite reply to any button data, command argument or
text, and no update raises. Numbers are ASCII digits and bounded (core/parsing.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import Engine
from core.parsing import MAX_ID, parse_id
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.support import Resident, Staff, delivered, stored_photo, submit_report

ROADS = "roads_service"
HUGE = "99999999999999999999"
ODD_NUMBERS = (
    "",
    "0",
    "-1",
    "+1",
    " 1",
    "1 ",
    "²",
    "١٢",
    "５",
    "1_000",
    "0x1f",
    "1e3",
    HUGE,
    str(MAX_ID + 1),
)


# --- the helper --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", (*ODD_NUMBERS, "9" * 5000, "1" * 11, "00000000001"))
def test_parse_id_refuses_anything_but_a_bounded_ascii_number(text: str) -> None:
    assert parse_id(text) is None


def test_parse_id_takes_ascii_numbers_within_the_bounds() -> None:
    assert parse_id("1") == 1
    assert parse_id("0012") == 12
    assert parse_id(str(MAX_ID)) == MAX_ID
    assert parse_id("0", minimum=0) == 0
    assert parse_id("5", maximum=5) == 5
    assert parse_id("6", maximum=5) is None


# --- regressions: the reported cases through the engine ----------------------------------------------------
async def test_ticket_command_with_a_huge_number_is_refused(engine: Engine) -> None:
    """`/ticket 99999999999999999999` raised OverflowError in the database and crashed the update."""
    s = Staff(engine)
    await s.join(ROADS)
    for args in (HUGE, "²", "١٢", "-1", "0", "№²", str(MAX_ID + 1)):
        await s.command("ticket", args)
        await s.expect("staff.ticket_usage")
    await s.command("ticket", str(MAX_ID))
    await s.expect("staff.not_found")


async def test_staff_button_with_a_unicode_digit_is_stale(engine: Engine) -> None:
    """`st:take:²`: "²".isdigit() is true and int("²") raises ValueError."""
    s = Staff(engine)
    await s.join(ROADS)
    number = await submit_report(Resident(engine))
    for data in (
        "st:take:²",
        "st:take:١٢",
        f"st:take:{HUGE}",
        "st:take:",
        "st:take:-1",
        f"st:take:{number}:1",
    ):
        await s.send(button=data)
        await s.expect("button.stale")
    await s.send(button=f"st:take:{number}")
    await s.expect("staff.take.done")


async def test_forged_resident_and_dispatcher_buttons_with_odd_numbers_are_stale(engine: Engine) -> None:
    r = Resident(engine)
    number = await submit_report(r)
    for odd in ODD_NUMBERS:
        await r.send(button=f"ticket:{odd}")
        await r.expect("button.stale", "menu.prompt")
    await r.send(button=f"ticket:{number}")
    await r.expect("ticket.details")

    d = Staff(engine, "d1", name="Диспетчер")
    await d.join("dispatch", "dispatcher")
    for odd in ODD_NUMBERS:
        for data in (f"dp:route:{odd}", f"dp:to:{odd}:{ROADS}", f"st:open:{odd}", f"st:rej:{odd}"):
            await d.send(button=data)
            await d.expect("button.stale")
    await d.send(button=f"dp:route:{number}")
    await d.expect("dispatch.route_ask")


async def test_nearby_button_with_a_unicode_digit_is_stale(engine: Engine) -> None:
    number = await submit_report(Resident(engine))
    r = Resident(engine, "101")
    await r.command("new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(52.2870, 104.2810)
    await r.expect("report.nearby.ask")
    for odd in ODD_NUMBERS:
        await r.send(button=f"nearby:same:{odd}")
        await r.expect("button.stale", "report.nearby.ask")
    await r.send(button=f"nearby:same:{number}")
    await r.expect("report.nearby.joined", "menu.prompt")


async def test_duplicate_number_with_a_unicode_digit_is_reasked(engine: Engine) -> None:
    s = Staff(engine)
    await s.join(ROADS)
    first = await submit_report(Resident(engine))
    number = await submit_report(Resident(engine, "101"), point=(52.30, 104.30))
    await s.send(button=f"st:rej:{number}")
    await s.press("rej:duplicate")
    await s.expect("staff.reject.duplicate_ask")
    for odd in ("²", "١٢", HUGE, "-1", "0", "№ ５"):
        await s.say(odd)
        await s.expect("staff.reject.duplicate_retry", "staff.reject.duplicate_ask")
    await s.say(f"№ {first}")
    await s.expect("staff.reject.done")


# --- the property: any string, any persona, always an answer, never an exception --------------------------
PREFIXES = (
    "st", "st:take", "st:open", "st:com", "st:res", "st:rej", "st:q", "dp", "dp:route", "dp:to", "vd",
    "vd:rate", "vd:nf", "ticket", "lang", "menu", "nearby", "nearby:same", "place", "place:pick", "cat",
    "sub", "photos", "review", "review:edit", "res", "rej", "ro", "report",
)  # fmt: skip
NUMBER = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=4),  # "²", "١٢", "５"…
)
WORD = st.sampled_from(
    ("1", "2", "5", "12", "9" * 70, "x" * 80, "take", "rate", "to", ROADS, "dispatch", ":")
)
PART = st.one_of(NUMBER, NUMBER, WORD, st.text(max_size=12))
BUTTON = st.one_of(
    st.builds(
        lambda prefix, parts: ":".join([prefix, *parts]),
        st.sampled_from(PREFIXES),
        st.lists(PART, min_size=1, max_size=3),
    ),
    st.builds(lambda prefix, part: f"{prefix}:{part}", st.sampled_from(PREFIXES), NUMBER),
    st.text(max_size=100),  # anything at all, 64+ bytes included
)
COMMAND = st.one_of(
    st.sampled_from(("ticket", "staff", "queue", "language", "start", "help", "new", "my", "cancel")),
    st.text(max_size=20),
)
ARGS = st.one_of(NUMBER, PART, st.text(max_size=80), st.lists(PART, max_size=4).map(" ".join))
TEXT = st.one_of(st.text(max_size=200), PART)


@dataclass
class Persona:
    who: Resident
    state: dict[str, Any]
    """Put back before each input: the state in which this persona's parsers are reachable."""


async def _state(who: Resident) -> dict[str, Any]:
    found = await who.engine.db.run(lambda store: store.dialogs.load(who.chat))
    return copy.deepcopy(found or {})


async def _personas(engine: Engine, photos: PhotoStore) -> list[Persona]:
    """Residents mid-report and with a resolved ticket, staff with a card open and in each task, and a
    dispatcher with the queue and a routing list."""
    s = Staff(engine)
    await s.join(ROADS)
    d = Staff(engine, "d1", name="Диспетчер")
    await d.join("dispatch", "dispatcher")
    owner = Resident(engine, "100")
    resolved = await submit_report(owner)
    waiting = await submit_report(Resident(engine, "102"), point=(52.30, 104.30))
    await s.send(button=f"st:take:{resolved}")
    await s.send(button=f"st:res:{resolved}")
    await s.photos(await stored_photo(engine, photos))
    await s.send(button="res:done")
    await s.send(button="res:skip")
    await s.expect("staff.resolve.done")
    await delivered(engine, owner)

    personas: list[Persona] = []

    async def keep(who: Resident, *keys: str) -> None:
        if keys:
            await who.expect(*keys)
        personas.append(Persona(who, await _state(who)))

    await owner.command("my")
    await keep(owner)  # idle, with a resolved ticket to rate
    await owner.send(button=f"vd:nf:{resolved}")
    await keep(owner, "verdict.reopen.ask")
    await owner.say("Яма снова на месте после дождя.")
    await keep(owner, "verdict.reopen.photos_ask")
    await owner.command("cancel")

    r = Resident(engine, "101")
    await r.command("new")
    await keep(r, "report.category.ask")
    await r.press("cat:roads")
    await keep(r, "report.subcategory.ask")
    await r.press("sub:roads.pothole")
    await keep(r, "report.location.ask")
    await r.pin(52.2870, 104.2810)
    await keep(r, "report.nearby.ask")
    await r.press("nearby:different")
    await keep(r, "report.description.ask")
    await r.say("Большая яма посреди дороги, объезжают по встречной.")
    await keep(r, "report.photos.ask")
    await r.press("photos:done")
    await keep(r, "report.review.ask")
    place = {"stage": "choose", "query": "ул. Советская, 3", "candidates": [["A", 52.28, 104.28, ""]] * 2}
    state = copy.deepcopy(personas[-5].state)  # at the place step, with a list of addresses to pick from
    state["slots"]["place"] = place
    personas.append(Persona(r, state))

    await s.send(button=f"st:open:{waiting}")
    await keep(s, "staff.card.text")
    await s.send(button=f"st:com:{waiting}")
    await keep(s, "staff.comment.ask")
    await s.command("cancel")
    await s.send(button=f"st:take:{waiting}")
    await s.send(button=f"st:res:{waiting}")
    await keep(s, "staff.resolve.photos_ask")
    await s.command("cancel")
    await s.send(button=f"st:rej:{waiting}")
    await keep(s, "staff.reject.ask")
    await s.press("rej:duplicate")
    await keep(s, "staff.reject.duplicate_ask")
    await s.command("cancel")

    await d.command("queue")
    await keep(d)
    await d.send(button=f"dp:route:{waiting}")
    await keep(d, "dispatch.route_ask")
    await d.send(button=f"st:rej:{waiting}")
    await keep(d, "staff.reject.ask")
    await d.command("cancel")
    return personas


@pytest.fixture
async def personas(engine: Engine, photos: PhotoStore) -> list[Persona]:
    return await _personas(engine, photos)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_string_as_button_command_or_text_gets_an_answer(
    personas: list[Persona], data: Any
) -> None:
    persona = data.draw(st.sampled_from(personas), label="persona")
    inputs = (
        {"button": data.draw(BUTTON, label="button")},
        {"command": data.draw(COMMAND, label="command"), "args": data.draw(ARGS, label="args")},
        {"text": data.draw(TEXT, label="text")},
    )
    who = persona.who
    for fields in inputs:
        state = copy.deepcopy(persona.state)
        await who.engine.db.run(lambda store, state=state: store.dialogs.save(who.chat, state, NOW))
        replies = await who.send(**fields)
        assert replies, f"no answer to {fields!r}"
        assert all(reply.text for reply in replies)
