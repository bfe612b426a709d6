"""Residents are told that joining a nearby report raises its priority — staff see the
supporter count on the card, `/queue` puts the most supported first after the overdue ones, and
`otklik tickets list` shows the count."""

from __future__ import annotations

import json

import pytest

from core.engine import Engine
from core.messages import Reply
from tests.conftest import NOW
from tests.support import Clock, Resident, Staff, delivered, submit_report, text_is

ROADS = "roads_service"
A = (52.2870, 104.2810)
B = (52.2900, 104.2810)  # ~330 m from A: not "nearby"
C = (52.2930, 104.2810)


def buttons(reply: Reply) -> list[str]:
    return [data for row in reply.buttons for _label, data in row]


async def support(r: Resident, number: int, point: tuple[float, float]) -> None:
    """A resident about to report the same pothole joins ticket `number` instead."""
    await r.command("new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(*point)
    await r.expect("report.nearby.ask")
    await r.press(f"nearby:same:{number}")
    await r.expect("report.nearby.joined", "menu.prompt")


async def test_queue_orders_overdue_then_supporters_then_deadline(engine: Engine) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine)
    await s.join(ROADS)
    overdue = await submit_report(Resident(engine, "1"), point=C)
    clock.advance(days=30)  # the first one is now past its deadline
    plain = await submit_report(Resident(engine, "2"), point=A)
    supported = await submit_report(Resident(engine, "3"), point=B)
    await support(Resident(engine, "4"), supported, B)
    await support(Resident(engine, "5"), supported, B)

    await s.command("queue")
    await s.expect("staff.queue.title")
    assert buttons(s.replies[0]) == [f"st:open:{n}" for n in (overdue, supported, plain)]
    labels = [label for row in s.replies[0].buttons for label, _data in row]
    assert labels[0].startswith("⚠️") and labels[1].endswith("👥 2") and "👥" not in labels[2]


async def test_staff_card_shows_the_supporter_count(engine: Engine) -> None:
    s = Staff(engine)
    await s.join(ROADS)
    number = await submit_report(Resident(engine, "1"), point=A)
    [card] = await delivered(engine, s)
    assert "Поддержали" not in card.text  # nobody yet: no line
    await support(Resident(engine, "2"), number, A)
    await s.send(button=f"st:open:{number}")
    await s.expect("staff.card.text")
    assert "Поддержали жители: 1" in s.replies[0].text

    en = Staff(engine, "s2", name="Ann", language="en")
    await en.join(ROADS)
    await en.command("ticket", str(number))
    assert text_is(en.replies[0], "staff.card.text", "en")
    assert "Supported by residents: 1" in en.replies[0].text


@pytest.mark.e2e
def test_tickets_list_shows_supporters(otklik) -> None:  # type: ignore[no-untyped-def]
    report = "/start\n1\nДороги\n1\n/loc 52.2870 104.2810\nГлубокая яма у остановки, объезжают.\n1\n1\n"
    otklik("chat", "--user", "author", stdin=report)
    joined = otklik("chat", "--user", "neighbour", stdin="/new\nДороги\n1\n/loc 52.28701 104.28101\n1\n")
    assert "Вы присоединились к обращению № 1" in joined
    listed = json.loads(otklik("tickets", "list", "--json"))
    assert [(t["number"], t["supporters"]) for t in listed] == [(1, 1)]
    assert "👥 1 supporters" in otklik("tickets", "list")
