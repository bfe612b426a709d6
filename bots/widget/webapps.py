"""The map picker as a Telegram Web App or a VK Mini App: who opened it, proven by the platform's signature.

A messenger resident on a desktop cannot send a pin; the bot offers the widget's map page instead, and the
point comes back over our HTTP API with the launch data the platform gave the page. That data is trusted only
when its signature checks (anything else — forged, altered, stale — is refused):

- Telegram (core.telegram.org/bots/webapps, *Validating data received via the Mini App*): `initData` is a
  query string; `secret = HMAC_SHA256(key="WebAppData", msg=bot_token)`; the data-check-string is every field
  but `hash`, sorted by key, as `key=value` joined by newlines; `hash` must equal
  `hex(HMAC_SHA256(key=secret, msg=data_check_string))`. `auth_date` bounds its age.
- VK Mini Apps (launch parameters): the `vk_*` parameters sorted by key, URL-encoded as a query string;
  `sign` must equal `base64url(HMAC_SHA256(key=app_secret, msg=that), no padding)`. `vk_ts` bounds its age.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlencode

from core.parsing import parse_id

MAX_AGE = 24 * 3600
"""Seconds launch data stays good: a map page left open for a day must be opened again."""
DATA_MAX = 4096


def _pairs(query: str) -> list[tuple[str, str]] | None:
    if not query or len(query) > DATA_MAX:
        return None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    keys = [key for key, _ in pairs]
    return pairs if len(keys) == len(set(keys)) else None  # a field twice: which one was signed?


def _fresh(value: str | None, now: float, max_age: float) -> bool:
    at = parse_id(value or "", maximum=2**40)
    return at is not None and now - max_age <= at <= now + 300


def telegram_user(init_data: str, bot_token: str, now: float, max_age: float = MAX_AGE) -> str | None:
    """The Telegram user id the signed `initData` names; None when it is forged, altered or stale."""
    pairs = _pairs(init_data)
    if pairs is None or not bot_token:
        return None
    fields = dict(pairs)
    received = fields.pop("hash", "")
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    wanted = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(received.encode(), wanted.encode()):
        return None
    if not _fresh(fields.get("auth_date"), now, max_age):
        return None
    try:
        user = json.loads(fields.get("user", ""))
    except ValueError:
        return None
    user_id = user.get("id") if isinstance(user, dict) else None
    return (
        str(user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) and user_id > 0 else None
    )


def vk_sign(params: dict[str, str], secret: str) -> str:
    signed = urlencode(sorted((k, v) for k, v in params.items() if k.startswith("vk_")))
    digest = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def vk_user(
    query: str, secret: str, now: float, max_age: float = MAX_AGE, *, require_ts: bool = True
) -> str | None:
    """The VK user id of signed launch parameters; None when forged, altered or stale."""
    pairs = _pairs(query.removeprefix("?"))
    if pairs is None or not secret:
        return None
    params = dict(pairs)
    received = params.get("sign", "")
    if not hmac.compare_digest(received.encode(), vk_sign(params, secret).encode()):
        return None
    if (require_ts or "vk_ts" in params) and not _fresh(params.get("vk_ts"), now, max_age):
        return None
    user_id = parse_id(params.get("vk_user_id", ""))
    return str(user_id) if user_id is not None else None
