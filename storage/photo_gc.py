"""Removing photos nobody needs any more: the row in `photos` and the file under DATA_DIR/photos.

A photo is kept while anything may still show or send it:
    ticket_photos          a ticket's report, resolution and reopening photos (also a foreign key)
    ticket_events.photos   the photos of a ticket's history
    outbox.payload         messages still to be delivered (pending, or dead and perhaps retried by hand)
    dialogs.state          the slots of a half-finished report, resolution or reopening (a live draft)
and for a grace period (`PHOTO_GC_HOURS`) after its latest upload, which covers a photo on its way from the
adapter to the dialog. What is left — photos sent where no step takes them, photos of cancelled drafts — goes.
`channel_photos` (a platform's id for an uploaded photo) is a cache, not a reference: it goes with the photo.

A photo may be uploaded again while it is being removed. The collector deletes the row, moves the file
aside, then looks for the row once more and puts the file back if it is there; the ingest registers the row,
then looks for the file and stores it again if it is gone (bots/photos.py). Each side writes before it reads
what the other writes, so at least one of them sees the other. Files without a row (a crash between the two
steps) are swept the same way once they are older than the grace period.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, delete, exists, select

from storage.photos import PhotoStore
from storage.tables import (
    channel_photos,
    dialogs,
    outbox,
    ticket_events,
    ticket_photos,
)
from storage.tables import photos as photo_rows

log = logging.getLogger(__name__)


BATCH = 500
SCAN_CHUNK = 1000
_SHA = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"[0-9a-f]{64}\.jpg")


@dataclass(frozen=True, slots=True)
class Collected:
    photos: int = 0
    bytes: int = 0

    def __add__(self, other: Collected) -> Collected:
        return Collected(self.photos + other.photos, self.bytes + other.bytes)

    def __str__(self) -> str:
        return f"removed {self.photos} photo{'' if self.photos == 1 else 's'} ({self.bytes / 1e6:.1f} MB)"


def _unreferenced_by_tickets(cutoff: datetime) -> Any:
    return (photo_rows.c.created_at < cutoff) & ~exists().where(ticket_photos.c.sha256 == photo_rows.c.sha256)


def _shas_in(texts: Iterable[str | None], wanted: set[str]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(sha for sha in _SHA.findall(text) if sha in wanted)
    return found


def _referenced(conn: Any, wanted: set[str]) -> set[str]:
    """Which of `wanted` a dialog, an undelivered message or a ticket's history still names."""
    scans = (
        select(dialogs.c.state),
        select(cast(outbox.c.payload, Text)).where(outbox.c.status != "sent"),
        select(cast(ticket_events.c.photos, Text)).where(cast(ticket_events.c.photos, Text) != "[]"),
    )
    found: set[str] = set()
    for query in scans:
        rows = conn.execute(query.execution_options(yield_per=SCAN_CHUNK)).scalars()
        found |= _shas_in(rows, wanted)
    return found


def delete_unreferenced(store: Any, cutoff: datetime, limit: int = BATCH) -> list[tuple[str, int]]:
    """Delete (in the caller's transaction) up to `limit` rows of photos unused and older than `cutoff`."""
    conn = store.conn
    candidates = dict(
        conn.execute(
            select(photo_rows.c.sha256, photo_rows.c.size)
            .where(_unreferenced_by_tickets(cutoff))
            .order_by(photo_rows.c.created_at)
            .limit(limit)
        ).all()
    )
    doomed = sorted(set(candidates) - _referenced(conn, set(candidates)))
    if not doomed:
        return []
    conn.execute(delete(channel_photos).where(channel_photos.c.sha256.in_(doomed)))
    # Checked again in the statement: on PostgreSQL a ticket may have taken one of them meanwhile.
    gone = conn.execute(
        delete(photo_rows)
        .where(photo_rows.c.sha256.in_(doomed), _unreferenced_by_tickets(cutoff))
        .returning(photo_rows.c.sha256)
    ).scalars()
    return [(sha, candidates[sha]) for sha in gone]


def registered(store: Any, shas: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(shas), BATCH):
        chunk = shas[start : start + BATCH]
        found.update(
            store.conn.execute(select(photo_rows.c.sha256).where(photo_rows.c.sha256.in_(chunk))).scalars()
        )
    return found


