"""The dispatcher: tickets nobody's area covers arrive at the dispatcher, who routes them with a button list;
re-routing is recorded in the history; only dispatchers may route."""

from __future__ import annotations

from core.domain.tickets import Status
from core.engine import Engine
from core.messages import Reply
from tests.support import Resident, Staff, delivered, submit_report, text_is

UNCOVERED = {"category": "other", "subcategory": "other.misc", "description": "Непонятно, куда обращаться."}


def buttons(reply: Reply) -> list[str]:
    return [data for row in reply.buttons for _label, data in row]


async def test_dispatcher_routes_an_unrouted_ticket_and_reroutes_it(engine: Engine) -> None:
    d = Staff(engine, "d1", name="Диспетчер Мария")
    await d.join("dispatch", "dispatcher")
    improvement = Staff(engine, "s1", name="Благоустройство")
    await improvement.join("city_improvement")
    roads = Staff(engine, "s2", name="Дороги")
    await roads.join("roads_service")
    r = Resident(engine)
    number = await submit_report(r, **UNCOVERED)
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.NEW and ticket.organisation == "dispatch"

    [card] = await delivered(engine, d)
    assert text_is(card, "staff.card.text")
    assert buttons(card) == [f"dp:route:{number}", f"st:rej:{number}", f"dp:place:{number}"]
    assert await delivered(engine, improvement) == []

    await d.command("queue")
    await d.expect("staff.queue.title")
    assert buttons(d.replies[0]) == [f"st:open:{number}"]

    await d.send(button=f"dp:route:{number}")
    await d.expect("dispatch.route_ask")
    choices = buttons(d.replies[0])
    assert f"dp:to:{number}:dispatch" not in choices and all(len(c.encode()) <= 64 for c in choices)
    await d.press(f"dp:to:{number}:city_improvement")
    await d.expect("dispatch.routed")

    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.ASSIGNED and ticket.organisation == "city_improvement"
    assert ticket.events[-1].action.value == "assign" and ticket.events[-1].actor.startswith("staff:")
    [assigned] = await delivered(engine, r)
    assert text_is(assigned, "notify.assigned")
    [card] = await delivered(engine, improvement)
    assert f"st:take:{number}" in buttons(card)

    # a re-route, recorded; the new organisation gets the card, the resident is told
    await d.send(button=f"dp:route:{number}")
    assert f"dp:to:{number}:city_improvement" not in buttons(d.replies[0])
    await d.press(f"dp:to:{number}:roads_service")
    await d.expect("dispatch.routed")
    await d.send(button=f"dp:to:{number}:roads_service")
    await d.expect("dispatch.same")
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.organisation == "roads_service"
    assert ticket.events[-1].action.value == "reroute"
    assert ticket.events[-1].data["from"] == "city_improvement"
    assert text_is((await delivered(engine, r))[0], "notify.rerouted")
    assert len(await delivered(engine, roads)) == 1

    await improvement.send(button=f"st:take:{number}")  # its old card: no longer theirs
    await improvement.expect("staff.foreign")


async def test_only_dispatchers_route(engine: Engine) -> None:
    s = Staff(engine)
    await s.join("roads_service")
    number = await submit_report(Resident(engine))
    await s.send(button=f"dp:route:{number}")
    await s.expect("dispatch.only")
    await s.send(button=f"dp:to:{number}:lighting")
    await s.expect("dispatch.only")


async def test_dispatcher_rejects_spam_without_the_wrong_organisation_reason(engine: Engine) -> None:
    d = Staff(engine, "d1")
    await d.join("dispatch", "dispatcher")
    r = Resident(engine)
    number = await submit_report(r, **UNCOVERED)
    await d.send(button=f"st:rej:{number}")
    await d.expect("staff.reject.ask")
    assert "rej:wrong_org" not in buttons(d.replies[0])
    await d.press("rej:spam")
    await d.expect("staff.reject.done")
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket.status == Status.REJECTED
    assert text_is((await delivered(engine, r))[0], "notify.rejected")
