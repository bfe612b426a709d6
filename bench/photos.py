"""Benchmark: hostile pictures through the photo ingest path (bots/photos.py `ingest_photo`), all at once.

Eight pictures small on disk arrive together: four whose headers claim giant sizes (a real 9400×9400 PNG, and
a JPEG, GIF and WebP claiming 12000², 20000² and 16000²) and four real ones just inside the limits, each the
costliest of its format to decode (an RGBA PNG and a progressive JPEG of 40 megapixels, a GIF of 40 and
a WebP of 10). Printed: the process's peak RSS growth while they are ingested, and the CPU each took in its
decoding thread; then the CPU of ordinary 1280×960 JPEGs (kept as they are, minus their metadata, unless
rotated). Targets: ≤ 300 MB growth for the eight, ≤ 1 s CPU
each. The big real pictures are made in a child process, so their making does not count.
Run: `.venv/bin/python bench/photos.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from bots.photos import ingest_photo
from storage.database import Database
from storage.migrate import upgrade
from storage.photos import PhotoStore, StoredPhoto
from tests.fakes import images

AT_LIMIT = (7300, 5470)  # 39.9 megapixels
WEBP_AT_LIMIT = (3650, 2730)  # 9.96 megapixels


def make_real(folder: Path) -> None:
    """(In the child process) the real pictures at the limits that need Pillow's encoders to exist."""
    noise = Image.effect_noise((512, 512), 60).convert("RGB").resize(AT_LIMIT)
    noise.save(folder / "jpeg-progressive.jpg", "JPEG", progressive=True, subsampling=2, quality=80)
    Image.new("P", AT_LIMIT, 3).save(folder / "gif.gif", "GIF")
    Image.new("RGB", WEBP_AT_LIMIT, (20, 120, 200)).save(folder / "webp.webp", "WEBP", lossless=True)


class TimedStore(PhotoStore):
    """Records the CPU time of each decode in its own thread."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.cpu: dict[str, float] = {}

    def store(self, data: bytes) -> StoredPhoto:
        started = time.thread_time()
        try:
            return super().store(data)
        finally:
            self.cpu[hashlib.sha1(data).hexdigest()] = time.thread_time() - started


def _detailed(height: int, sigma: float = 40, **options: object) -> bytes:
    """A 1280-pixel photo with EXIF GPS coordinates: noise of `sigma` everywhere (40: ≈ 350 KB, a worst
    case for the entropy decoder; 12: ≈ 170 KB, like the photos Telegram hands out)."""
    noise = Image.effect_noise((320, height // 4), sigma).convert("RGB").resize((1280, height))
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)})
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=90, exif=exif, **options)
    return buffer.getvalue()


ORDINARY = {
    "gradient": lambda height: images.photo(1280, height),
    "phone-like with EXIF GPS": lambda height: _detailed(height, 12),
    "phone-like progressive": lambda height: _detailed(height, 12, progressive=True),
    "noisy with EXIF GPS": _detailed,
    "noisy progressive": lambda height: _detailed(height, progressive=True),
    "detailed, EXIF rotated": lambda height: _rotated(height),
}


def _rotated(height: int) -> bytes:
    """Orientation 6: this one must be decoded, turned and re-encoded."""
    noise = Image.effect_noise((320, height // 4), 40).convert("RGB").resize((1280, height))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def status(field: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS: now; VmHWM: the peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux ≥ 4.0: VmHWM := VmRSS


async def run(folder: Path) -> None:
    upgrade(f"sqlite:///{folder / 'bench.sqlite3'}")
    db = Database(f"sqlite:///{folder / 'bench.sqlite3'}")
    photos = TimedStore(folder / "photos")
    hostile = {
        "PNG 9400×9400 RGBA (real)": images.png(9400, 9400),
        "JPEG claiming 12000×12000": images.jpeg_claiming(12000, 12000),
        "GIF claiming 20000×20000": images.gif_claiming(20000, 20000),
        "WebP claiming 16000×16000": images.webp_claiming(16000, 16000),
        "PNG 7300×5470 RGBA": images.png(*AT_LIMIT),
        "JPEG 7300×5470 progressive": (folder / "jpeg-progressive.jpg").read_bytes(),
        "GIF 7300×5470": (folder / "gif.gif").read_bytes(),
        "WebP 3650×2730 lossless": (folder / "webp.webp").read_bytes(),
    }
    normal = images.photo()
    try:
        await ingest_photo(db, photos, normal)  # warm up: decoders, pool threads, the writer thread
        gc.collect()
        reset_peak()
        before = status("VmRSS")
        started = time.process_time()
        results = await asyncio.gather(*(ingest_photo(db, photos, data) for data in hostile.values()))
        peak = status("VmHWM")
        total_cpu = time.process_time() - started
        print(
            f"8 hostile pictures at once: peak RSS growth {(peak - before) / 2**20:.0f} MB, "
            f"process CPU {total_cpu:.2f} s"
        )
        for (name, data), result in zip(hostile.items(), results, strict=True):
            cpu = photos.cpu.get(hashlib.sha1(data).hexdigest(), 0.0)
            outcome = result if isinstance(result, str) else "stored"
            print(f"  {name:<34} {len(data) / 1024:>8.0f} KB  {outcome:<22} CPU {cpu:.3f} s")
        for label, make in ORDINARY.items():
            cpu = []
            for i in range(20):
                data = make(960 + i)
                await ingest_photo(db, photos, data)
                cpu.append(photos.cpu[hashlib.sha1(data).hexdigest()])
            print(
                f"ordinary 1280×960 JPEG, {label} ({len(data) / 1024:.0f} KB): "
                f"CPU {sum(cpu) / len(cpu) * 1000:.1f} ms per photo (mean of {len(cpu)})"
            )
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_real(args.make)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, __file__, "--make", str(folder)], check=True)
        asyncio.run(run(folder))


if __name__ == "__main__":
    main()
