"""Outbox delivery to console users: the `ChannelSender` of the console channel.

Delivering means what it means for a messenger: the photos are read from the photo store and copied out as
files under `DATA_DIR/console/<user>/` (the "upload"), and the message — text, buttons, pin, the delivered
files — lands in the user's inbox (table `console_inbox`), which `otklik chat --user ID` prints when it
starts and after each line.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

from bots.console import CHANNEL
from core.payload import encode_reply
from core.ports import Database, DeliveryError, OutgoingMessage, PhotoNotFound, Photos


def user_dir(root: Path, chat_id: str) -> Path:
    return root / (re.sub(r"[^A-Za-z0-9_.-]", "_", chat_id) or "_")


class ConsoleSender:
    channel = CHANNEL
    max_per_second = 0.0  # a local table: no platform to protect
    chat_interval = 0.0

    def __init__(self, db: Database, photos: Photos, root: Path) -> None:
        self.db = db
        self.photos = photos
        self.root = root

    async def deliver(self, message: OutgoingMessage) -> None:
        reply = message.reply
        recipient = message.recipient
        files = await asyncio.to_thread(self._copy_photos, message)
        payload = {**encode_reply(reply), "photo_files": files}
        chat_id, at = recipient.chat_id, datetime.now(UTC)
        await self.db.run(lambda uow: uow.console_inbox.append(chat_id, payload, at))

    def _copy_photos(self, message: OutgoingMessage) -> list[str]:
        folder = user_dir(self.root, message.recipient.chat_id)
        files: list[str] = []
        for i, photo in enumerate(message.reply.photos, 1):
            try:
                data = self.photos.read(photo.sha256)
            except (PhotoNotFound, ValueError) as exc:
                raise DeliveryError(f"photo {photo.sha256}: {exc}", permanent=True) from None
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{message.id}-{i}-{photo.sha256[:12]}.jpg"
            path.write_bytes(data)
            files.append(str(path))
        return files
