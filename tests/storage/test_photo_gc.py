"""Photos nothing refers to are removed — file and row — once the grace period after their upload is over;
photos of tickets, of staff resolutions, of live drafts, of undelivered messages and recent uploads stay."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bots.app import App
from bots.background import lifecycle_timers
from bots.photos import ingest_photo
from bots.settings import Settings
from core.domain.tickets import Action, Status, TicketEvent
from core.engine import Engine
from core.messages import ChatRef, Photo, Reply
from core.municipality import Municipality
from storage.channel_photos import remember_remote_photo_id, remote_photo_id
from storage.database import Database
from storage.migrate import upgrade
from storage.photo_gc import Collected, collect_unused, delete_unreferenced, finish, registered, set_aside
from storage.photos import PhotoStore, StoredPhoto, register_photo
from storage.tables import photos as photo_rows
from tests.conftest import NOW
from tests.fakes import images
from tests.support import Resident, Staff, submit_report

GRACE = timedelta(hours=24)
_sizes = iter(range(200, 10_000))


async def upload(db: Database, photos: PhotoStore, count: int = 1) -> list[str]:
    """Distinct photos through the adapters' ingest path: stored and registered, referenced by nothing yet."""
    shas = []
    for _ in range(count):
        got = await ingest_photo(db, photos, images.photo(320, next(_sizes)))
        assert isinstance(got, Photo)
        shas.append(got.sha256)
    return shas


async def rows(db: Database) -> set[str]:
    return set(await db.run(lambda store: store.conn.execute(select(photo_rows.c.sha256)).scalars().all()))


def files(photos: PhotoStore) -> set[str]:
    return {p.name[:64] for p in photos.root.rglob("*.jpg")} if photos.root.exists() else set()


async def collect_after(db: Database, photos: PhotoStore, hours: float) -> Collected:
    """The collector as the timers run it, with the clock moved `hours` past now."""
    return await collect_unused(db, photos, datetime.now(UTC) + timedelta(hours=hours), GRACE)


async def test_twenty_photos_sent_at_the_main_menu_are_removed_after_the_grace_period(
    engine: Engine, photos: PhotoStore
) -> None:
    r = Resident(engine)
    await r.command("start")
    shas = await upload(engine.db, photos, 20)
    for sha in shas:
        await r.photos(sha)  # no step takes photos here
    assert files(photos) == set(shas) == await rows(engine.db)

    assert await collect_after(engine.db, photos, 23) == Collected()  # recent uploads stay
    assert files(photos) == set(shas)

    collected = await collect_after(engine.db, photos, 25)

    assert collected.photos == 20 and collected.bytes > 0
    assert str(collected) == f"removed 20 photos ({collected.bytes / 1e6:.1f} MB)"
    assert files(photos) == set() and await rows(engine.db) == set()
    assert await collect_after(engine.db, photos, 25) == Collected()


async def test_cancelled_drafts_lose_their_photos_tickets_resolutions_and_live_drafts_keep_theirs(
    engine: Engine, photos: PhotoStore
) -> None:
    db = engine.db
    ticket_sha, resolution_sha, draft_sha, outbox_sha, event_sha = await upload(db, photos, 5)
    cancelled = await upload(db, photos, 3)

    staff = Staff(engine)
    await staff.join("roads_service")
    author = Resident(engine, "author")
    number = await submit_report(author, photos=(ticket_sha,))
    await staff.send(button=f"st:take:{number}")
    await staff.send(button=f"st:res:{number}")
    await staff.photos(resolution_sha)
    await staff.send(button="res:done")
    await staff.send(button="res:skip")
    await staff.expect("staff.resolve.done")

    async def draft(who: Resident, shas: list[str]) -> None:
        await who.command("new")
        await who.press("cat:roads")
        await who.press("sub:roads.pothole")
        await who.pin(52.2870, 104.2810)
        if any(data == "nearby:different" for _label, data in who.buttons()):
            await who.press("nearby:different")
        await who.say("Яма во дворе, глубокая.")
        for sha in shas:
            await who.photos(sha)
        await who.expect("report.photos.ask_more")

    await draft(Resident(engine, "still-writing"), [draft_sha])
    quitter = Resident(engine, "quitter")
    await draft(quitter, cancelled)
    await quitter.command("cancel")
    await quitter.expect("cancel.done")

    stranger = ChatRef("test", "stranger", "stranger")
    event = TicketEvent(Action.COMMENT, NOW, "test", Status.RESOLVED, Status.RESOLVED, "", (event_sha,))

    def refer(store) -> None:  # type: ignore[no-untyped-def]
        store.outbox.enqueue(Reply(text="photo for you", photos=(Photo(outbox_sha),), chat=stranger), NOW)
        store.tickets.add_event(number, event)
        remember_remote_photo_id(store.conn, "telegram", cancelled[0], "AgAD-cancelled")

    await db.run(refer)

    collected = await collect_after(db, photos, 25)

    kept = {ticket_sha, resolution_sha, draft_sha, outbox_sha, event_sha}
    assert collected.photos == len(cancelled)
    assert await rows(db) == kept == files(photos)
    assert await db.run(lambda store: remote_photo_id(store.conn, "telegram", cancelled[0])) is None
    ticket = await db.run(lambda store: store.tickets.get(number))
    assert ticket is not None and ticket.photos == (ticket_sha,)
    assert ticket.resolution_photos == (resolution_sha,)


