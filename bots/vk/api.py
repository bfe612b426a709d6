"""Talking to the VK API: vkbottle's `API` with VK's 20 requests/s, back-off on error 6 ("too many requests
per second") and retries of network errors (DESIGN.md §6, §9 — vkbottle has neither), and the HTTP session
every call and photo download of the channel goes through.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from vkbottle import API, VKAPIError
from vkbottle.api.request_rescheduler import ABCRequestRescheduler
from vkbottle.http import AiohttpClient

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.vk.ru/method"
AUTHORIZATION_FAILED = 5
RATE = 20  # requests per second for a community token
TOO_MANY_REQUESTS = 6
FLOOD_CONTROL = 9  # too many similar actions: not worth retrying at once
FLOOD_RETRY_AFTER = 10.0
TRANSIENT_CODES = frozenset({1, TOO_MANY_REQUESTS, 10})  # unknown error, too many requests, internal error
# Never going to work for this recipient: access denied, blacklisted, no permission to write, privacy,
# no access to the chat, contact not found, chat disabled/unsupported; and our own malformed messages.
PERMANENT_CODES = frozenset({7, 900, 901, 902, 911, 914, 917, 936, 945, 946})
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class BadResponse(Exception):
    """VK answered with something that is not JSON (a proxy's error page, a cut connection)."""


class RequestWindow:
    """At most `rate` acquisitions in any `per` seconds, first come first served; `pause` holds everyone."""

    def __init__(
        self,
        rate: int = RATE,
        per: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.per = per
        self.clock = clock
        self._times: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                while self._times and now - self._times[0] >= self.per:
                    self._times.popleft()
                wait = self._paused_until - now
                if len(self._times) >= self.rate:
                    wait = max(wait, self.per - (now - self._times[0]))
                if wait <= 0:
                    self._times.append(now)
                    return
                await asyncio.sleep(wait)


class _RaiseRescheduler(ABCRequestRescheduler):
    """vkbottle re-sends a non-JSON answer after 5 s, 10 s, …; we raise and let `VkApi` decide."""

    async def reschedule(self, ctx_api: Any, method: str, data: dict[str, Any], recent_response: Any) -> Any:
        raise BadResponse(f"{method}: not a JSON answer: {str(recent_response)[:200]!r}")


class VkApi(API):
    """vkbottle's API at `api_url`, rate-limited, retrying what is worth retrying."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        http_client: AiohttpClient,
        limiter: RequestWindow | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        super().__init__(token, http_client=http_client, request_rescheduler=_RaiseRescheduler())
        self.API_URL = api_url.rstrip("/") + "/"
        self.limiter = limiter or RequestWindow()
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt)

    async def request(self, method: str, data: dict[str, Any], version: str | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            await self.limiter.acquire()
            try:
                return await super().request(method, dict(data), version)
            except VKAPIError as exc:
                if exc.code not in TRANSIENT_CODES or attempt >= self.retries:
                    raise
                delay = self.delay(attempt)
                if exc.code == TOO_MANY_REQUESTS:
                    self.limiter.pause(delay)  # every caller backs off, not only this one
                log.info("VK %s: error %s (%s); retrying in %.2fs", method, exc.code, exc, delay)
            except (*NETWORK_ERRORS, BadResponse) as exc:
                if attempt >= self.retries:
                    raise
                delay = self.delay(attempt)
                log.info("VK %s: %s; retrying in %.2fs", method, exc or type(exc).__name__, delay)
            attempt += 1
            await asyncio.sleep(delay)


API_ERRORS = (VKAPIError, *NETWORK_ERRORS, BadResponse)
"""What a call through `VkApi` raises when VK refuses it or cannot be reached."""


def http_client() -> AiohttpClient:
    """The channel's one HTTP session: API calls, long-poll requests and photo downloads."""
    return AiohttpClient(timeout=aiohttp.ClientTimeout(total=60, connect=10))
