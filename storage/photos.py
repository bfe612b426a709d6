"""Content-addressed photo store under DATA_DIR (DESIGN.md §7).

Residents' photos arrive with whatever their phone put in them, GPS coordinates of their home included.
A JPEG that is already upright, RGB or greyscale, Huffman-coded and within the size limit (most photos sent
through Telegram, which re-encodes them itself) is checked segment by segment and kept as it is, minus every
metadata segment (APPn but Adobe's colour-transform flag, comments, anything after the end of the picture):
that is lossless and costs a fraction of a re-encode. Every other picture is decoded and re-encoded, which
drops all metadata and normalises orientation, colour mode and size, so every channel can re-upload the file
as it is. The address is the sha256 of the stored bytes, so a photo sent twice is stored once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, insert, select, update

from core import photo_limits
from core.ports import (
    NotAnImage,
    PhotoNotFound,
    PhotoRejected,
    PhotoTooLarge,
    PhotoTooManyPixels,
    UnsupportedFormat,
)
from storage.repository import Repository
from storage.tables import photos as photo_rows

if TYPE_CHECKING:
    from PIL import Image

CONTENT_TYPE: Final = "image/jpeg"
JPEG_QUALITY: Final = 87
# Decoders we trust with untrusted bytes; Pillow would otherwise also try EPS (Ghostscript), PSD, TIFF, ….
# ("JPEG" also opens the multi-picture JPEGs many phone cameras produce, as Pillow's MPO images.)
ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF")
# Flattening transparency onto white keeps PNG screenshots and stickers readable in JPEG.
BACKGROUND: Final = (255, 255, 255)
MAX_PIXELS: Final = photo_limits.MAX_MEGAPIXELS * 1_000_000
WEBP_MAX_PIXELS: Final = photo_limits.WEBP_MAX_MEGAPIXELS * 1_000_000
DECODE_BUDGET: Final = 224 * 1024 * 1024
TRIM_AFTER: Final = 64 * 1024 * 1024
"""Decodes at least this large give their freed memory back at once (`_give_back_freed_memory`); an ordinary
photo's few megabytes are not worth the trim's cost."""
"""Bytes that decodes running at once may hold: a second big picture waits until the first is done. The
costliest pictures within the pixel limits (a 40-megapixel RGBA PNG, a 10-megapixel WebP) need ~210 MB."""
BAND_BYTES: Final = 8 * 1024 * 1024
"""Rows of the decoded picture converted at a time, so no full-size copy is ever made."""
REDUCING_GAP: Final = 1.0
"""As in Pillow's `thumbnail`: a box reduction by a whole factor first, leaving at least this ratio for the
Lanczos filter (Pillow's default of 2 nearly doubles the CPU of a 40-megapixel picture)."""
ORIENTATION: Final = 0x0112
TRANSPOSE: Final = {  # EXIF orientation → the `Image.Transpose` that makes the picture upright (as ImageOps)
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}

_SHA256 = re.compile(r"[0-9a-f]{64}")


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


class DecodeBudget:
    """Decodes reserve the memory they will need; one that does not fit waits, first come first served.

    (One bigger than the whole budget would run alone; the store refuses those.) Threads, not asyncio:
    `store` is synchronous.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._next = 0
        self._turn = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        with self._cond:
            ticket, self._next = self._next, self._next + 1
            self._cond.wait_for(
                lambda: self._turn == ticket and (self._used == 0 or self._used + size <= self.limit)
            )
            self._used += size
            self._turn += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._used -= size
                self._cond.notify_all()


class PhotoStore:
    """Files live at `root/ab/cd/<sha256>.jpg`; two directory levels keep directories small."""

    def __init__(
        self,
        root: Path,
        max_bytes: int = photo_limits.MAX_MB * 1024 * 1024,
        max_side: int = photo_limits.MAX_SIDE,
        budget: DecodeBudget | None = None,
    ) -> None:
        # Nothing touches the disk here: the root is created on the first store.
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_side = max_side
        self.budget = budget or DecodeBudget(DECODE_BUDGET)

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
        kept = _stripped_jpeg(data, self.max_side)
        if kept is not None:
            encoded, (width, height) = kept
        else:
            image = _decode(data, self.max_side, self.budget)
            encoded = _encode_jpeg(image)
            width, height = image.size
        sha256 = hashlib.sha256(encoded).hexdigest()
        path = self.path_of(sha256)
        if path.is_file():
            # Fresh again: the collector (storage/photo_gc.py) leaves recently touched files alone.
            with contextlib.suppress(OSError):
                os.utime(path)
        else:
            _write_atomically(path, encoded)
        return StoredPhoto(sha256, path, len(encoded), width, height)


JFIF: Final = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
"""A minimal JFIF header (no density, no thumbnail): written where the original had one, so that decoders
keep reading the picture as YCbCr exactly as they did."""
KEPT_SEGMENTS: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD})
"""Frame headers (baseline, extended and progressive Huffman only — arithmetic, lossless and hierarchical
JPEGs are re-encoded, as some viewers cannot show them), Huffman and quantisation tables, restart interval."""
MAX_SCANS: Final = 32
"""A progressive JPEG from a camera or Telegram has about ten scans; thousands of tiny ones make every viewer
redo its work per scan. More than this is re-encoded."""
MAX_KEPT_BYTES_PER_PIXEL: Final = 1.0
"""Photos run at 0.1–0.5 bytes per pixel (plus their tables); one far above that is re-encoded: smaller, and
nothing hides in it."""
ADOBE: Final = 0xEE
"""APP14 "Adobe": a version and a colour-transform flag, nothing about the photo's owner; without it a
3-component Adobe RGB JPEG would be read as YCbCr."""


def _stripped_jpeg(data: bytes, max_side: int) -> tuple[bytes, tuple[int, int]] | None:
    """`data` without its metadata and its size, if it may be stored without re-encoding; None otherwise.

    Checked without decoding a pixel: Pillow reads the header (frame, tables, the pixel limits, raised as in
    `_decode`) and `_strip_metadata` walks every segment and scan to the end marker, so a truncated file or
    one with trailing data or unusual segments goes the full way. (Entropy-decoding the scans, even drafted
    at an eighth, cost 2–10 ms of a 1280-pixel photo and refuses nothing that a decoder would not also show
    as damaged pixels.) Any other failure returns None, so that `_decode` explains what is wrong.
    """
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    try:
        with _open(data) as image:
            size = image.size
            if (
                image.format != "JPEG"  # not MPO: its other pictures follow the first
                or image.mode not in ("RGB", "L")
                or max(size) > max_side
                or _orientation(image) not in (None, 1)
            ):
                return None
    except PhotoRejected:
        raise
    except Exception:
        return None
    stripped = _strip_metadata(data)
    if stripped is None or len(stripped) > MAX_KEPT_BYTES_PER_PIXEL * size[0] * size[1] + 4096:
        return None
    return stripped, size


def _strip_metadata(data: bytes) -> bytes | None:
    """The JPEG's picture segments and scans from its start to its end marker; None for anything unusual.

    Dropped: APP0–APP13 and APP15 (EXIF with GPS, XMP, ICC profiles, maker notes, thumbnails), comments,
    and whatever follows the end marker.
    """
    out = [b"\xff\xd8"]
    pos, end_of_data = 2, len(data)
    frames = scans = 0
    while True:
        if pos + 2 > end_of_data or data[pos] != 0xFF:
            return None
        while data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
            if pos + 2 > end_of_data:
                return None
        marker = data[pos + 1]
        if marker == 0xD9:
            if not frames or not scans:
                return None
            out.append(b"\xff\xd9")
            return b"".join(out)
        if pos + 4 > end_of_data:
            return None
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end <= pos + 3 or end > end_of_data:
            return None
        if marker == 0xE0:
            if data[pos + 4 : pos + 9] == b"JFIF\x00" and JFIF not in out:
                out.insert(1, JFIF)
        elif (0xE0 < marker <= 0xEF and marker != ADOBE) or marker == 0xFE:
            pass
        elif marker in KEPT_SEGMENTS or marker == ADOBE:
            frames += marker in (0xC0, 0xC1, 0xC2)
            out.append(data[pos:end])
        elif marker == 0xDA and frames and scans < MAX_SCANS:
            scans += 1
            scan = end  # the entropy-coded data runs to the next marker that is not a restart
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= end_of_data:
                    return None
                following = data[scan + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    scan += 2
                elif following == 0xFF:
                    scan += 1
                else:
                    break
            out.append(data[pos:scan])
            end = scan
        else:
            return None
        pos = end


def _decode(data: bytes, max_side: int, budget: DecodeBudget) -> Image.Image:
    """Header first, then a bounded decode: only the picture's first frame, reduced band by band.

    Truncated or hostile files fail here, as a PhotoRejected, and never later.
    """
    from PIL import Image  # here, not at the top: ~50 ms that the commands which decode nothing never pay

    try:
        with _open(data) as probe:
            probe.verify()  # PNG: every chunk's CRC, without decompressing anything
        with _open(data) as image:
            full = image.size
            target = _fit(full, max_side)
            image.draft(None, target)  # JPEG decodes at 1/2…1/8 scale for free; others ignore this
            cost = _decode_cost(image, full, target)
            if cost > budget.limit:
                # Only pictures that cost more per pixel than the limits assume (a progressive 4:4:4 JPEG).
                raise PhotoTooManyPixels(f"{full[0]}x{full[1]} {image.format} would take {cost >> 20} MB")
            with budget.reserve(cost):
                try:
                    image.load()
                    orientation = _orientation(image)
                    result = _reduced(image, target)
                finally:
                    image.im = None  # the full-size pixels, freed before the budget is given back
                    if cost >= TRIM_AFTER:
                        _give_back_freed_memory()
    except PhotoRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise NotAnImage(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.UnidentifiedImageError) as exc:
        raise NotAnImage(f"not a readable image: {exc}") from None
    if orientation in TRANSPOSE:
        result = result.transpose(Image.Transpose[TRANSPOSE[orientation]])
    # The encoder copies some of `info` (e.g. JPEG comments) into the file; start from nothing.
    result.info = {}
    return result


def _give_back_freed_memory() -> None:
    """Return the decode's freed pages to the system before the next decode counts on them.

    glibc raises its mmap threshold after a large block is freed, so the next picture's buffers land in the
    heap, where freed memory stays with the process: without this, eight large pictures in a row on two
    threads left 220–330 MB resident instead of one budget's worth. `malloc_trim` costs far less than making
    every large allocation an mmap (MALLOC_MMAP_THRESHOLD_: +40 % CPU per picture). Elsewhere a no-op."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """Looked up at the first decode, not at import: `find_library` runs `ldconfig -p` in a subprocess, which
    every admin command paid for (~10 ms) without decoding a picture."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (read after loading: a PNG may keep its EXIF after the pixels); damaged EXIF is
    no reason to refuse a photo, it is dropped anyway."""
    try:
        value = image.getexif().get(ORIENTATION)
    except Exception:
        return None
    return value if isinstance(value, int) else None


def _open(data: bytes) -> Image.Image:
    """The header only (`Image.open` is lazy), refused when it declares too many pixels."""
    from PIL import Image

    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a warning would let the decode go on.
    # (Idempotent: an identical filter is replaced, not added again; ~1 µs.)
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.UnidentifiedImageError:
        known = _recognised_format(data[:64])
        if known is not None:
            raise UnsupportedFormat(f"{known} pictures are not accepted") from None
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limit, checked before we see the size: far above ours unless an operator lowered it.
        if _pillow_limit() >= MAX_PIXELS:
            raise PhotoTooManyPixels(str(exc)) from None
        raise NotAnImage(f"decompression bomb: {exc}") from None
    width, height = image.size
    limit = WEBP_MAX_PIXELS if image.format == "WEBP" else MAX_PIXELS
    if width * height > limit:
        image.close()
        raise PhotoTooManyPixels(f"{width}x{height} {image.format} exceeds {limit} pixels")
    if width * height > _pillow_limit():
        # Pillow's warning band, should the warning filter above have been reset (as tests do).
        image.close()
        raise NotAnImage(f"{width}x{height} pixels exceeds the decompression-bomb limit")
    return image


def _pillow_limit() -> int:
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS is not None else MAX_PIXELS


def _recognised_format(prefix: bytes) -> str | None:
    """Which format we do not accept Pillow would take these bytes for, judged from the first bytes alone.

    (A damaged JPEG is not "another format": it stays a picture we could not read.)
    """
    from PIL import Image

    Image.init()
    for name, (_factory, accept) in Image.OPEN.items():
        if name in ACCEPTED_FORMATS or name == "MPO":
            continue
        try:
            if accept is not None and accept(prefix) is True:
                return name
        except Exception:
            continue
    return None


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / width, max_side / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _bytes_per_pixel(mode: str) -> int:
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def _decode_cost(image: Image.Image, full: tuple[int, int], target: tuple[int, int]) -> int:
    """What decoding and reducing `image` (header read, drafted from `full`) holds at its peak, in bytes."""
    width, height = image.size
    cost = width * height * _bytes_per_pixel(image.mode)
    if image.format == "WEBP":
        cost *= 4  # libwebp's two canvases and the frame's bytes, besides Pillow's image
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        cost += _coefficient_bytes(image, full)
    bands = 3 * min(BAND_BYTES, width * height * 4)  # rows cut out, converted, reduced
    return cost + bands + target[0] * target[1] * 4


def _coefficient_bytes(image: Image.Image, full: tuple[int, int]) -> int:
    """A progressive JPEG is decoded from all its DCT coefficients at once (2 bytes each), at any scale.

    (So is a baseline JPEG with several scans, which Pillow's header reader cannot tell apart; its decode is
    bounded by the pixel limit alone.)
    """
    layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * 3
    h_max = max(h for _id, h, _v, _q in layers)
    v_max = max(v for _id, _h, v, _q in layers)
    return sum(2 * full[0] * h * full[1] * v // (h_max * v_max) for _id, h, v, _q in layers)


def _reduced(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """`image` (loaded) as an RGB picture of `target` size, made a band of rows at a time.

    Converting or resizing a large RGBA or palette picture at once would make full-size copies (Pillow
    premultiplies RGBA before resizing); in bands the extra memory is a few megabytes. Each band is
    box-reduced by a whole factor (cheap), then Lanczos-filtered into its rows of the result, overlapping
    enough that the result is what the whole picture would give. Only a GIF's or WebP's first frame is read.
    """
    from PIL import Image

    width, height = image.size
    if image.size == target:
        return _to_rgb(image.copy() if image.mode == "RGB" else image)
    factor = max(1, int(min(width / target[0], height / target[1]) / REDUCING_GAP))
    reduced_width, reduced_height = -(-width // factor), -(-height // factor)
    scale = reduced_height / target[1]  # rows of the reduced picture per row of the result
    margin = 3 * max(scale, 1.0) + 2  # the Lanczos window's reach, in reduced rows
    rows = int((BAND_BYTES / (width * 4) / factor - 2 * margin) / scale)
    rows = min(target[1], max(rows, math.ceil(4 * margin / scale)))  # overlap stays below half a band
    result = Image.new("RGB", target)
    for top in range(0, target[1], rows):
        bottom = min(target[1], top + rows)
        first = max(0, math.floor(top * scale - margin))
        last = min(reduced_height, math.ceil(bottom * scale + margin))
        band = _band(image, (0, first * factor, width, min(height, last * factor)), factor)
        box = (0.0, top * scale - first, float(reduced_width), bottom * scale - first)
        result.paste(band.resize((target[0], bottom - top), Image.Resampling.LANCZOS, box=box), (0, top))
    return result


def _band(image: Image.Image, box: tuple[int, int, int, int], factor: int) -> Image.Image:
    """Rows of `image`, reduced by `factor` and made RGB in whichever order costs less."""
    if factor > 1 and image.mode in ("L", "RGB", "CMYK", "I", "F"):
        return _to_rgb(image.reduce(factor, box))  # straight from the picture, no copy of the rows
    band = image.crop(box)
    if factor > 1 and band.mode in ("LA", "RGBA"):
        return _to_rgb(band.reduce(factor))
    band = _to_rgb(band)
    return band.reduce(factor) if factor > 1 else band


def _to_rgb(image: Image.Image) -> Image.Image:
    from PIL import Image

    try:
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
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"cannot convert image: {exc}") from None


def _encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers never see a half-written photo, and concurrent writers of one photo both succeed.

    No fsync: the database's own commits are not synced either (SQLite WAL with synchronous=NORMAL), a
    process crash loses nothing written here, and on ext4 a rename over a file flushes its data first
    (auto_da_alloc). An fsync per photo cost more than the rest of storing an album."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def register_photo(conn: Connection, stored: StoredPhoto, *, now: datetime | None = None) -> bool:
    """Record a stored photo in `photos` inside the caller's transaction; True when a row was added.

    Two workers may store the same photo at once, so PostgreSQL and SQLite use ON CONFLICT DO NOTHING rather
    than check-then-insert; other dialects fall back to the check. A photo stored again gets a fresh
    `created_at`: the collector (storage/photo_gc.py) counts its grace period from the latest upload.
    """
    values = {
        "sha256": validate_sha256(stored.sha256),
        "content_type": stored.content_type,
        "size": stored.size,
        "width": stored.width,
        "height": stored.height,
        "created_at": now or datetime.now(UTC),
    }
    dialect = conn.dialect.name
    table = photo_rows
    if dialect in ("postgresql", "sqlite"):
        add, refresh = _register_statements(dialect)
        if conn.execute(add, values).first() is not None:
            return True
        conn.execute(refresh, values)
        return False
    if not conn.execute(select(table.c.sha256).where(table.c.sha256 == stored.sha256)).first():
        conn.execute(insert(table).values(values))
        return True
    conn.execute(update(table).where(table.c.sha256 == stored.sha256).values(created_at=values["created_at"]))
    return False


@functools.cache
def _register_statements(dialect: str) -> tuple[Any, Any]:
    """The insert of a new photo's row (RETURNING: the rowcount of an INSERT is not reliable across drivers,
    and nothing comes back on a conflict) and the refresh of a known one's `created_at` (an upsert, not an
    UPDATE: should the collector delete the row meanwhile, it is written again). Built once: building them
    and their cache keys cost more than running them."""
    # The dialect's own module only here: sqlalchemy.dialects.postgresql imports all its drivers' modules.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    add = (
        dialect_insert(photo_rows)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(photo_rows.c.sha256)
    )
    upsert = dialect_insert(photo_rows)
    refresh = upsert.on_conflict_do_update(
        index_elements=["sha256"], set_={"created_at": upsert.excluded.created_at}
    )
    return add, refresh


class SqlPhotoRegistry(Repository):
    """The `PhotoRegistry` port: `register_photo` on the unit of work's connection."""

    def register(self, stored: StoredPhoto, *, now: datetime | None = None) -> bool:
        return register_photo(self.conn, stored, now=now)


__all__ = [
    "NotAnImage",
    "PhotoNotFound",
    "PhotoRejected",
    "PhotoStore",
    "PhotoTooLarge",
    "PhotoTooManyPixels",
    "StoredPhoto",
    "UnsupportedFormat",
    "register_photo",
]
