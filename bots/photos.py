"""Photos arriving from any channel: stored content-addressed, registered in the database, named by sha256;
and removed again when nothing refers to them.

Decoding runs on a small pool of its own, so that a burst of large pictures queues there instead of taking
the process's memory (each decode also reserves its memory in the store's budget) or the default executor
that the event loop's other blocking calls share.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from core.messages import Photo
from storage.database import Database
from storage.photo_gc import Collected, collect
from storage.photos import (
    PhotoRejected,
    PhotoStore,
    PhotoTooLarge,
    PhotoTooManyPixels,
    UnsupportedFormat,
    register_photo,
)

log = logging.getLogger(__name__)

DECODE_WORKERS = 2
_pool = ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="otklik-photo")
"""Threads start on the first photo, not at import."""


async def ingest_photo(db: Database, photos: PhotoStore, data: bytes) -> Photo | str:
    """The stored photo, or the `Incoming.unsupported` kind that tells the user what was wrong with it."""
    loop = asyncio.get_running_loop()
    try:
        stored = await loop.run_in_executor(_pool, photos.store, data)
    except PhotoRejected as exc:
        log.info("photo refused: %s", exc)
        return _kind(exc)
    await db.run(lambda store: register_photo(store.conn, stored))
    if not stored.path.is_file():
        # The collector removed an unreferenced copy between our store and our registration; the row is
        # ours now, so it will not do so again (storage/photo_gc.py).
        stored = await loop.run_in_executor(_pool, photos.store, data)
    return Photo(stored.sha256)


def _kind(exc: PhotoRejected) -> str:
    if isinstance(exc, PhotoTooLarge):
        return "photo_too_large"
    if isinstance(exc, PhotoTooManyPixels):
        return "photo_too_many_pixels"
    if isinstance(exc, UnsupportedFormat):
        return "photo_format"
    return "bad_photo"


async def collect_unused(db: Database, photos: PhotoStore, now: datetime, grace: timedelta) -> Collected:
    """Remove photos nothing refers to any more, `grace` after their latest upload (storage/photo_gc.py)."""
    return await collect(db.run, photos, now, grace)
