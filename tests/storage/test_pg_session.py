"""PostgreSQL's per-update path in two round trips (storage/pg_session.py): the BEGIN rides on the first
statement and the dialog's save on the COMMIT, on a connection in psycopg's autocommit mode — and the
transaction is whole all the same, whatever runs in it and however it ends."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, text

from core.domain.tickets import Action, Status, TicketEvent
from core.engine import Engine
from core.messages import ChatRef, Incoming
from core.municipality import Municipality
from core.ports import NewTicket
from storage.database import Database
from storage.places import nearby_tickets
from storage.store import SqlUnitOfWork
from storage.tables import dialogs, processed_events, tickets
from tests.support import Resident, submit_report

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHAT = ChatRef("test", "pg-session-1", "u1")


class Boom(Exception):
    pass


@pytest.fixture
def one(db: Database, demo: Municipality) -> Iterator[Database]:
    """One connection, so that every job meets what the one before left on it."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only (TEST_DATABASE_URL): SQLite runs its own transactions")
    from tests.conftest import load_demo

    load_demo(db, demo)
    single = Database(db.url, pool_size=1)
    yield single
    single.close()


def _client_round_trips(database: Database, job: Any) -> int:
    """Messages that end a round trip (a simple Query, or the Sync of an extended one) that the connection
    sent while `job` ran, from libpq's own protocol trace."""
    driver = database.run_sync(lambda uow: uow.conn.connection.driver_connection)
    with tempfile.TemporaryFile("w+") as trace:
        driver.pgconn.trace(trace.fileno())
        try:
            job()
        finally:
            driver.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().splitlines()]
    ends = {"Query", "Sync"}
    return sum(1 for fields in sent if len(fields) > 3 and fields[1] == "F" and fields[3] in ends)


def _state(database: Database) -> str | None:
    return database.run_sync(
        lambda uow: uow.conn.execute(
            select(dialogs.c.state).where(
                dialogs.c.channel == CHAT.channel, dialogs.c.chat_id == CHAT.chat_id
            )
        ).scalar()
    )


def _claimed(database: Database, key: str) -> bool:
    return database.run_sync(
        lambda uow: (
            uow.conn.execute(
                select(processed_events.c.event_key).where(processed_events.c.event_key == key)
            ).first()
            is not None
        )
    )


def test_an_update_of_a_known_chat_costs_two_round_trips(one: Database, demo: Municipality) -> None:
    engine = Engine(one, demo, clock=lambda: NOW)

    def update(key: str, **fields: Any) -> None:
        one.run_sync(lambda uow: engine.step(Incoming(CHAT, key, "ru", **fields), uow))

    update("1", command="start")  # the chat is known from here on; the statements are prepared
    trips = _client_round_trips(one, lambda: update("2", button="menu:new"))

    assert trips == 2  # BEGIN + claim and locked read; save + COMMIT
    assert '"flow"' in (_state(one) or "")


def test_a_failure_after_the_save_loses_the_save_and_the_claim(one: Database) -> None:
    one.run_sync(lambda uow: (uow.dialogs.load(CHAT), uow.dialogs.save(CHAT, {"lang": "en"}, NOW)))

    def fails(uow: SqlUnitOfWork) -> None:
        uow.dialogs.claim_and_load(CHAT, "", "lost", NOW)
        uow.dialogs.save(CHAT, {"lang": "ru"}, NOW)
        raise Boom

    with pytest.raises(Boom):
        one.run_sync(fails)

    assert _state(one) == '{"lang":"en"}'
    assert not _claimed(one, "lost")


def test_a_held_save_reaches_the_server_before_a_later_statement_of_the_same_job(one: Database) -> None:
    def saves_then_reads(uow: SqlUnitOfWork) -> str:
        uow.dialogs.load(CHAT)
        uow.dialogs.save(CHAT, {"lang": "ru", "seen": True}, NOW)
        return uow.conn.execute(  # type: ignore[no-any-return]
            select(dialogs.c.state).where(dialogs.c.chat_id == CHAT.chat_id)
        ).scalar_one()

    assert one.run_sync(saves_then_reads) == '{"lang":"ru","seen":true}'


def test_sqlalchemys_statements_alone_still_run_in_one_transaction(one: Database) -> None:
    def inserts_then_fails(uow: SqlUnitOfWork) -> None:
        uow.conn.execute(
            processed_events.insert(), {"channel": "test", "bot": "", "event_key": "half", "at": NOW}
        )
        uow.conn.execute(text("SELECT 1 / 0"))

    with pytest.raises(Exception, match="division by zero"):
        one.run_sync(inserts_then_fails)

    assert not _claimed(one, "half")


