"""The resident's verdict: rate once, *Not fixed* reopens within 14 days of the resolution, auto-close after 7
unrated days, and the overdue job that tells staff and dispatchers once. Time moves by a test clock."""

from __future__ import annotations

import pytest

from core.domain.tickets import Status
from core.engine import Engine
from core.jobs import auto_close, mark_overdue, run_timers
from core.municipality import Municipality
from core.texts import t
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.stores import UNITS_OF_WORK, engine_over
from tests.support import Clock, Resident, Staff, delivered, stored_photo, submit_report, text_is


@pytest.fixture(params=UNITS_OF_WORK)
def engine(request: pytest.FixtureRequest, demo: Municipality) -> Engine:
    """The engine over the database and over the in-memory unit of work: the same transcripts on both."""
    return engine_over(request, demo)


async def resolved_ticket(engine: Engine, photos: PhotoStore) -> tuple[Resident, Staff, int]:
    s = Staff(engine)
    await s.join("roads_service")
    r = Resident(engine)
    number = await submit_report(r)
    await s.send(button=f"st:take:{number}")
    await s.send(button=f"st:res:{number}")
    await s.photos(await stored_photo(engine, photos, (0, 150, 0)))
    await s.send(button="res:done")
    await s.send(button="res:skip")
    await s.expect("staff.resolve.done")
    await delivered(engine, r)
    await delivered(engine, s)
    return r, s, number


async def ticket(engine: Engine, number: int):  # type: ignore[no-untyped-def]
    return await engine.db.run(lambda store: store.tickets.get(number))


async def test_rating_closes_once_and_tells_the_resolver(engine: Engine, photos: PhotoStore) -> None:
    r, s, number = await resolved_ticket(engine, photos)
    stranger = Resident(engine, "555")
    await stranger.send(button=f"vd:rate:{number}:1")
    await stranger.expect("verdict.not_yours")

    await r.send(button=f"vd:rate:{number}:5")
    await r.expect("verdict.thanks")
    t = await ticket(engine, number)
    assert t.status == Status.CLOSED and t.rating == 5
    assert t.events[-1].action.value == "rate" and t.events[-1].data["rating"] == "5"
    [rated] = await delivered(engine, s)
    assert text_is(rated, "notify.rated") and "5 из 5" in rated.text

    await r.send(button=f"vd:rate:{number}:2")
    await r.expect("verdict.already_rated")
    await r.send(button=f"vd:nf:{number}")
    await r.expect("verdict.rated_no_reopen")
    assert (await ticket(engine, number)).rating == 5


async def test_rating_before_resolution_is_refused(engine: Engine) -> None:
    r = Resident(engine)
    number = await submit_report(r)
    await r.send(button=f"vd:rate:{number}:4")
    await r.expect("verdict.not_resolved")
    await r.send(button=f"vd:nf:{number}")
    await r.expect("verdict.cannot_reopen")


async def test_not_fixed_within_14_days_reopens_to_the_same_organisation(
    engine: Engine, photos: PhotoStore
) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    r, s, number = await resolved_ticket(engine, photos)
    clock.advance(days=13, hours=23)
    await r.send(button=f"vd:nf:{number}")
    await r.expect("verdict.reopen.ask")
    await r.say("ну")
    await r.expect("verdict.reopen.too_short", "verdict.reopen.ask")
    await r.say("Яму засыпали щебнем, после дождя она снова на месте.")
    await r.expect("verdict.reopen.photos_ask")
    proof = await stored_photo(engine, photos, (90, 90, 0))
    await r.photos(proof)
    await r.expect("verdict.reopen.photos_more")
    await r.press("ro:done")
    await r.expect("verdict.reopened")

    t = await ticket(engine, number)
    assert t.status == Status.REOPENED and t.organisation == "roads_service" and t.taken_by is None
    assert t.events[-1].action.value == "reopen" and t.events[-1].photos == (proof,)
    [card] = await delivered(engine, s)
    assert text_is(card, "staff.card.text") and "снова на месте" in card.text
    assert [p.sha256 for p in card.photos] == [proof]
    await s.send(button=f"st:take:{number}")
    await s.expect("staff.take.done")


async def test_not_fixed_after_14_days_is_refused(engine: Engine, photos: PhotoStore) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    r, _s, number = await resolved_ticket(engine, photos)
    clock.advance(days=14, minutes=1)
    await r.send(button=f"vd:nf:{number}")
    await r.expect("verdict.reopen_too_late")
    assert (await ticket(engine, number)).status == Status.RESOLVED


async def test_reopen_cancelled_leaves_the_ticket_resolved(engine: Engine, photos: PhotoStore) -> None:
    r, _s, number = await resolved_ticket(engine, photos)
    await r.send(button=f"vd:nf:{number}")
    await r.command("cancel")
    await r.expect("verdict.reopen.cancelled")
    assert (await ticket(engine, number)).status == Status.RESOLVED


