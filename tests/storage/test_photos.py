"""The photo store strips what phones leak (GPS above all) and stores each distinct photo once."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, func, select

from bots.photos import ingest_photo
from core.messages import Photo
from storage.database import Database
from storage.photos import (
    MAX_SCANS,
    DecodeBudget,
    NotAnImage,
    PhotoNotFound,
    PhotoRejected,
    PhotoStore,
    PhotoTooLarge,
    PhotoTooManyPixels,
    UnsupportedFormat,
    _strip_metadata,
    register_photo,
)
from storage.tables import photos as photo_rows
from tests.fakes import images

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def _jpeg_with_gps(size: tuple[int, int] = (64, 32), orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, comment=b"secret comment")
    return buffer.getvalue()


def _png(size: tuple[int, int], mode: str = "RGBA") -> bytes:
    image = Image.new(mode, size, (0, 0, 255, 0) if mode == "RGBA" else (0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


def test_gps_and_all_metadata_are_dropped(store: PhotoStore) -> None:
    original = _jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as check:
        assert check.getexif().get_ifd(GPS_IFD), "the fixture must really carry GPS"

    stored = store.store(original)

    data = stored.path.read_bytes()
    assert b"Exif" not in data
    assert b"secret comment" not in data
    assert b"PhoneMaker" not in data
    with Image.open(stored.path) as image:
        assert image.format == "JPEG"
        assert not image.getexif()
        assert "icc_profile" not in image.info
        assert "xmp" not in image.info
    assert stored.content_type == "image/jpeg"
    assert stored.size == len(data)


def test_an_upright_jpeg_within_limits_is_kept_pixel_for_pixel_without_its_metadata(
    store: PhotoStore,
) -> None:
    """Regression (issue 17): every JPEG was re-encoded, 16 ms of CPU per photo and a generation of loss."""
    image = Image.effect_noise((160, 120), 30).convert("RGB").resize((640, 480))
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)})
    buffer = io.BytesIO()
    image.save(
        buffer, "JPEG", exif=exif, comment=b"secret comment", icc_profile=b"\0" * 200, progressive=True
    )
    original = buffer.getvalue() + b"trailing secret"

    stored = store.store(original)

    data = stored.path.read_bytes()
    for leak in (b"Exif", b"secret", b"\0" * 200):
        assert leak not in data
    assert data.endswith(b"\xff\xd9")
    with Image.open(stored.path) as kept, Image.open(io.BytesIO(original)) as before:
        assert kept.info.get("jfif") and "icc_profile" not in kept.info and not kept.getexif()
        assert kept.tobytes() == before.tobytes()  # not re-encoded
    assert (stored.width, stored.height, stored.size) == (640, 480, len(data))


def test_a_jpeg_of_too_many_scans_is_re_encoded_not_kept() -> None:
    """Thousands of tiny progressive scans make every viewer redo its work per scan: such a file is not
    kept as it is."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buffer, "JPEG")
    data = buffer.getvalue()
    scan = data.index(b"\xff\xda")
    assert _strip_metadata(data) is not None
    many = data[:scan] + data[scan:-2] * (MAX_SCANS + 1) + b"\xff\xd9"

    assert _strip_metadata(many) is None


def test_a_jpeg_with_segments_we_do_not_know_is_re_encoded(store: PhotoStore) -> None:
    image = Image.new("RGB", (40, 30), (10, 200, 10))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    data = buffer.getvalue()
    odd = (
        data[:2] + b"\xff\xcc\x00\x04\x00\x00" + data[2:]
    )  # DAC, an arithmetic-coding table: not ours to keep

    stored = store.store(odd)

    with Image.open(stored.path) as again:
        assert again.info.get("progressive") or again.info.get("progression")  # re-encoded


def test_exif_orientation_is_applied(store: PhotoStore) -> None:
    stored = store.store(_jpeg_with_gps(size=(64, 32), orientation=6))  # 6 = rotate 90° clockwise

    assert (stored.width, stored.height) == (32, 64)
    with Image.open(stored.path) as image:
        assert image.size == (32, 64)


def test_png_with_alpha_becomes_rgb_jpeg(store: PhotoStore) -> None:
    stored = store.store(_png((40, 30)))

    with Image.open(stored.path) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.size == (40, 30)
        # Fully transparent pixels are flattened onto white, not black.
        assert min(image.getpixel((20, 15))) > 240


