"""Who a widget resident is: a random token their browser keeps (an HttpOnly cookie, and the same token in
the page's localStorage sent as a header where third-party cookies are blocked).

The token is `<random>.<mac>`: the MAC (HMAC-SHA256 with the widget secret) lets the server refuse a forged
token before anything is looked up. The chat id is a hash of the random part, so the database never holds a
token that could be replayed; losing the token loses the link to the conversation, never the tickets.
Photo links are bound to the resident they were shown to (`photo_mac`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from bots.settings import Settings

RANDOM_BYTES = 18
MAC_BYTES = 16
TOKEN_MAX = 80


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Identity:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("WIDGET_SECRET must be at least 16 characters")
        self._key = hashlib.sha256(b"otklik-widget:" + secret).digest()

    def _mac(self, purpose: str, value: str, size: int = MAC_BYTES) -> str:
        digest = hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
        return _b64(digest[:size])

    def issue(self) -> str:
        random = _b64(secrets.token_bytes(RANDOM_BYTES))
        return f"{random}.{self._mac('token', random)}"

    def chat_id(self, token: str | None) -> str | None:
        """The resident's chat id for a genuine token; None for anything else (forged, malformed, long)."""
        if not token or len(token) > TOKEN_MAX or token.count(".") != 1:
            return None
        random, mac = token.split(".")
        if not random or not hmac.compare_digest(mac.encode(), self._mac("token", random).encode()):
            return None
        return hashlib.sha256(f"widget-chat:{random}".encode()).hexdigest()[:40]

    def photo_mac(self, chat_id: str, sha256: str) -> str:
        return self._mac("photo", f"{chat_id}:{sha256}", 12)

    def map_mac(self, chat_id: str) -> str:
        return self._mac("map", chat_id, 12)


def load_identity(settings: Settings) -> Identity:
    """From WIDGET_SECRET, or a random secret kept (mode 0600) in DATA_DIR/widget-secret, made once."""
    if settings.widget_secret is not None and settings.widget_secret.get_secret_value():
        return Identity(settings.widget_secret.get_secret_value().encode())
    path = settings.data_dir / "widget-secret"
    return Identity(_file_secret(path))


def _file_secret(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret
