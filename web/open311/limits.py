"""Requests a minute per API key (and per client address without one): a sliding window in this process.

Several `otklik run` workers each keep their own window, so the city-wide ceiling is the limit times the
workers; a partner hammering one worker is still stopped there. Memory is bounded: at most `limit` moments
per caller, and the least recently seen callers are forgotten past `max_callers`."""

from __future__ import annotations

import math
from collections import OrderedDict, deque

WINDOW = 60.0


class RateLimiter:
    def __init__(self, window: float = WINDOW, max_callers: int = 10_000) -> None:
        self.window = window
        self.max_callers = max_callers
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, caller: str, limit: int, now: float) -> int | None:
        """Count one request; None when allowed, else the whole seconds to wait (`Retry-After`)."""
        moments = self._seen.get(caller)
        if moments is None:
            moments = self._seen[caller] = deque()
            while len(self._seen) > self.max_callers:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(caller)
        while moments and moments[0] <= now - self.window:
            moments.popleft()
        if len(moments) >= limit:
            return max(1, math.ceil(moments[0] + self.window - now))
        moments.append(now)
        return None
