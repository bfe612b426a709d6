"""Spacing calls to a platform in time, so that a bot stays under the platform's rate limits."""

from __future__ import annotations

import asyncio


class CallSpacer:
    """At most `rate` calls per second through one channel in this process (0: unlimited). Each `wait` books
    the next free slot, so concurrent callers queue in order instead of bursting."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    @classmethod
    def for_channel(cls, _channel: str, rate: float) -> CallSpacer:
        """The `pace` of a single process (SQLite, tests): the channel's name does not matter."""
        return cls(rate)

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)