async def test_auto_close_after_7_unrated_days_then_reopen_still_possible(
    engine: Engine, photos: PhotoStore
) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    r, _s, number = await resolved_ticket(engine, photos)

    clock.advance(days=6, hours=23)
    assert await engine.db.run(lambda store: auto_close(store, engine.municipality, clock())) == []
    clock.advance(hours=1)
    assert await engine.db.run(lambda store: auto_close(store, engine.municipality, clock())) == [number]
    assert await engine.db.run(lambda store: auto_close(store, engine.municipality, clock())) == []
    t = await ticket(engine, number)
    assert t.status == Status.CLOSED and t.rating is None and t.events[-1].actor == "system"
    [closed] = await delivered(engine, r)
    assert text_is(closed, "notify.auto_closed")
    assert [d for row in closed.buttons for _l, d in row] == [f"vd:nf:{number}"]

    await r.send(button=f"vd:rate:{number}:5")  # late
    await r.expect("verdict.too_late")
    clock.advance(days=1)  # day 8 after the resolution: still within 14
    await r.send(button=f"vd:nf:{number}")
    await r.say("Ничего не сделано, яма осталась.")
    await r.press("ro:done")
    await r.expect("verdict.reopened")
    assert (await ticket(engine, number)).status == Status.REOPENED


async def test_overdue_job_marks_and_notifies_once(engine: Engine) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine)
    await s.join("roads_service")
    d = Staff(engine, "d1", name="Диспетчер")
    await d.join("dispatch", "dispatcher")
    number = await submit_report(Resident(engine))
    await delivered(engine, s)
    t = await ticket(engine, number)
    assert await engine.db.run(lambda store: mark_overdue(store, engine.municipality, clock())) == []

    clock.now = t.deadline  # at the deadline itself: not yet overdue
    assert await engine.db.run(lambda store: mark_overdue(store, engine.municipality, clock())) == []
    clock.advance(seconds=1)
    done = await engine.db.run(lambda store: run_timers(store, engine.municipality, clock()))
    assert done == {"closed": [], "overdue": [number], "anonymised": []}
    for who in (s, d):
        [note] = await delivered(engine, who)
        assert text_is(note, "notify.overdue")
        assert [dt for row in note.buttons for _l, dt in row] == [f"st:open:{number}"]
    clock.advance(days=1)
    assert await engine.db.run(lambda store: mark_overdue(store, engine.municipality, clock())) == []
    assert await delivered(engine, s) == [] and await delivered(engine, d) == []

    t = await ticket(engine, number)
    assert t.overdue_notified and [e.action.value for e in t.events].count("overdue") == 1
    await s.command("queue")
    assert s.replies[0].buttons[0][0][0].startswith("⚠️ ")
    await s.send(button=f"st:open:{number}")
    assert "срок истёк" in s.replies[0].text


# --- a forged rating button ------------------------------------------------------------------------
async def test_forged_rating_12_is_refused(engine: Engine, photos: PhotoStore) -> None:
    """Only the scores the buttons carry (1–5) rate; anything else is the stale-button answer, and the ticket
    stays resolved and unrated (it used to store 12, close the ticket and say "12 из 5")."""
    r, _s, number = await resolved_ticket(engine, photos)
    for forged in ("12", "", "0", "6", "-1", "²", "５", "1 ", "05", "99999999999999999999"):
        await r.send(button=f"vd:rate:{number}:{forged}")
        await r.expect("button.stale")
    for forged in (f"vd:rate:{number}", f"vd:rate:{number}:5:5", "vd:rate::5", "vd:rate:²:5", "vd:nf:²"):
        await r.send(button=forged)
        await r.expect("button.stale")
    t = await ticket(engine, number)
    assert t.status == Status.RESOLVED and t.rating is None

    await r.send(button=f"vd:rate:{number}:4")
    await r.expect("verdict.thanks")
    assert (await ticket(engine, number)).rating == 4


async def test_forged_rating_with_an_empty_score_is_refused(engine: Engine, photos: PhotoStore) -> None:
    """`vd:rate:N:` raised ValueError (int("")) and crashed the update."""
    r, _s, number = await resolved_ticket(engine, photos)
    await r.send(button=f"vd:rate:{number}:")
    await r.expect("button.stale")
    assert (await ticket(engine, number)).rating is None


def test_stats_ignore_a_forged_rating_stored_before_the_fix() -> None:
    """A "12" (or "12345") that a forged button stored before the rating was checked does not lift the city's
    mean rating."""
    from tests.stats_reference import compute

    def closed(number: int) -> dict[str, object]:
        return {"number": number, "created_at": NOW, "deadline": None, "status": "closed",
                "organisation": "roads_service", "category": "roads"}  # fmt: skip

    def rated(number: int, rating: str) -> dict[str, object]:
        return {
            "number": number,
            "action": "rate",
            "at": NOW,
            "actor": "resident:test:1",
            "data": {"rating": rating},
        }

    events = [rated(1, "12"), rated(2, "4"), rated(3, "12345"), rated(4, "²")]
    doc = compute([closed(n) for n in (1, 2, 3, 4)], events, NOW)
    assert doc["rating"] == {"count": 1, "mean": 4.0}


async def test_reopen_photos_repeat_and_limit_are_said_exactly(engine: Engine, photos: PhotoStore) -> None:
    """A repeated photo is not "added", and at 5 of 5 the prompt stops asking for more."""
    r, _s, number = await resolved_ticket(engine, photos)
    await r.send(button=f"vd:nf:{number}")
    await r.say("Яму засыпали щебнем, после дождя она снова на месте.")
    shas = [await stored_photo(engine, photos, (10, 40 * i, 90)) for i in range(5)]
    await r.photos(shas[0])
    await r.expect("verdict.reopen.photos_more")
    await r.photos(shas[0])
    assert r.replies[0].text == t("ru", "report.photos.duplicate", count=1)
    assert text_is(r.replies[1], "verdict.reopen.photos_more") and "1 из 5" in r.replies[1].text
    await r.photos(*shas[1:])
    await r.expect("report.photos.full")
    assert "Пришлите ещё" not in r.replies[0].text