@pytest.mark.parametrize("data", [b"hello, this is not a photo", b"", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_non_images_are_rejected(store: PhotoStore, data: bytes) -> None:
    with pytest.raises(NotAnImage) as refused:
        store.store(data)
    assert not isinstance(refused.value, UnsupportedFormat)  # "could not read it", not "wrong format"
    assert not store.root.exists() or not any(store.root.rglob("*.jpg"))


def test_truncated_image_is_rejected(store: PhotoStore) -> None:
    data = _png((200, 200), mode="RGB")
    with pytest.raises(PhotoRejected):
        store.store(data[: len(data) // 2])


def test_oversize_input_is_rejected(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, max_bytes=1000)
    with pytest.raises(PhotoTooLarge):
        store.store(b"\0" * 1001)
    assert issubclass(PhotoTooLarge, ValueError)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_rejected(store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png((100, 100), mode="RGB")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 - 1)  # in the "warning only" band
    with pytest.raises(NotAnImage):
        store.store(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's own error band
    with pytest.raises(NotAnImage):
        store.store(data)


def test_huge_dimensions_are_downsized(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, max_side=256)

    wide = store.store(_png((1000, 400), mode="RGB"))
    tall = store.store(_jpeg_with_gps(size=(300, 2000)))

    assert (wide.width, wide.height) == (256, 102)
    assert max(tall.width, tall.height) == 256
    with Image.open(wide.path) as image:
        assert image.size == (256, 102)


def test_same_photo_twice_is_stored_once(store: PhotoStore) -> None:
    data = _jpeg_with_gps()

    first = store.store(data)
    second = store.store(data)

    assert first == second
    assert [p for p in store.root.rglob("*") if p.is_file()] == [first.path]
    assert first.path == store.root / first.sha256[:2] / first.sha256[2:4] / f"{first.sha256}.jpg"
    assert store.exists(first.sha256)
    assert store.read(first.sha256) == first.path.read_bytes()


def test_missing_photo_reads_clearly(store: PhotoStore) -> None:
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(KeyError):
        store.read(missing)
    with pytest.raises(FileNotFoundError):
        store.read(missing)
    with pytest.raises(PhotoNotFound, match="no stored photo"):
        store.read(missing)


@pytest.mark.parametrize(
    "bad",
    ["../" * 20 + "etc/passwd", "ab/../../x", "A" * 64, "0" * 63, "0" * 65, "0" * 63 + "\n", "", "g" * 64],
)
def test_malformed_addresses_are_refused(store: PhotoStore, bad: str) -> None:
    for call in (store.path_of, store.read, store.exists):
        with pytest.raises(ValueError):
            call(bad)


def test_store_does_no_io_until_first_photo(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path / "not" / "yet")
    assert not (tmp_path / "not").exists()
    store.store(_png((8, 8)))
    assert (tmp_path / "not" / "yet").is_dir()


def test_register_photo_twice_adds_one_row(store: PhotoStore, sql_engine: Engine) -> None:
    stored = store.store(_jpeg_with_gps())

    with sql_engine.begin() as conn:
        assert register_photo(conn, stored) is True
    with sql_engine.begin() as conn:
        assert register_photo(conn, stored) is False

    with sql_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(photo_rows)).scalar_one() == 1
        row = conn.execute(select(photo_rows)).mappings().one()
    assert row["sha256"] == stored.sha256
    assert (row["width"], row["height"], row["size"]) == (stored.width, stored.height, stored.size)
    assert row["content_type"] == "image/jpeg"


# --- hostile pictures ------------------------------------------------------------------
def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_a_9400_pixel_png_bomb_is_refused_as_too_many_pixels(store: PhotoStore) -> None:
    bomb = images.png(9400, 9400)
    assert len(bomb) < 1 << 20  # small on disk, 353 MB decoded

    with pytest.raises(PhotoTooManyPixels):
        store.store(bomb)
    assert not store.root.exists()


@pytest.mark.parametrize(
    "bomb",
    [
        images.jpeg_claiming(12000, 12000),  # in Pillow's warning band: it would have decoded it
        images.jpeg_claiming(20000, 20000),  # above Pillow's own limit: was "send a JPEG or PNG"
        images.gif_claiming(20000, 20000),
        images.webp_claiming(16000, 16000),
        images.webp_claiming(4000, 3000),  # WebP decodes at 16 bytes a pixel: 10 megapixels at most
    ],
    ids=["jpeg-12000", "jpeg-20000", "gif-20000", "webp-16000", "webp-12mp"],
)
def test_a_12000_pixel_jpeg_and_other_giants_are_refused_as_too_many_pixels(
    store: PhotoStore, bomb: bytes
) -> None:
    with pytest.raises(PhotoTooManyPixels):
        store.store(bomb)


def test_a_progressive_jpeg_that_would_not_fit_the_decode_budget_is_refused(tmp_path: Path) -> None:
    """Progressive JPEGs decode from all their coefficients at once, however small the draft."""
    data = _saved(Image.new("RGB", (1200, 1000), (9, 9, 9)), "JPEG", progressive=True, subsampling=0)
    baseline = _saved(Image.new("RGB", (1200, 1000), (9, 9, 9)), "JPEG", subsampling=0)
    budget = DecodeBudget(6 << 20)  # below 1.2 MP × 6 coefficient bytes, far above the drafted decode

    store = PhotoStore(tmp_path, budget=budget)
    store.max_side = 64
    with pytest.raises(PhotoTooManyPixels):
        store.store(data)
    assert store.store(baseline).width == 64


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_only_the_first_frame_of_an_animation_is_stored(store: PhotoStore, fmt: str) -> None:
    frames = [Image.new("RGB", (60, 40), color) for color in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    data = _saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 3

    stored = store.store(data)

    with Image.open(stored.path) as image:
        assert image.size == (60, 40)
        red, green, blue = image.getpixel((30, 20))
        assert red > 200 and green < 60 and blue < 60


def test_a_truncated_jpeg_is_refused(store: PhotoStore) -> None:
    data = images.photo()
    with pytest.raises(NotAnImage):
        store.store(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "ICO", "PSD"])
def test_formats_we_do_not_decode_are_named_as_such(store: PhotoStore, fmt: str) -> None:
    if fmt == "PSD":
        data = b"8BPS\x00\x01" + b"\0" * 64  # Pillow cannot write PSD; its signature is enough
    else:
        data = _saved(Image.new("RGB", (32, 32), (1, 2, 3)), fmt)
    with pytest.raises(UnsupportedFormat):
        store.store(data)
    assert issubclass(UnsupportedFormat, NotAnImage)


def test_a_large_transparent_png_is_flattened_in_bands(store: PhotoStore) -> None:
    """Converted and reduced a band of rows at a time; the seams must not show."""
    image = Image.new("RGBA", (6000, 1500), (0, 0, 255, 0))
    image.paste((20, 200, 20, 255), (0, 700, 6000, 800))  # an opaque green stripe across the bands
    stored = store.store(_saved(image, "PNG"))

    assert (stored.width, stored.height) == (2560, 640)
    with Image.open(stored.path) as result:
        assert min(result.getpixel((1280, 100))) > 240  # transparent → white
        red, green, blue = result.getpixel((1280, 320))
        assert green > 150 and red < 80 and blue < 80
        rows = [result.getpixel((x, 600)) for x in range(0, 2560, 97)]
        assert all(min(pixel) > 240 for pixel in rows)


def test_the_decode_budget_makes_a_second_big_decode_wait() -> None:
    budget = DecodeBudget(100)
    first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()

    def decode(size: int, entered: threading.Event) -> None:
        with budget.reserve(size):
            entered.set()
            release.wait(5)

    first = threading.Thread(target=decode, args=(60, first_in))
    second = threading.Thread(target=decode, args=(60, second_in))
    first.start()
    assert first_in.wait(5)
    second.start()
    for _ in range(500):  # a barrier, not a pause: the second has taken its turn and found no room
        with budget._cond:  # it took its ticket holding this lock and let go of it only to wait
            if budget._next == 2:
                break
        time.sleep(0.01)
    else:
        raise AssertionError("the second decode never asked for its share")
    assert not second_in.is_set()  # 60 + 60 does not fit in 100: it waits until the first is done
    release.set()
    assert second_in.wait(5)
    first.join(5)
    second.join(5)


@pytest.mark.e2e
def test_storing_a_40_megapixel_png_stays_within_its_memory_budget(tmp_path: Path) -> None:
    """Peak memory of the costliest picture within the limits, measured in a process of its own."""
    script = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from storage.photos import PhotoStore
from tests.fakes import images
data = images.png(7300, 5470)  # 39.9 megapixels, RGBA: 160 MB decoded
store = PhotoStore(Path({str(tmp_path)!r}))
def rss(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":")) * 1024
Path("/proc/self/clear_refs").write_text("5")
before = rss("VmRSS")
store.store(data)
print(rss("VmHWM") - before)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    growth = int(done.stdout)
    # The decoded picture (160 MB) plus bands; a full-size conversion, as before, would add 160 MB more.
    assert growth < 260 << 20, f"{growth >> 20} MB"


async def test_ingest_answers_each_refusal_with_its_own_kind(db: Database, photos: PhotoStore) -> None:
    assert await ingest_photo(db, photos, images.png(9400, 9400)) == "photo_too_many_pixels"
    assert await ingest_photo(db, photos, images.jpeg_claiming(12000, 12000)) == "photo_too_many_pixels"
    assert await ingest_photo(db, photos, _saved(Image.new("RGB", (8, 8)), "TIFF")) == "photo_format"
    assert await ingest_photo(db, photos, b"hello") == "bad_photo"
    small = PhotoStore(photos.root, max_bytes=1000)
    assert await ingest_photo(db, small, images.photo()) == "photo_too_large"
    assert not photos.root.exists()

    ordinary = await ingest_photo(db, photos, images.photo())
    assert isinstance(ordinary, Photo) and photos.exists(ordinary.sha256)
