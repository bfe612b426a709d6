"""Photos arriving from any channel: stored content-addressed, registered in the database, named by sha256
(the collector that removes them again when nothing refers to them is storage/photo_gc.py).

Decoding runs on a small pool of its own, so that a burst of large pictures queues there instead of taking
the process's memory (each decode also reserves its memory in the store's budget) or the default executor
that the event loop's other blocking calls share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from core.messages import Photo
from core.ports import (
    Database,
    PhotoRejected,
    Photos,
    PhotoTooLarge,
    PhotoTooManyPixels,
    StoredPhotoFile,
    UnitOfWork,
    UnsupportedFormat,
)

log = logging.getLogger(__name__)

DECODE_WORKERS = 2
_pool = ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="otklik-photo")
"""Threads start on the first photo, not at import."""


async def ingest_photo(db: Database, photos: Photos, data: bytes) -> Photo | str:
    """The stored photo, or the `Incoming.unsupported` kind that tells the user what was wrong with it."""
    (result,) = await ingest_photos(db, photos, [data])
    return result


async def ingest_photos(db: Database, photos: Photos, album: Sequence[bytes]) -> list[Photo | str]:
    """Each photo stored (or the kind of its refusal), in order; an album is registered in one transaction,
    not one per photo."""
    loop = asyncio.get_running_loop()
    outcomes = await asyncio.gather(
        *(loop.run_in_executor(_pool, photos.store, data) for data in album), return_exceptions=True
    )
    results: list[Photo | str] = []
    stored: list[tuple[StoredPhotoFile, bytes]] = []
    for data, outcome in zip(album, outcomes, strict=True):
        if isinstance(outcome, PhotoRejected):
            log.info("photo refused: %s", outcome)
            results.append(_kind(outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            stored.append((outcome, data))
            results.append(Photo(outcome.sha256))
    if not stored:
        return results

    def register(uow: UnitOfWork) -> None:
        for one, _data in stored:
            uow.photo_registry.register(one)

    await db.run(register)
    for one, data in stored:
        if not one.path.is_file():
            # The collector removed an unreferenced copy between our store and our registration; the row is
            # ours now, so it will not do so again (storage/photo_gc.py).
            await loop.run_in_executor(_pool, photos.store, data)
    return results


def _kind(exc: PhotoRejected) -> str:
    if isinstance(exc, PhotoTooLarge):
        return "photo_too_large"
    if isinstance(exc, PhotoTooManyPixels):
        return "photo_too_many_pixels"
    if isinstance(exc, UnsupportedFormat):
        return "photo_format"
    return "bad_photo"
