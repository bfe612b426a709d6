"""Content-addressed photo store under DATA_DIR (DESIGN.md §7).

Residents' photos arrive with whatever their phone put in them, GPS coordinates of their home included, so
every photo is decoded and re-encoded: that is the only reliable way to drop all metadata, and it also
normalises orientation, colour mode and size so every channel can re-upload the file as it is. The address
is the sha256 of the re-encoded bytes, so a photo sent twice is stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps
from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.tables import PhotoRow

CONTENT_TYPE: Final = "image/jpeg"
JPEG_QUALITY: Final = 87
# Decoders we trust with untrusted bytes; Pillow would otherwise also try EPS (Ghostscript), PSD, ICO, ….
# ("JPEG" also opens the multi-picture JPEGs many phone cameras produce, as Pillow's MPO images.)
ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Flattening transparency onto white keeps PNG screenshots and stickers readable in JPEG.
BACKGROUND: Final = (255, 255, 255)

_SHA256 = re.compile(r"[0-9a-f]{64}")


class PhotoRejected(ValueError):
    """The bytes cannot become a stored photo; the message is for logs, not for residents."""


class PhotoTooLarge(PhotoRejected):
    pass


class NotAnImage(PhotoRejected):
    pass


class PhotoNotFound(KeyError, FileNotFoundError):
    """Both a KeyError (unknown address) and a FileNotFoundError, so either `except` reads naturally."""

    def __str__(self) -> str:
        return f"no stored photo {self.args[0]}" if self.args else "no stored photo"


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    sha256: str
    path: Path
    size: int
    width: int
    height: int
    content_type: str = CONTENT_TYPE


def validate_sha256(sha256: str) -> str:
    """Addresses become path components, so anything but 64 lowercase hex digits is refused outright."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 photo address: {sha256!r}")
    return sha256


class PhotoStore:
    """Files live at `root/ab/cd/<sha256>.jpg`; two directory levels keep directories small."""

    def __init__(self, root: Path, max_bytes: int = 20 * 1024 * 1024, max_side: int = 2560) -> None:
        # Nothing touches the disk here: the root is created on the first store.
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_side = max_side

    def path_of(self, sha256: str) -> Path:
        validate_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.jpg"

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        path = self.path_of(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PhotoNotFound(sha256) from None

    def store(self, data: bytes) -> StoredPhoto:
        if len(data) > self.max_bytes:
            raise PhotoTooLarge(f"photo of {len(data)} bytes exceeds the {self.max_bytes} byte limit")
        image = _normalised(_decode(data, self.max_side), self.max_side)
        encoded = _encode_jpeg(image)
        sha256 = hashlib.sha256(encoded).hexdigest()
        path = self.path_of(sha256)
        if not path.is_file():
            _write_atomically(path, encoded)
        return StoredPhoto(sha256, path, len(encoded), image.width, image.height)


def _decode(data: bytes, max_side: int) -> Image.Image:
    """Decode fully now so that truncated or hostile files fail here, as NotAnImage, and never later."""
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as probe:
            _check_pixels(probe)
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        _check_pixels(image)
        # JPEG can decode at 1/2…1/8 scale for free; the box is square, so both sides stay ≥ max_side.
        image.draft("RGB", (max_side, max_side))
        image.load()
    except PhotoRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise NotAnImage(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.UnidentifiedImageError) as exc:
        raise NotAnImage(f"not a readable image: {exc}") from None
    return image


def _check_pixels(image: Image.Image) -> None:
    """Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse there too.

    Doing the check ourselves instead of turning the warning into an error avoids `warnings.catch_warnings`,
    which mutates process-global state and is not safe in the worker threads that call `store`.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        raise NotAnImage(f"{image.width}x{image.height} pixels exceeds the decompression-bomb limit")


def _normalised(image: Image.Image, max_side: int) -> Image.Image:
    try:
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"cannot convert image: {exc}") from None
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # The encoder copies some of `info` (e.g. JPEG comments) into the file; start from nothing.
    image.info = {}
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale would clip to white if converted directly.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers never see a half-written photo, and concurrent writers of one photo both succeed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def register_photo(
    conn_or_session: Connection | Session, stored: StoredPhoto, *, now: datetime | None = None
) -> bool:
    """Record a stored photo in `photos` inside the caller's transaction; True when a row was added.

    Two workers may store the same photo at once, so PostgreSQL and SQLite use ON CONFLICT DO NOTHING rather
    than check-then-insert; other dialects fall back to the check.
    """
    values = {
        "sha256": validate_sha256(stored.sha256),
        "content_type": stored.content_type,
        "size": stored.size,
        "width": stored.width,
        "height": stored.height,
        "created_at": now or datetime.now(UTC),
    }
    bind = conn_or_session if isinstance(conn_or_session, Connection) else conn_or_session.get_bind()
    dialect = bind.dialect.name
    table = PhotoRow.__table__
    if dialect in ("postgresql", "sqlite"):
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=["sha256"])
            # rowcount of an INSERT is not reliable across drivers; RETURNING yields nothing on conflict.
            .returning(table.c.sha256)
        )
        return conn_or_session.execute(statement).first() is not None
    exists = conn_or_session.execute(select(table.c.sha256).where(table.c.sha256 == stored.sha256)).first()
    if exists is not None:
        return False
    conn_or_session.execute(insert(table).values(values))
    return True
