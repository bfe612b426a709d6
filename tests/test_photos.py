"""The photo store strips what phones leak (GPS above all) and stores each distinct photo once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.photos import (
    NotAnImage,
    PhotoNotFound,
    PhotoRejected,
    PhotoStore,
    PhotoTooLarge,
    register_photo,
)
from storage.tables import PhotoRow

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
        assert image.info.get("progressive") or image.info.get("progression")
    assert stored.content_type == "image/jpeg"
    assert stored.size == len(data)


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
    with pytest.raises(NotAnImage):
        store.store(data)
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
    with Session(sql_engine) as session, session.begin():
        assert register_photo(session, stored) is False

    with sql_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PhotoRow.__table__)).scalar_one() == 1
        row = conn.execute(select(PhotoRow.__table__)).mappings().one()
    assert row["sha256"] == stored.sha256
    assert (row["width"], row["height"], row["size"]) == (stored.width, stored.height, stored.size)
    assert row["content_type"] == "image/jpeg"