def set_aside(photos: PhotoStore, shas: Iterable[str]) -> dict[str, Path]:
    """Move each photo's file to a hidden name; the sha256s whose file was there, with where it went."""
    moved: dict[str, Path] = {}
    for sha in shas:
        path = photos.path_of(sha)
        aside = path.with_name(f".{path.name}.gc-{uuid.uuid4().hex}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        moved[sha] = aside
    return moved


def finish(photos: PhotoStore, moved: dict[str, Path], still_registered: set[str]) -> int:
    """Put back the files of photos uploaded again meanwhile, remove the rest; the bytes removed."""
    removed = 0
    for sha, aside in moved.items():
        if sha in still_registered:
            os.replace(aside, photos.path_of(sha))
            continue
        try:
            removed += aside.stat().st_size
            aside.unlink()
        except FileNotFoundError:
            pass
    return removed


def stray_files(photos: PhotoStore, cutoff: datetime) -> Iterator[tuple[str | None, Path]]:
    """Files older than `cutoff`: photos as (sha256, path), leftovers of crashed writes as (None, path)."""
    if not photos.root.is_dir():
        return
    limit = cutoff.timestamp()
    for first in _subdirs(photos.root):
        for second in _subdirs(first):
            with os.scandir(second) as entries:
                for entry in entries:
                    try:
                        if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime >= limit:
                            continue
                    except FileNotFoundError:
                        continue
                    if _FILE.fullmatch(entry.name):
                        yield entry.name[:64], Path(entry.path)
                    elif entry.name.startswith("."):
                        yield None, Path(entry.path)


def _subdirs(path: Path) -> list[Path]:
    with os.scandir(path) as entries:
        return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and len(e.name) == 2]


def remove_leftovers(paths: Iterable[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        removed += size
    return removed


Runner = Callable[[Callable[[Any], Any]], Any]
"""`Database.run` (awaited) — the collector's transactions."""


async def collect(run: Runner, photos: PhotoStore, now: datetime, grace: timedelta) -> Collected:
    """Remove every photo unreferenced for longer than `grace`, rows in batches, then stray files."""
    cutoff = now - grace
    total = Collected()
    while True:
        gone = await run(lambda store: delete_unreferenced(store, cutoff))
        if not gone:
            break
        moved = set_aside(photos, [sha for sha, _size in gone])
        back = await run(lambda store, shas=list(moved): registered(store, shas))
        total += Collected(len(gone), finish(photos, moved, back))
        if len(gone) < BATCH:
            break
    total += await _sweep(run, photos, cutoff)
    if total.photos:
        log.info("photos: %s", total)
    return total


async def _sweep(run: Runner, photos: PhotoStore, cutoff: datetime) -> Collected:
    """Files whose row is gone (a crash after the row was deleted, or before it was written)."""
    total = Collected()
    batch: list[str] = []
    leftovers: list[Path] = []
    for sha, path in stray_files(photos, cutoff):
        if sha is None:
            leftovers.append(path)
            continue
        batch.append(sha)
        if len(batch) >= BATCH:
            total += await _sweep_batch(run, photos, batch)
            batch = []
    if batch:
        total += await _sweep_batch(run, photos, batch)
    return total + Collected(0, remove_leftovers(leftovers))


async def _sweep_batch(run: Runner, photos: PhotoStore, shas: list[str]) -> Collected:
    known = await run(lambda store: registered(store, shas))
    moved = set_aside(photos, [sha for sha in shas if sha not in known])
    if not moved:
        return Collected()
    back = await run(lambda store, found=list(moved): registered(store, found))
    return Collected(len(set(moved) - back), finish(photos, moved, back))


async def collect_unused(db: Any, photos: PhotoStore, now: datetime, grace: timedelta) -> Collected:
    """Remove photos nothing refers to any more, `grace` after their latest upload."""
    return await collect(db.run, photos, now, grace)


def delete_if_unreferenced(store: Any, shas: list[str]) -> list[str]:
    """Delete now (in the caller's transaction), whatever their age, the rows of these photos if nothing
    refers to them: the draft photos of a resident who asked to be forgotten. The caller removes the files
    after the commit (`remove_files`); the collector's sweep gets any it misses."""
    if not shas:
        return []
    conn = store.conn
    unattached = set(
        conn.execute(
            select(photo_rows.c.sha256).where(
                photo_rows.c.sha256.in_(shas), ~exists().where(ticket_photos.c.sha256 == photo_rows.c.sha256)
            )
        ).scalars()
    )
    doomed = sorted(unattached - _referenced(conn, unattached))
    if not doomed:
        return []
    conn.execute(delete(channel_photos).where(channel_photos.c.sha256.in_(doomed)))
    conn.execute(delete(photo_rows).where(photo_rows.c.sha256.in_(doomed)))
    return doomed


async def remove_files(run: Runner, photos: PhotoStore, shas: list[str]) -> Collected:
    """Remove the files of photos whose rows were deleted, unless uploaded again meanwhile."""
    moved = set_aside(photos, shas)
    if not moved:
        return Collected()
    back = await run(lambda store, found=list(moved): registered(store, found))
    return Collected(len(set(moved) - back), finish(photos, moved, back))
