"""Hostile pictures, small on disk and cheap to make: what an attacker sends to make a bot decode gigabytes.

Each declares far more pixels than it costs to build. PNG is written row by row through zlib, so a real,
fully valid 9400×9400 picture costs a few megabytes to make; the JPEG, GIF and WebP "giants" are small real
pictures whose header claims the giant size (all a header check sees, and all a decoder trusts before it
allocates).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(width: int, height: int, *, alpha: bool = True) -> bytes:
    """A valid PNG of one flat colour, built a row at a time (never the whole picture in memory)."""
    channels = 4 if alpha else 3
    row = b"\0" + bytes([200, 30, 30, 255][:channels]) * width  # filter "none", then the pixels
    data = _deflate_repeated(row, height)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _deflate_repeated(row: bytes, count: int) -> bytes:
    """zlib data of `row` × `count`: one chunk of rows compressed once (a full flush makes its compressed
    form self-contained), its bytes repeated, the checksum computed over what they stand for."""
    per_chunk = max(1, min(count, (1 << 22) // len(row)))
    chunk = row * per_chunk
    whole, rest = divmod(count, per_chunk)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    end = tail.compress(row * rest) + tail.flush()
    checksum = 1
    for _ in range(whole):
        checksum = zlib.adler32(chunk, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    return b"\x78\xda" + block * whole + end + struct.pack(">I", checksum)


def _small(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A 16×16 JPEG whose frame header (SOF0) says `width`×`height`."""
    data = bytearray(_small("JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A 16×16 GIF whose screen and first frame say `width`×`height`."""
    data = bytearray(_small("GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    frame = data.index(b"\x2c", 13)  # the first image descriptor
    struct.pack_into("<HH", data, frame + 5, width, height)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A 16×16 lossless WebP whose VP8L header says `width`×`height` (at most 16384 each)."""
    data = bytearray(_small("WEBP", lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = struct.unpack_from("<I", data, 21)[0] & ~((1 << 28) - 1)
    struct.pack_into("<I", data, 21, bits | (width - 1) | ((height - 1) << 14))
    return bytes(data)


def photo(width: int = 1280, height: int = 960) -> bytes:
    """An ordinary phone-sized JPEG with some detail in it."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