async def test_a_photo_uploaded_again_while_it_is_collected_keeps_its_file(
    engine: Engine, photos: PhotoStore
) -> None:
    db = engine.db
    data = images.photo(320, 240)
    first = await ingest_photo(db, photos, data)
    assert isinstance(first, Photo)
    cutoff = datetime.now(UTC) + timedelta(hours=1)

    gone = await db.run(lambda store: delete_unreferenced(store, cutoff))
    assert [sha for sha, _size in gone] == [first.sha256]
    moved = set_aside(photos, [first.sha256])
    again = await ingest_photo(db, photos, data)  # registers the row anew, finds no file, stores it again
    back = await db.run(lambda store: registered(store, [first.sha256]))
    finish(photos, moved, back)

    assert again == first
    assert photos.exists(first.sha256) and await rows(db) == {first.sha256}
    assert not [p for p in photos.root.rglob(".*")]


async def test_uploading_a_photo_again_restarts_its_grace_period(engine: Engine, photos: PhotoStore) -> None:
    data = images.photo(320, 242)
    stored = photos.store(data)
    long_ago = datetime.now(UTC) - timedelta(hours=30)
    await engine.db.run(lambda store: register_photo(store.conn, stored, now=long_ago))

    await ingest_photo(engine.db, photos, data)  # sent again, on its way to a dialog

    assert await collect_after(engine.db, photos, 0) == Collected()
    assert photos.exists(stored.sha256)


class CollectedMidway(PhotoStore):
    """A photo store at whose first `store` the collector strikes: it finds no row (the collector deleted
    it earlier), so it removes the file that `store` has just found in place, before the row is written."""

    struck = False

    def store(self, data: bytes) -> StoredPhoto:
        stored = super().store(data)
        if not self.struck:
            self.struck = True
            finish(self, set_aside(self, [stored.sha256]), still_registered=set())
            assert not stored.path.exists()
        return stored


async def test_a_photo_uploaded_again_after_its_row_was_collected_gets_its_file_back(
    engine: Engine, photos: PhotoStore
) -> None:
    db = engine.db
    data = images.photo(320, 241)
    first = await ingest_photo(db, photos, data)
    assert isinstance(first, Photo)
    await db.run(lambda store: delete_unreferenced(store, datetime.now(UTC) + timedelta(hours=1)))

    again = await ingest_photo(db, CollectedMidway(photos.root), data)

    assert again == first
    assert photos.exists(first.sha256) and await rows(db) == {first.sha256}


async def test_files_without_a_row_and_leftovers_are_swept_after_the_grace_period(
    db: Database, photos: PhotoStore
) -> None:
    old = photos.store(images.photo(320, 111))  # stored, never registered: a crash in between
    fresh = photos.store(images.photo(320, 112))
    leftover = old.path.with_name(f".{old.path.name}.1234.tmp")
    leftover.write_bytes(b"half a photo")
    two_days_ago = time.time() - 48 * 3600
    for path in (old.path, leftover):
        os.utime(path, (two_days_ago, two_days_ago))

    collected = await collect_after(db, photos, 0)

    assert collected.photos == 1
    assert collected.bytes == old.size + len(b"half a photo")
    assert files(photos) == {fresh.sha256}
    assert not leftover.exists()


async def test_the_lifecycle_timers_collect_photos(
    engine: Engine, photos: PhotoStore, tmp_path: Path
) -> None:
    stored = photos.store(images.photo(320, 99))
    await engine.db.run(
        lambda store: register_photo(store.conn, stored, now=engine.clock() - timedelta(hours=30))
    )
    kept = (await upload(engine.db, photos))[0]
    settings = Settings(_env_file=None, data_dir=tmp_path, photo_gc_hours=24)  # type: ignore[call-arg]
    app = App(settings=settings, db=engine.db, photos=photos, engine=engine)
    stopping = asyncio.Event()
    timers = asyncio.create_task(lifecycle_timers(app, {}, stopping))
    try:
        for _ in range(200):
            if not photos.exists(stored.sha256):
                break
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await asyncio.wait_for(timers, 10)

    assert not photos.exists(stored.sha256)
    assert await rows(engine.db) == {kept}


@pytest.mark.e2e
async def test_otklik_photos_gc_removes_what_nothing_refers_to(
    otklik, env: dict[str, str], tmp_path: Path, demo: Municipality
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'otklik.sqlite3'}"
    upgrade(url)
    db = Database(url)
    photos = PhotoStore(data_dir / "photos")
    try:
        r = Resident(Engine(db, demo))
        await r.command("start")
        shas = await upload(db, photos, 20)
        for sha in shas:
            await r.photos(sha)
    finally:
        db.close()

    assert otklik("photos", "gc").strip() == "removed 0 photos (0.0 MB)"  # within PHOTO_GC_HOURS (24)
    assert files(photos) == set(shas)

    env["PHOTO_GC_HOURS"] = "0"
    out = otklik("photos", "gc").strip()

    assert out.startswith("removed 20 photos (") and out.endswith(" MB)"), out
    assert files(photos) == set()
