"""Will handling this update fail again if the platform sends it again? One answer for every channel.

A platform redelivers an update until it is confirmed (a 2xx webhook answer, a polling offset moved past it).
That is right for a *transient* failure — the database restarting, a network error, a timeout: the next try
may well succeed. It is wrong for anything else: a bug that raised ValueError or KeyError raises it again on
every redelivery, and each time the user would get another apology. So the Telegram pipeline (aiogram and
python-telegram-bot, polling and webhook) and the VK channel (long poll and Callback API) ask `is_transient`:
transient → not confirmed, the platform sends it again; anything else → logged once with its traceback, the
user told once, the update confirmed.

Library exception classes are looked up in `sys.modules` rather than imported: an exception of a library
that was never imported cannot occur, and importing aiogram to classify a VK error would cost seconds.
"""

from __future__ import annotations

import sys

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.ports import DeliveryError

TRANSIENT_VK_CODES = frozenset({1, 6, 9, 10})
"""VK API errors worth another try: unknown error, too many requests per second, flood control, internal."""

_ALWAYS = (
    OperationalError,  # lost connection, server restarting, SQLite `database is locked`
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    TimeoutError,  # asyncio.TimeoutError is the same class
    ConnectionError,
)
_LIBRARY = (
    ("aiohttp", ("ClientError",)),
    ("httpx", ("TransportError",)),
    ("aiogram.exceptions", ("TelegramNetworkError", "TelegramServerError", "TelegramRetryAfter")),
    ("telegram.error", ("NetworkError", "RetryAfter")),
    ("bots.vk.api", ("BadResponse",)),
)
_PERMANENT = (("telegram.error", ("BadRequest",)),)  # python-telegram-bot's BadRequest is a NetworkError


def _classes(table: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module_name, names in table:
        module = sys.modules.get(module_name)
        if module is not None:
            found.extend(getattr(module, name) for name in names if hasattr(module, name))
    return tuple(found)


def _one(exc: BaseException) -> bool:
    if isinstance(exc, DeliveryError):
        return not exc.permanent
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, _ALWAYS):
        return True
    if isinstance(exc, _classes(_PERMANENT)):
        return False
    if isinstance(exc, _classes(_LIBRARY)):
        return True
    vk_error = sys.modules.get("vkbottle")
    if vk_error is not None and isinstance(exc, vk_error.VKAPIError):
        return getattr(exc, "code", None) in TRANSIENT_VK_CODES
    return False


def is_transient(exc: BaseException) -> bool:
    """True when trying the same update again may succeed: the exception, or one it was raised from
    (`raise … from`), is a database disconnect, a network error or a timeout."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _one(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
