"""Supporters ('me too') hear about the ticket's progress with its author, each in their language;
only the author is asked to rate the work."""

from __future__ import annotations

from sqlalchemy import select

from core.domain.tickets import Action
from core.engine import Engine
from core.lifecycle import Tx, apply
from core.messages import ChatRef, Reply
from storage.outbox import decode_reply
from storage.store import SqlUnitOfWork
from storage.tables import outbox as outbox_rows
from tests.conftest import NOW
from tests.core.test_nearby import CENTRE, NEIGHBOUR, existing, offset, to_nearby
from tests.support import Resident


async def outbox(engine: Engine) -> list[Reply]:
    table = outbox_rows

    def job(store: SqlUnitOfWork) -> list[Reply]:
        rows = store.conn.execute(select(table).order_by(table.c.id)).all()
        return [decode_reply(ChatRef(r.channel, r.chat_id, r.user_id), r.payload) for r in rows]

    return await engine.db.run(job)


async def change(engine: Engine, number: int, action: Action, **kwargs: object) -> None:
    def job(store: SqlUnitOfWork) -> None:
        ticket = store.tickets.lock(number)
        assert ticket is not None
        apply(Tx(store, engine.municipality, NOW), ticket, action, "staff:0", **kwargs)  # type: ignore[arg-type]

    await engine.db.run(job)


async def test_supporters_get_the_status_notifications_of_the_ticket_they_joined(engine: Engine) -> None:
    number = await existing(engine, offset(20, 90))
    supporter = Resident(engine, chat_id="700", language="en")
    await to_nearby(supporter, CENTRE)
    await supporter.press(f"nearby:same:{number}")
    await supporter.expect("report.nearby.joined", "menu.prompt")
    before = len(await outbox(engine))

    await change(engine, number, Action.COMMENT, comment="Завезём асфальт в четверг.")
    said = (await outbox(engine))[before:]
    assert [r.chat for r in said] == [NEIGHBOUR, supporter.chat]
    assert "Завезём асфальт" in said[1].text and said[1].text.startswith("Comment")  # in English

    await change(engine, number, Action.RESOLVE, comment="Качели заменили.")
    said = (await outbox(engine))[before + 2 :]
    author_news, supporter_news = said
    assert author_news.chat == NEIGHBOUR
    assert any(data.startswith("vd:rate") for row in author_news.buttons for _, data in row)
    assert supporter_news.chat == supporter.chat and supporter_news.buttons == ()
    assert "which you supported" in supporter_news.text
