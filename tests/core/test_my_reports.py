"""`/my` gives back the verdict buttons a resident missed (while the verdict window is
open) and lists the tickets a supporter joined, marked as joined."""

from __future__ import annotations

from core.engine import Engine
from core.jobs import auto_close
from core.messages import Reply
from storage.photos import PhotoStore
from tests.conftest import NOW
from tests.support import Clock, Resident, Staff, delivered, stored_photo, submit_report

POINT = (52.2870, 104.2810)


def buttons(reply: Reply) -> list[str]:
    return [data for row in reply.buttons for _label, data in row]


def labels(reply: Reply) -> list[str]:
    return [label for row in reply.buttons for label, _data in row]


async def resolve(engine: Engine, s: Staff, number: int, photos: PhotoStore) -> None:
    await s.send(button=f"st:take:{number}")
    await s.send(button=f"st:res:{number}")
    await s.photos(await stored_photo(engine, photos, (0, 150, 0)))
    await s.send(button="res:done")
    await s.send(button="res:skip")
    await s.expect("staff.resolve.done")


async def test_missed_rating_buttons_come_back_through_my(engine: Engine, photos: PhotoStore) -> None:
    s = Staff(engine)
    await s.join("roads_service")
    r = Resident(engine)
    number = await submit_report(r)
    await r.command("my")
    assert not any(label.startswith("⭐") for label in labels(r.replies[0]))
    await r.press(f"ticket:{number}")
    await r.expect("ticket.details")
    assert buttons(r.replies[0]) == []  # not resolved yet: nothing to rate

    await resolve(engine, s, number, photos)
    await delivered(engine, r)  # the completion notice with its buttons — missed
    await r.command("my")
    listing = r.replies[0].text
    assert listing.startswith(("Ваши обращения", "Ваше обращение")) and "⭐ — работы выполнены" in listing
    assert labels(r.replies[0])[0].startswith("⭐ ")
    await r.press(f"ticket:{number}")
    assert r.replies[0].text.endswith(
        "Оцените результат от 1 до 5 или нажмите «Не устранено», если проблема осталась."
    )
    assert buttons(r.replies[0]) == [*(f"vd:rate:{number}:{n}" for n in range(1, 6)), f"vd:nf:{number}"]
    await r.press(f"vd:rate:{number}:4")
    await r.expect("verdict.thanks")

    await r.command("my")
    assert not labels(r.replies[0])[0].startswith("⭐")
    await r.press(f"ticket:{number}")
    assert buttons(r.replies[0]) == []  # rated: the window is closed


async def test_after_auto_close_only_not_fixed_is_offered_until_the_window_ends(
    engine: Engine, photos: PhotoStore
) -> None:
    clock = Clock(NOW)
    engine.clock = clock
    s = Staff(engine)
    await s.join("roads_service")
    r = Resident(engine, language="en")
    number = await submit_report(r)
    await resolve(engine, s, number, photos)
    clock.advance(days=7, minutes=1)
    assert await engine.db.run(lambda store: auto_close(store, engine.municipality, clock())) == [number]

    await r.send(button=f"ticket:{number}")
    assert buttons(r.replies[0]) == [f"vd:nf:{number}"]
    assert 'press "Not fixed" by 15.12.2026' in r.replies[0].text
    await r.press(f"vd:nf:{number}")
    await r.expect("verdict.reopen.ask")
    await r.command("cancel")

    clock.advance(days=7)  # 14 days after the resolution: too late
    await r.send(button=f"ticket:{number}")
    assert buttons(r.replies[0]) == []


async def test_a_supporters_my_lists_the_tickets_they_joined(engine: Engine, photos: PhotoStore) -> None:
    s = Staff(engine)
    await s.join("roads_service")
    author = Resident(engine, "1")
    number = await submit_report(author, point=POINT)
    neighbour = Resident(engine, "2")
    await neighbour.command("my")
    await neighbour.expect("mine.empty")

    await neighbour.command("new")
    await neighbour.press("cat:roads")
    await neighbour.press("sub:roads.pothole")
    await neighbour.pin(*POINT)
    await neighbour.press(f"nearby:same:{number}")
    own = await submit_report(neighbour, point=(52.2950, 104.2810))

    await neighbour.command("my")
    assert neighbour.replies[0].text.startswith(("Ваши обращения", "Ваше обращение"))
    assert "👥 — обращения, которые вы поддержали" in neighbour.replies[0].text
    assert buttons(neighbour.replies[0]) == [f"ticket:{own}", f"ticket:{number}"]
    assert labels(neighbour.replies[0])[1].startswith(f"👥 № {number}")
    assert not labels(neighbour.replies[0])[0].startswith("👥")

    await resolve(engine, s, number, photos)
    await neighbour.command("my")
    assert labels(neighbour.replies[0])[1].startswith("👥 ")  # joined, not "rate me": the author rates
    await neighbour.press(f"ticket:{number}")
    await neighbour.expect("ticket.details")
    assert buttons(neighbour.replies[0]) == []
