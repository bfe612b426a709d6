"""Wakes the open panels of a resident when the outbox delivered something to them.

The inbox table is the truth (a panel reads what is new after its last id); this only says "look now", so a
panel sees a staff comment within milliseconds instead of at its next poll. Panels served by another process
(several `otklik run` behind a load balancer) are not woken from here: they look on their own every
`POLL_SECONDS` (web/widget/routes.py), so nothing is lost, only later.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Live:
    def __init__(self) -> None:
        self._waiting: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def subscribe(self, chat_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiting[chat_id].add(event)
        return event

    def unsubscribe(self, chat_id: str, event: asyncio.Event) -> None:
        events = self._waiting.get(chat_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiting[chat_id]

    def wake(self, chat_id: str) -> None:
        for event in self._waiting.get(chat_id, ()):
            event.set()

    def wake_all(self) -> None:
        """At shutdown: every stream looks up, sees the server closing, and ends."""
        for events in self._waiting.values():
            for event in events:
                event.set()

    def streams(self, chat_id: str) -> int:
        return len(self._waiting.get(chat_id, ()))

    @property
    def connections(self) -> int:
        return sum(len(events) for events in self._waiting.values())


LIVE = Live()
"""One per process: the widget's sender (in the delivery worker) and its event streams (in the HTTP server)
run on the same event loop of `otklik run`."""
