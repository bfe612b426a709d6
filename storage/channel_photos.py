"""Per-channel ids of photos already uploaded to a platform (DESIGN.md §7).

A stored photo (sha256) is uploaded to a channel once; the platform's id for it (a VK attachment string, a
Telegram file_id) is kept here so every later message reuses it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from storage.photos import validate_sha256
from storage.repository import Repository
from storage.tables import channel_photos


def remote_photo_id(conn: Connection, channel: str, sha256: str) -> str | None:
    row = conn.execute(
        select(channel_photos.c.remote_id).where(
            channel_photos.c.channel == channel, channel_photos.c.sha256 == validate_sha256(sha256)
        )
    ).first()
    return row[0] if row is not None else None


def remember_remote_photo_id(
    conn: Connection, channel: str, sha256: str, remote_id: str, *, now: datetime | None = None
) -> None:
    """Keep the first id recorded: two workers uploading one photo at once both succeed, one id wins."""
    values = {
        "channel": channel,
        "sha256": validate_sha256(sha256),
        "remote_id": remote_id,
        "created_at": now or datetime.now(UTC),
    }
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite  # not at start-up: postgresql imports its drivers

        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(channel_photos).values(values).on_conflict_do_nothing())
    elif remote_photo_id(conn, channel, sha256) is None:
        conn.execute(insert(channel_photos).values(values))


class SqlChannelPhotos(Repository):
    """The `ChannelPhotoIds` port on the unit of work's connection."""

    def get(self, channel: str, sha256: str) -> str | None:
        return remote_photo_id(self.conn, channel, sha256)

    def remember(self, channel: str, sha256: str, remote_id: str) -> None:
        remember_remote_photo_id(self.conn, channel, sha256, remote_id)