def test_a_rollback_after_psycopg_prepared_its_own_statements_prepares_ours_again(one: Database) -> None:
    """Regression: psycopg answers its own ROLLBACK with DEALLOCATE ALL when it has prepared statements of its
    own (after five uses of one), and ours went with them: "prepared statement … does not exist"."""

    def fails(uow: SqlUnitOfWork) -> None:
        uow.dialogs.claim_and_load(CHAT, "", "before", NOW)
        for _ in range(8):  # psycopg prepares a statement on its fifth use
            uow.conn.execute(select(dialogs.c.state).where(dialogs.c.chat_id == CHAT.chat_id)).all()
        raise Boom

    with pytest.raises(Boom):
        one.run_sync(fails)

    fresh, _state_after = one.run_sync(lambda uow: uow.dialogs.claim_and_load(CHAT, "", "after", NOW))
    assert fresh


def test_duplicate_prepared_statement_after_a_rollback_without_psycopgs_own(one: Database) -> None:
    """Regression: a rollback when psycopg had prepared nothing of its own leaves ours on the server;
    preparing them again failed with DuplicatePreparedStatement."""

    def fails(uow: SqlUnitOfWork) -> None:
        uow.dialogs.claim_and_load(CHAT, "", "first", NOW)
        raise Boom

    with pytest.raises(Boom):
        one.run_sync(fails)

    fresh, _ = one.run_sync(lambda uow: uow.dialogs.claim_and_load(CHAT, "", "second", NOW))
    assert fresh


def test_the_cursor_is_closed_after_a_failed_statement(one: Database) -> None:
    """Regression: SQLAlchemy closed the connection's kept cursor when it reported a statement's error, and
    every later job on that connection failed with "the cursor is closed"."""
    with pytest.raises(Exception, match="NUL"):
        one.run_sync(lambda uow: uow.dialogs.claim_and_load(CHAT, "", "bad\x00key", NOW))

    fresh, _ = one.run_sync(lambda uow: uow.dialogs.claim_and_load(CHAT, "", "good", NOW))
    assert fresh


def test_the_nearby_search_is_never_left_to_a_generic_plan(one: Database) -> None:
    """Regression: psycopg prepared the nearby search after five uses, and five executions later the server
    planned it once for any bounding box (~9 ms a search instead of ~1 on the engine bench's database)."""

    def search(uow: SqlUnitOfWork) -> None:
        nearby_tickets(uow.tickets, "roads", "roads.pothole", 52.287, 104.281, 50, 5)

    for _ in range(12):
        one.run_sync(search)

    prepared = one.run_sync(
        lambda uow: uow.conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars().all()
    )
    assert not [statement for statement in prepared if "lat BETWEEN" in statement]


def test_a_deadlock_between_two_updates_is_retried_and_both_land(db: Database) -> None:
    """Two jobs that lock two dialogs in opposite order: the server cancels one; it runs again whole."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    a, b = ChatRef("test", "dead-a", "a"), ChatRef("test", "dead-b", "b")
    db.run_sync(lambda uow: (uow.dialogs.load(a), uow.dialogs.load(b)))
    both_locked_one = threading.Barrier(2, timeout=10)
    attempts: list[str] = []
    landed = {"ab": threading.Event(), "ba": threading.Event()}

    def job(first: ChatRef, second: ChatRef, key: str) -> Any:
        def run(uow: SqlUnitOfWork) -> None:
            attempts.append(key)
            if attempts.count(key) > 1:  # the cancelled one: again once the other is in (no second deadlock)
                landed["ba" if key == "ab" else "ab"].wait(timeout=10)
            uow.dialogs.claim_and_load(first, "", key, NOW)
            if attempts.count(key) == 1:
                both_locked_one.wait()
            uow.dialogs.load(second)
            uow.dialogs.save(first, {"lang": "ru", "by": key}, NOW)

        return run

    errors: list[BaseException] = []

    def run(first: ChatRef, second: ChatRef, key: str) -> None:
        try:
            db.run_sync(job(first, second, key))
            landed[key].set()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(a, b, "ab")),
        threading.Thread(target=run, args=(b, a, "ba")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(attempts) in (["ab", "ab", "ba"], ["ab", "ba", "ba"])
    assert _claimed(db, "ab") and _claimed(db, "ba")


@pytest.mark.parametrize("standard_strings", ["on", "off"])
def test_hostile_text_is_stored_exactly_as_sent(one: Database, standard_strings: str) -> None:
    """The per-update statements carry their values as literals quoted by libpq for the connection: quotes,
    backslashes, percent signs and statement separators in a chat's id, a delivery id and the dialog's text
    are stored as they came, whatever the session's `standard_conforming_strings`."""
    hostile = "O'Brien \\' 100% $1 {} ; DROP TABLE dialogs; -- \\\\x \u00e9\u044f\U0001f573"
    chat = ChatRef("test", f"chat'{hostile}", f"user\\{hostile}")
    key = f"key'{hostile}"
    setting = f"SET standard_conforming_strings = {standard_strings}"
    one.run_sync(lambda uow: uow.conn.exec_driver_sql(setting))

    def update(uow: SqlUnitOfWork) -> tuple[bool, dict[str, Any] | None]:
        claimed, state = uow.dialogs.claim_and_load(chat, "", key, NOW)
        uow.dialogs.save(chat, {"lang": "ru", "text": hostile}, NOW)
        return claimed, state

    assert one.run_sync(update) == (True, None)
    assert one.run_sync(update) == (False, {"lang": "ru", "text": hostile})
    stored = one.run_sync(
        lambda uow: uow.conn.execute(select(dialogs.c.chat_id, dialogs.c.user_id, dialogs.c.state)).all()
    )
    assert [(row.chat_id, row.user_id) for row in stored if row.chat_id.startswith("chat'")] == [
        (chat.chat_id, chat.user_id)
    ]
    assert _claimed(one, key)


