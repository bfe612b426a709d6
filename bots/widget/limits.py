"""Per-resident and per-address rate limits of the widget: a token bucket per key, in memory.

A burst of `burst` actions is allowed, then `per_minute`; an upload costs `UPLOAD_COST`. In memory is enough:
the limit protects this process's engine and disk from one browser (or one address) hammering it; a resident
rejected here is told when to try again and nothing they already sent is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

UPLOAD_COST = 3.0
ADDRESS_FACTOR = 4
"""An address (a household, an office behind one NAT) may send this many residents' worth."""
MAX_KEYS = 50_000


class Buckets:
    def __init__(self, per_minute: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> float:
        """0 when allowed (and counted); otherwise the seconds until it would be."""
        now = self.clock()
        level, at = self._buckets.get(key, (self.burst, now))
        level = min(self.burst, level + (now - at) * self.rate)
        if level < cost:
            self._buckets[key] = (level, now)
            return (cost - level) / self.rate
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._forget_full(now)
        self._buckets[key] = (level - cost, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the keys whose buckets have refilled: they are as good as new."""
        full = [k for k, (level, at) in self._buckets.items() if level + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]


class RateLimits:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        burst = max(20.0, float(per_minute))
        self.residents = Buckets(per_minute, burst, clock)
        self.addresses = Buckets(per_minute * ADDRESS_FACTOR, burst * ADDRESS_FACTOR, clock)

    def take(self, chat_id: str, address: str, cost: float = 1.0) -> float:
        wait = self.residents.take(chat_id, cost)
        if wait:
            return wait
        return self.addresses.take(address, cost)
