"""Residents' personal data (issue 16): the consent notice gates reports, /mydata shows what is kept,
/forget leaves nothing that names the resident, retention anonymises closed tickets."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import String, Text, cast, select, text

from bots.reports import stats_document
from core.engine import Engine
from core.jobs import run_timers
from core.municipality import Municipality
from core.personal_data import NOTICE_VERSION, PrivacyPolicy
from storage.photos import PhotoStore
from storage.tables import metadata
from tests.conftest import NOW
from tests.stores import UNITS_OF_WORK, engine_over
from tests.support import Clock, Resident, Staff, delivered, stored_photo, submit_report, text_is


@pytest.fixture
def engine(engine: Engine) -> Engine:
    """The conftest engine with the consent notice required, as `otklik run` builds it."""
    engine.privacy = PrivacyPolicy(consent_required=True, retention_days=365)
    return engine


@pytest.fixture(params=UNITS_OF_WORK)
def either(request: pytest.FixtureRequest, demo: Municipality) -> Engine:
    """The consent transcripts run over the database and over the in-memory unit of work."""
    built = engine_over(request, demo)
    built.privacy = PrivacyPolicy(consent_required=True, retention_days=365)
    return built


async def agree(r: Resident) -> None:
    await r.command("start")
    await r.expect("menu.welcome", "privacy.notice")
    await r.press("pd:consent:yes")
    await r.expect("privacy.agreed")


async def test_first_contact_shows_the_notice_with_the_policy_link_and_records_the_agreement(
    either: Engine,
) -> None:
    r = Resident(either)
    await r.say("Здравствуйте")
    await r.expect("menu.welcome", "privacy.notice")
    notice = r.replies[1]
    assert "https://admirk.ru/personal-data/" in notice.text and "1 год" in notice.text
    assert r.buttons()[0][1] == "pd:consent:yes" and r.buttons()[1][1] == "pd:consent:no"
    await r.press("pd:consent:yes")
    await r.expect("privacy.agreed")
    consent = await either.db.run(lambda store: store.residents.consent(r.chat))
    assert consent is not None and consent.agreed and consent.version == f"{NOTICE_VERSION}/ru"
    assert consent.at == NOW
    await r.command("new")
    await r.expect("report.category.ask")


async def test_a_report_waits_for_consent_then_goes_on(either: Engine) -> None:
    """A resident who goes straight to /new (or had tickets before the notice existed) is asked once."""
    r = Resident(either)
    await r.command("new")
    await r.expect("privacy.notice")
    await r.press("pd:consent:yes")
    await r.expect("privacy.agreed", "report.category.ask")
    number = await submit_report(r)
    assert number > 0
    await r.command("new")  # asked once only
    await r.expect("report.category.ask")


async def test_a_resident_who_declines_can_read_help_but_cannot_file(either: Engine) -> None:
    r = Resident(either, language="en")
    await r.command("start")
    await r.expect("menu.welcome", "privacy.notice")
    await r.press("pd:consent:no")
    await r.expect("privacy.declined")
    await r.command("help")
    assert text_is(r.replies[0], "help.text", "en")
    await r.command("new")
    await r.expect("privacy.required", "privacy.notice")
    await r.press("pd:consent:yes")  # changed their mind
    await r.expect("privacy.agreed", "report.category.ask")
    consent = await either.db.run(lambda store: store.residents.consent(r.chat))
    assert consent is not None and consent.agreed and consent.version.endswith("/en")


async def test_the_engine_built_without_a_policy_asks_nothing(db: object, demo: object) -> None:
    bare = Engine(db, demo, clock=lambda: NOW)  # type: ignore[arg-type]
    r = Resident(bare)
    await r.command("start")
    await r.expect("menu.welcome", "menu.prompt")


# --- /mydata ----------------------------------------------------------------------------------------------
async def test_mydata_lists_chats_consent_tickets_photos_and_supported_tickets(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine, "777")
    await agree(r)
    sha = await stored_photo(engine, photos)
    number = await submit_report(r, photos=(sha,))
    await r.command("mydata")
    await r.expect("privacy.mydata")
    [reply] = r.replies
    assert reply.document is not None and reply.document.filename.endswith(".json")
    kept = json.loads(reply.document.content)
    assert kept["chats"][0]["chat_id"] == "777" and kept["language"] == "ru"
    assert kept["consent"]["agreed"] is True
    [ticket] = kept["tickets"]
    assert ticket["number"] == number and ticket["photos"] == [
        {"sha256": sha, "kind": "report", "hidden": False}
    ]
    assert ticket["description"].startswith("Глубокая яма")
    assert f"№{number}" in reply.text


# --- /forget ----------------------------------------------------------------------------------------------
def _scan(engine: Engine, needles: list[str]) -> list[str]:
    """Every row of every table (from the models' metadata, so a table added later is scanned too) whose
    text contains one of `needles` as a whole token: what /forget must leave none of."""
    pattern = re.compile(r"(?<![0-9A-Za-z])(" + "|".join(re.escape(n) for n in needles) + r")(?![0-9A-Za-z])")

    def scan(store: object) -> list[str]:
        conn = store.conn  # type: ignore[attr-defined]
        found = []
        for table in metadata.sorted_tables:
            columns = [cast(c, Text) if not isinstance(c.type, String) else c for c in table.columns]
            for row in conn.execute(select(*columns)):
                for column, value in zip(table.columns, row, strict=True):
                    if value is not None and pattern.search(str(value)):
                        found.append(f"{table.name}.{column.name}={str(value)[:80]}")
        return found

    return engine.db.run_sync(scan)  # type: ignore[attr-defined, no-any-return]


async def test_forget_leaves_no_row_or_file_naming_the_resident_while_their_tickets_still_count(
    engine: Engine, photos: PhotoStore
) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine, "staff-1")
    await s.join("roads_service")
    r = Resident(engine, "4815162342")
    await agree(r)
    number = await submit_report(r, photos=(await stored_photo(engine, photos),))
    other = Resident(engine, "neighbour-9")
    await agree(other)
    await submit_report(other, description="Ещё одна яма, рядом с той, что уже была.")
    # r supports a second ticket ("me too"), leaves a pending notification and a half-finished draft
    # with a photo nothing else refers to
    await r.command("new")
    await r.press("cat:roads")
    await r.press("sub:roads.pothole")
    await r.pin(52.2870, 104.2810)
    draft = await stored_photo(engine, photos, (10, 200, 10))
    if any(data == "nearby:different" for _label, data in r.buttons()):
        await r.press("nearby:different")
    await r.say("Черновик, который не будет отправлен.")
    await r.photos(draft)
    await s.command("queue")
    await s.press(f"st:open:{number}")
    await s.press(f"st:take:{number}")  # the resident is notified: a pending outbox row
    assert _scan(engine, ["4815162342"])
    before = await engine.db.run(lambda store: stats_document(store, clock()))

    await r.command("forget")
    await r.expect("privacy.forget_confirm")
    await r.press("pd:forget:yes")
    await r.expect("privacy.forgotten")

    assert _scan(engine, ["4815162342"]) == []
    assert not photos.exists(draft) or not await engine.db.run(
        lambda store: store.conn.execute(text("select 1 from photos where sha256 = :s"), {"s": draft}).first()
    )
    after = await engine.db.run(lambda store: stats_document(store, clock()))
    assert after == before  # the tickets still count
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket is not None and ticket.author_channel == "" and ticket.photos
    logged = await engine.db.run(
        lambda store: store.conn.execute(text("select action, source, tickets from privacy_log")).all()
    )
    assert [tuple(row) for row in logged] == [("forget", "resident", 1)]
    # staff keep working; nobody is notified as the resident, and the card says the resident left
    await s.command("queue")
    await s.press(f"st:open:{number}")
    await s.press(f"st:com:{number}") if any(d == f"st:com:{number}" for _l, d in s.buttons()) else None
    cards = await engine.db.run(lambda store: store.tickets.get(number))
    assert cards is not None
    from core.cards import card_text

    assert text_is_in(card_text(engine.municipality, clock(), "ru", cards, "-"), "privacy.resident_left")
    assert await delivered(engine, r) == []
    # writing again: a stranger, asked for consent anew
    await r.command("start")
    await r.expect("menu.welcome", "privacy.notice")


def text_is_in(text_: str, key: str) -> bool:
    from core.texts import t

    return t("ru", key) in text_


# --- retention --------------------------------------------------------------------------------------------
async def test_retention_anonymises_tickets_closed_longer_ago_than_the_setting(engine: Engine) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine, "staff-1")
    await s.join("roads_service")
    r = Resident(engine, "55501")
    await agree(r)
    number = await submit_report(r)
    await s.command("queue")
    await s.press(f"st:open:{number}")
    await s.press(f"st:rej:{number}")
    await s.press("rej:spam")
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket is not None and ticket.status == "rejected", [d for _l, d in s.buttons()]

    def timers(store: object) -> dict[str, list[int]]:
        return run_timers(store, engine.municipality, clock(), retention_days=365)  # type: ignore[arg-type]

    await delivered(engine, r)  # the rejection notice went out (a sent outbox row naming the chat)
    clock.advance(days=364)
    assert (await engine.db.run(timers))["anonymised"] == []
    assert _scan(engine, ["55501"])
    clock.advance(days=2)
    assert (await engine.db.run(timers))["anonymised"] == [number]
    # the chat, silent for the retention period and named by no ticket now: its state, consent and
    # delivered messages go too
    assert _scan(engine, ["55501"]) == []
    assert (await engine.db.run(timers))["anonymised"] == []  # once
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket is not None and ticket.author_channel == "" and ticket.status == "rejected"
    assert all(not e.actor.startswith("resident:") for e in ticket.events)


async def test_a_draft_begun_before_the_notice_existed_waits_for_consent(either: Engine) -> None:
    """Deployed mid-report: the resident's next step shows the notice; agreeing goes on with the draft,
    declining drops it — a report is never stored without consent."""
    policy = either.privacy
    either.privacy = PrivacyPolicy(consent_required=False)
    r = Resident(either)
    await r.command("new")
    await r.press("cat:roads")
    await r.expect("report.subcategory.ask")
    either.privacy = policy  # the new version is deployed
    await r.press("sub:roads.pothole")
    await r.expect("privacy.notice")
    await r.press("pd:consent:yes")
    await r.expect("privacy.agreed", "report.subcategory.ask")
    await r.press("sub:roads.pothole")
    await r.expect("report.location.ask")

    other = Resident(either, "declines")
    either.privacy = PrivacyPolicy(consent_required=False)
    await other.command("new")
    either.privacy = policy
    await other.press("cat:roads")
    r_keys = ("privacy.notice",)
    await other.expect(*r_keys)
    await other.press("pd:consent:no")
    await other.expect("privacy.declined")
    state = await either.db.run(lambda store: store.dialogs.load(other.chat))
    assert state is not None and "flow" not in state


async def test_hidden_photos_are_left_out_of_exports_and_refused_to_strangers(
    engine: Engine, photos: PhotoStore
) -> None:
    from bots.reports import ticket_document

    s = Staff(engine, "staff-1")
    await s.join("roads_service")
    r = Resident(engine, "31337")
    await agree(r)
    shas = (await stored_photo(engine, photos), await stored_photo(engine, photos, (0, 0, 250)))
    number = await submit_report(r, photos=shas)
    stranger = Resident(engine, "nobody")
    await stranger.command("hide", f"{number} 1")
    await stranger.expect("staff.only", "menu.prompt")
    await s.command("hide", f"{number} 3")
    await s.expect("privacy.hide_missing")
    await s.command("hide", f"{number} 1")
    await s.expect("privacy.hidden")
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket is not None and ticket.photos == shas  # staff still see both
    doc = ticket_document(ticket)
    assert doc["photos"] == [shas[1]] and doc["hidden_photos"] == 1
    assert shas[0] not in json.dumps(doc)
    await r.command("mydata")
    kept = json.loads(r.replies[0].document.content)  # type: ignore[union-attr]
    assert [p["hidden"] for p in kept["tickets"][0]["photos"]] == [True, False]


async def test_forget_asks_first_and_the_resident_is_a_stranger_afterwards(either: Engine) -> None:
    r = Resident(either, "2718")
    await agree(r)
    number = await submit_report(r)
    await r.command("forget")
    await r.expect("privacy.forget_confirm")
    await r.press("pd:forget:no")
    await r.expect("privacy.forget_kept")
    assert await either.db.run(lambda store: store.residents.consent(r.chat)) is not None
    await r.command("forget")
    await r.press("pd:forget:yes")
    await r.expect("privacy.forgotten")
    assert await either.db.run(lambda store: store.dialogs.load(r.chat)) is None
    assert await either.db.run(lambda store: store.residents.consent(r.chat)) is None
    ticket = await either.db.run(lambda store: store.tickets.get(number))
    assert ticket is not None and ticket.author_channel == "" and ticket.status == "assigned"
    assert [e.actor for e in ticket.events if e.actor.startswith("resident")] == ["resident"]
    await r.command("my")
    await r.expect("mine.empty")
    await r.command("new")
    await r.expect("privacy.notice")


async def test_removed_staff_stay_in_history_only_as_staff_of_their_organisation_after_retention(
    engine: Engine,
) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine, "staff-ivan", name="Иван Петров")
    await s.join("roads_service")
    r = Resident(engine)
    await agree(r)
    number = await submit_report(r)
    await s.send(button=f"st:take:{number}")
    await s.expect("staff.take.done")
    me = await engine.db.run(lambda store: store.staff.get(s.chat))
    assert me is not None
    await engine.db.run(lambda store: store.staff.remove(me.id, clock()))

    def timers(store: object) -> dict[str, list[int]]:
        return run_timers(store, engine.municipality, clock(), retention_days=365)  # type: ignore[arg-type]

    clock.advance(days=364)
    await engine.db.run(timers)
    assert (await engine.db.run(lambda store: store.staff.by_id(me.id))).name == "Иван Петров"  # type: ignore[union-attr]
    clock.advance(days=2)
    await engine.db.run(timers)
    after = await engine.db.run(lambda store: store.staff.by_id(me.id))
    assert after is not None and after.name == "staff of roads_service"
    assert after.chat.chat_id == f"removed-{me.id}"
    ticket = await engine.db.run(lambda store: store.tickets.get(number))
    assert ticket is not None
    [take] = [e for e in ticket.events if e.action.value == "take"]
    assert take.actor == f"staff:{me.id}" and take.data["name"] == "staff of roads_service"
    assert _scan(engine, ["Иван", "Петров"]) == []  # their chat stays: a resident like any other


async def test_a_hidden_completion_photo_is_taken_out_of_the_residents_undelivered_notice(
    engine: Engine, photos: PhotoStore
) -> None:
    s = Staff(engine)
    await s.join("roads_service")
    r = Resident(engine)
    await agree(r)
    number = await submit_report(r)
    await s.send(button=f"st:take:{number}")
    await s.send(button=f"st:res:{number}")
    face = await stored_photo(engine, photos, (0, 150, 0))
    await s.photos(face)
    await s.send(button="res:done")
    await s.send(button="res:skip")
    await s.expect("staff.resolve.done")
    await s.command("hide", f"{number} 1")  # no report photos: the completion photo is the first
    await s.expect("privacy.hidden")
    notes = await delivered(engine, r)
    assert [n for n in notes if text_is(n, "notify.resolved")] and all(not n.photos for n in notes)
