"""Photos arriving from any channel: stored content-addressed, registered in the database, named by sha256."""

from __future__ import annotations

import asyncio

from core.messages import Photo
from storage.database import Database
from storage.photos import PhotoRejected, PhotoStore, PhotoTooLarge, register_photo


async def ingest_photo(db: Database, photos: PhotoStore, data: bytes) -> Photo | str:
    """The stored photo, or the `Incoming.unsupported` kind that tells the user what was wrong with it."""
    try:
        stored = await asyncio.to_thread(photos.store, data)
    except PhotoTooLarge:
        return "photo_too_large"
    except PhotoRejected:
        return "bad_photo"
    await db.run(lambda store: register_photo(store.conn, stored))
    return Photo(stored.sha256)
