"""`otklik staff remove PERSON` ends a person's staff access at once — their next staff
button or command is refused as for anyone who is not staff, a staff task they had started ends, what was
queued for them as staff is never delivered — while ticket history keeps who did what."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.engine import Engine
from storage.tables import outbox
from tests.conftest import NOW
from tests.support import Resident, Staff, delivered, submit_report

ROADS = "roads_service"


async def outbox_of(engine: Engine, who: Resident) -> list[tuple[str, str]]:
    table = outbox

    def rows(store):  # type: ignore[no-untyped-def]
        query = (
            select(table.c.status, table.c.payload)
            .where(table.c.channel == who.chat.channel, table.c.chat_id == who.chat.chat_id)
            .order_by(table.c.id)
        )
        return [(r.status, r.payload["text"]) for r in store.conn.execute(query)]

    return await engine.db.run(rows)


async def test_removed_staff_are_refused_at_once_and_history_keeps_their_name(engine: Engine) -> None:
    s = Staff(engine, name="Иван Петров")
    await s.join(ROADS)
    colleague = Staff(engine, "s2", name="Пётр")
    await colleague.join(ROADS)
    r = Resident(engine)
    first = await submit_report(r)
    own = await submit_report(s, point=(52.2910, 104.2810))  # staff may report as residents too
    await colleague.send(button=f"st:take:{own}")  # Ivan hears of it as a resident
    await s.send(button=f"st:take:{first}")
    await s.expect("staff.take.done")
    await s.send(button=f"st:com:{first}")
    await s.expect("staff.comment.ask")  # mid-task when access ends
    second = await submit_report(Resident(engine, "101"), point=(52.2950, 104.2810))
    me = await engine.db.run(lambda store: store.staff.get(s.chat))

    dropped = await engine.db.run(lambda store: store.staff.remove(me.id, NOW))
    assert dropped == 3  # the cards of the three tickets: never delivered
    statuses = [status for status, _text in await outbox_of(engine, s)]
    assert statuses == ["dropped", "dropped", "pending", "dropped"]  # "taken" is for Ivan the resident
    assert await engine.db.run(lambda store: store.staff.remove(me.id, NOW)) == 0  # once

    await s.say("Выезд бригады в четверг.")  # the comment they were typing: refused, the task ends
    await s.expect("staff.only", "menu.prompt")
    for data in (f"st:take:{second}", f"st:open:{first}", "st:q", f"st:res:{first}"):
        await s.send(button=data)
        await s.expect("staff.only", "menu.prompt")
    await s.command("queue")
    await s.expect("staff.only", "menu.prompt")
    await s.command("help")
    await s.expect("help.text", "menu.prompt")  # the resident's help now
    await s.command("my")
    assert [d for _l, d in s.buttons()] == [f"ticket:{own}"]  # still a resident

    before = await outbox_of(engine, s)
    await submit_report(Resident(engine, "102"), point=(52.2990, 104.2810))
    assert await outbox_of(engine, s) == before  # no card for them any more
    assert len(await delivered(engine, colleague)) == 4  # the colleague's cards: first, own, second, third

    ticket = await engine.db.run(lambda store: store.tickets.get(first))
    take = ticket.events[2]
    assert take.action.value == "take" and take.actor == f"staff:{me.id}"
    assert take.data["name"] == "Иван Петров"
    assert (await engine.db.run(lambda store: store.staff.by_id(me.id))).name == "Иван Петров"
    await colleague.send(button=f"st:res:{first}")  # the ticket they held is not stuck
    await colleague.expect("staff.resolve.photos_ask")

    await s.join(ROADS)  # invited again: staff again
    await s.command("queue")
    await s.expect("staff.queue.title")


@pytest.mark.e2e
def test_staff_remove_from_the_command_line(otklik) -> None:  # type: ignore[no-untyped-def]
    code = json.loads(otklik("staff", "invite", "roads_service", "--json"))["code"]
    otklik("chat", "--user", "ivan", "--name", "Иван", stdin=f"/staff {code}\n")
    report = "/start\n1\nДороги\n1\n/loc 52.2870 104.2810\nГлубокая яма у остановки, объезжают.\n1\n1\n"
    otklik("chat", "--user", "resident", stdin=report)
    assert "console:ivan" in otklik("outbox", "list")  # the card waits for Ivan

    listed = otklik("staff", "list")
    assert listed.splitlines()[0].split() == ["id", "role", "organisation", "chat", "name"]
    assert listed.splitlines()[1].split()[:4] == ["1", "staff", "roads_service", "console:ivan"]

    out = otklik("staff", "remove", "1")
    assert "removed 1 Иван (staff, roads_service, console:ivan)" in out
    assert "pending notifications for them as staff dropped: 1" in out
    listed_after = otklik("outbox", "list")  # listed, as every message is, but dropped: never sent
    assert "dropped console:ivan" in listed_after and "staff access removed" in listed_after
    assert "no staff yet" in otklik("staff", "list")
    [row] = json.loads(otklik("staff", "list", "--all", "--json"))
    assert row["id"] == 1 and row["removed_at"] and row["chat"] == "console:ivan"
    assert "(removed " in otklik("staff", "list", "--all")

    chat = otklik("chat", "--user", "ivan", stdin="/queue\n")
    assert "только сотрудникам" in chat
    again = json.loads(otklik("staff", "remove", "console:ivan", "--json"))
    assert again["already_removed"] is True and again["dropped_notifications"] == 0
    assert "no staff member" in otklik("staff", "remove", "42", expect=1)
    assert "no staff member" in otklik("staff", "remove", "telegram:ivan", expect=1)
