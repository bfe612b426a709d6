"""moto's S3 server (a real HTTP server on 127.0.0.1, from PyPI) for the S3 photo store's tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

KEYS = {"access_key": "test-key", "secret_key": "test-secret", "region": "us-east-1"}


@contextmanager
def moto_server() -> Iterator[str]:
    """A running server on a free port; yields its endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, name: str) -> str:
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        region_name=KEYS["region"],
    ).create_bucket(Bucket=name)
    return name


def s3_settings(endpoint: str, photo_store: str) -> dict[str, str]:
    """The settings that put a worker's photos in moto's bucket (PHOTO_STORE and the S3_* keys)."""
    return {
        "photo_store": photo_store,
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": KEYS["access_key"],
        "s3_secret_access_key": KEYS["secret_key"],
        "s3_region": KEYS["region"],
    }