def test_filing_a_ticket_costs_four_round_trips(one: Database, demo: Municipality) -> None:
    """The ticket is one prepared statement; its first events ride with the staff lookup that follows (who
    gets the card), the dialog's save with the COMMIT."""
    engine = Engine(one, demo, clock=lambda: NOW)
    asyncio.run(submit_report(Resident(engine, "pg-filing-first")))  # the statements are prepared
    one.run_sync(lambda uow: uow.conn.execute(tickets.update().values(status="closed")))
    resident = Resident(engine, "pg-filing")

    async def up_to_the_review() -> None:
        await resident.command("new")
        await resident.press("cat:roads")
        await resident.press("sub:roads.pothole")
        await resident.pin(52.2870, 104.2810)
        await resident.say("Глубокая яма на проезжей части у остановки.")
        await resident.press("photos:done")

    asyncio.run(up_to_the_review())
    submit = Incoming(resident.chat, "pg-filing-submit", "ru", button="review:submit")
    trips = _client_round_trips(one, lambda: one.run_sync(partial(engine.step, submit)))

    filed = one.run_sync(lambda uow: uow.tickets.list(limit=1))
    assert [summary.status for summary in filed] == ["assigned"]
    events = one.run_sync(lambda uow: uow.tickets.get(filed[0].number)).events  # type: ignore[union-attr]
    assert [event.action.value for event in events] == ["create", "assign"]
    assert events[1].data == {"organisation": filed[0].organisation}
    assert trips == 4


def test_held_events_with_percent_signs_ride_with_a_query_intact(one: Database) -> None:
    """A held event's literal goes in front of a statement psycopg fills in (the staff lookup): its percent
    signs are not taken for placeholders, and the lookup gets its own value."""
    filed = NewTicket(
        "roads", None, 52.28701234567891, -0.1, "ул. O'Brien, 1", "pin", "Яма \\ 'x' 5%", (),
        CHAT, "ru", None, Status.NEW, NOW, None,
    )  # fmt: skip
    number = one.run_sync(lambda uow: uow.tickets.create(filed))
    comment = "100% done, %s and %(name)s and {} stay as written"
    photo = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    def comment_then_lookup(uow: SqlUnitOfWork) -> int:
        event = TicketEvent(
            Action.COMMENT, NOW, "staff:1", Status.NEW, Status.NEW, comment, (photo,), {"k": "50%"}
        )
        uow.tickets.add_event(number, event)
        return len(uow.staff.of("no-such-organisation"))

    assert one.run_sync(comment_then_lookup) == 0
    ticket = one.run_sync(lambda uow: uow.tickets.get(number))
    assert ticket is not None
    assert (ticket.lat, ticket.lon, ticket.address, ticket.description, ticket.subcategory) == (
        filed.lat, filed.lon, filed.address, filed.description, None
    )  # fmt: skip
    last = ticket.events[-1]
    assert (last.comment, last.photos, last.data) == (comment, (photo,), {"k": "50%"})
