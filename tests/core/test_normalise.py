"""Text input is normalised once where it enters the engine: NFC, no control, bidi-override or
zero-width characters, so staff get clean cards on every channel, and input that was only such characters is
an empty message."""

from __future__ import annotations

import unicodedata

import pytest

from core.engine import Engine
from core.messages import ChatRef, Incoming
from core.normalise import normalise_incoming, normalise_text
from tests.support import Resident, Staff, delivered, submit_report, text_is

INVISIBLE = (
    "\x00\x07\x1b\x7f\x9b\u061c\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Яма\x00 у\u202e дома\u200b", "Яма у дома"),
        ("a\u2066b\u2069c\u200ed\u200fe\ufeff", "abcde"),
        ("one\r\ntwo\rthree\u2028four\x85five", "one\ntwo\nthree\nfour\nfive"),
        ("tab\there", "tab here"),
        ("e\u0301", "é"),  # NFC
        ("\ud800lone surrogate", "lone surrogate"),  # cannot even be encoded to UTF-8
        ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),  # a joiner inside an emoji stays
        ("a\u200db \u200d", "ab "),  # elsewhere it goes
        (INVISIBLE, ""),
    ],
)
def test_normalise_text(raw: str, clean: str) -> None:
    assert normalise_text(raw) == clean


def test_every_free_text_field_of_an_incoming_is_normalised() -> None:
    raw = Incoming(
        ChatRef("test", "1"), "k", text="x\x00y", command="start\u200b", args="\u202eAB",
        display_name="И\x00ван", contact="+7\u200b900", button="st:take:\x00",
    )  # fmt: skip
    clean = normalise_incoming(raw)
    assert (clean.text, clean.command, clean.args, clean.display_name, clean.contact) == (
        "xy", "start", "AB", "Иван", "+7900",
    )  # fmt: skip
    assert (
        clean.button == "st:take:\x00"
    )  # button data is parsed strictly, never cleaned into something valid


async def test_control_characters_in_a_description_reach_the_staff_card_clean(engine: Engine) -> None:
    s = Staff(engine, name="Иван\u202e Петров\x00")
    await s.join("roads_service")
    r = Resident(engine)
    number = await submit_report(r, description="Глубокая\x00 яма\u202e у\u200b остановки\ufeff, e\u0301.")
    [card] = await delivered(engine, s)
    assert text_is(card, "staff.card.text")
    assert "Глубокая яма у остановки, é." in card.text
    assert not set(INVISIBLE) & set(card.text)
    assert unicodedata.is_normalized("NFC", card.text)
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.description == "Глубокая яма у остановки, é."
    [member] = await engine.db.run(lambda store: store.staff.all())
    assert member.name == "Иван Петров"


async def test_a_description_of_control_characters_only_is_reasked(engine: Engine) -> None:
    r = Resident(engine)
    await r.command("new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(52.2870, 104.2810)
    await r.expect("report.description.ask")
    await r.say(INVISIBLE)  # 22 characters, none of them visible: used to be taken as the description
    await r.expect("input.empty", "report.description.ask")
    await r.say("\u202e\u200b  \x00\n")
    await r.expect("input.empty", "report.description.ask")
