"""Photos in an S3-compatible object store (`PHOTO_STORE=s3://bucket/prefix`), shared by every worker on
every host (DESIGN.md §12). Yandex Object Storage, VK Cloud, Selectel and MinIO all speak this API.

The `Photos` port is unchanged: `store` validates and normalises through the filesystem store (its local
folder is this host's cache), then uploads the JPEG under `prefix/ab/cd/<sha256>.jpg`; `read` serves the cache
and fetches from the bucket on a miss (a photo another host received). Every `store` uploads, even a photo
the bucket has: its LastModified is then fresh, which is what keeps the remote collector from removing a
photo uploaded again while it runs (the same rule as the filesystem store's utime).

The remote collector (`collect_remote`, run by the leader with the photo collector) removes objects older
than the grace period whose `photos` row is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from core.ports import PhotoNotFound
from storage.photo_gc import BATCH, registered
from storage.photos import PhotoStore, StoredPhoto, _write_atomically, validate_sha256

log = logging.getLogger(__name__)
MISSING = {"404", "NoSuchKey", "NotFound"}


def parse_location(location: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ("bucket", "some/prefix/"); ValueError for anything else."""
    parts = urlsplit(location.strip())
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"PHOTO_STORE: expected s3://bucket/prefix, got {location!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


class S3PhotoStore(PhotoStore):
    """The `Photos` port over a bucket, with `root` as this host's cache (the collector sweeps it)."""

    def __init__(
        self,
        cache: Path,
        location: str,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        client: Any = None,
        **limits: Any,
    ) -> None:
        super().__init__(cache, **limits)
        self.bucket, self.prefix = parse_location(location)
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region or None,
            config=Config(
                retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30
            ),
        )

    def key_of(self, sha256: str) -> str:
        validate_sha256(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"

    def store(self, data: bytes) -> StoredPhoto:
        stored = super().store(data)  # validated, normalised, cached on this host
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key_of(stored.sha256),
            Body=stored.path.read_bytes(),
            ContentType=stored.content_type,
        )
        return stored

    def exists(self, sha256: str) -> bool:
        if super().exists(sha256):
            return True
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key_of(sha256))
        except ClientError as exc:
            if _code(exc) in MISSING:
                return False
            raise
        return True

    def read(self, sha256: str) -> bytes:
        try:
            return super().read(sha256)
        except PhotoNotFound:
            pass
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key_of(sha256))["Body"].read()
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise PhotoNotFound(sha256) from None
            raise
        _write_atomically(self.path_of(sha256), body)  # cached: the next album re-upload reads the disk
        return bytes(body)

    def remote_older_than(self, cutoff: datetime) -> list[tuple[str, str]]:
        """(sha256, key) of the bucket's photos last uploaded before `cutoff`."""
        found: list[tuple[str, str]] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                sha = name.removesuffix(".jpg")
                if name.endswith(".jpg") and len(sha) == 64 and item["LastModified"] < cutoff:
                    found.append((sha, item["Key"]))
        return found

    def delete_remote(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # the API's limit per request
            chunk = keys[start : start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


Runner = Callable[[Callable[[Any], Any]], Any]


async def collect_remote(run: Runner, photos: S3PhotoStore, now: datetime, grace: timedelta) -> int:
    """Remove the bucket's photos without a `photos` row, `grace` after their last upload; how many."""
    candidates = await asyncio.to_thread(photos.remote_older_than, now - grace)
    doomed: list[str] = []
    for start in range(0, len(candidates), BATCH):
        chunk = candidates[start : start + BATCH]
        known = await run(lambda store, shas=[sha for sha, _ in chunk]: registered(store, shas))
        doomed.extend(key for sha, key in chunk if sha not in known)
    if doomed:
        await asyncio.to_thread(photos.delete_remote, doomed)
        log.info("photos: removed %d unreferenced objects from the bucket", len(doomed))
    return len(doomed)
