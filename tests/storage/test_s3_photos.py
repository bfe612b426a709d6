"""The S3-compatible photo store against moto's S3 server (a real HTTP server on 127.0.0.1, from PyPI):
what one host stores, another reads; the collector removes the bucket's unreferenced photos."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.app import App, build_app
from bots.settings import Settings
from core.ports import PhotoNotFound
from storage.database import Database
from storage.photos import register_photo
from storage.s3_photos import S3PhotoStore, collect_remote, parse_location
from tests.s3_support import KEYS, create_bucket, moto_server, s3_settings
from tests.support import jpeg_bytes


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    return create_bucket(s3_endpoint, f"photos-{abs(hash(request.node.name)) % 10**8}")


def host(tmp_path: Path, name: str, endpoint: str, bucket: str) -> S3PhotoStore:
    """One worker's store: its own cache folder, the shared bucket."""
    return S3PhotoStore(tmp_path / name, f"s3://{bucket}/city/photos", endpoint_url=endpoint, **KEYS)


def test_a_photo_stored_on_one_host_is_read_on_another(tmp_path: Path, s3_endpoint: str, bucket: str) -> None:
    first, second = host(tmp_path, "a", s3_endpoint, bucket), host(tmp_path, "b", s3_endpoint, bucket)
    stored = first.store(jpeg_bytes((10, 200, 10)))
    assert not second.path_of(stored.sha256).exists()  # not on the second host's disk …
    assert second.exists(stored.sha256)  # … but in the bucket
    assert second.read(stored.sha256) == stored.path.read_bytes()
    assert second.path_of(stored.sha256).is_file()  # cached for the next read
    key = first.client.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
    assert key == f"city/photos/{stored.sha256[:2]}/{stored.sha256[2:4]}/{stored.sha256}.jpg"

    unknown = "0" * 64
    assert not second.exists(unknown)
    with pytest.raises(PhotoNotFound):
        second.read(unknown)
    with pytest.raises(ValueError):
        second.read("../../etc/passwd")


def test_photo_store_location_is_parsed_strictly() -> None:
    assert parse_location("s3://bucket/a/b/") == ("bucket", "a/b/")
    assert parse_location("s3://bucket") == ("bucket", "")
    for wrong in ("http://bucket/x", "s3:///x", "s3://bucket/x?y=1", "bucket/x"):
        with pytest.raises(ValueError):
            parse_location(wrong)


async def test_the_collector_removes_the_buckets_photos_that_have_no_row(
    tmp_path: Path, s3_endpoint: str, bucket: str, db: Database
) -> None:
    store = host(tmp_path, "a", s3_endpoint, bucket)
    kept = store.store(jpeg_bytes((1, 2, 3)))
    stray = store.store(jpeg_bytes((200, 100, 0)))  # a crash before its row was written
    await db.run(lambda uow: register_photo(uow.conn, kept))
    now = datetime.now(UTC)

    assert await collect_remote(db.run, store, now, timedelta(hours=1)) == 0  # too recent to judge
    assert await collect_remote(db.run, store, now + timedelta(days=2), timedelta(days=1)) == 1
    reader = host(tmp_path, "b", s3_endpoint, bucket)
    assert reader.exists(kept.sha256)
    assert not reader.exists(stray.sha256)


def test_photo_store_setting_builds_the_shared_store(tmp_path: Path, s3_endpoint: str, bucket: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        geocoder="off",
        **s3_settings(s3_endpoint, f"s3://{bucket}/p"),
    )
    app: App = build_app(settings)
    try:
        assert isinstance(app.photos, S3PhotoStore)
        assert app.photos.root == tmp_path / "data" / "photos"
        stored = app.photos.store(jpeg_bytes())
        assert app.photos.client.head_object(
            Bucket=bucket, Key=f"p/{stored.sha256[:2]}/{stored.sha256[2:4]}/{stored.sha256}.jpg"
        )
    finally:
        app.close()
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        Settings(_env_file=None, photo_store="ftp://x")  # type: ignore[call-arg]
