"""Several `otklik run` workers on one database (DESIGN.md §12): what each one does, and which of them runs
the jobs exactly one worker may run.

Roles (`otklik run --role`):
    web     the HTTP server only: webhooks (Telegram, VK Callback API), the city's web, health and metrics;
    worker  outbox delivery, and the leader-only jobs when elected (Telegram polling, VK long poll, the
            lifecycle timers, pruning, the photo collector); HTTP for health and metrics;
    all     both (the default; what one process on one machine runs).

Leadership is a `LeaderLock` (core/ports.py): a PostgreSQL advisory lock on a connection of its own, or
always held on SQLite. A standby asks again every `RETRY` seconds, so a leader killed outright is replaced
within about that; the leader checks its hold every `CHECK` seconds and, when it lost it (the database
restarted, the network failed), stops its jobs and stands by again rather than run them twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from core.ports import LeaderLock

log = logging.getLogger(__name__)

Role = Literal["web", "worker", "all"]
ROLES: tuple[Role, ...] = ("web", "worker", "all")
RETRY = 3.0
"""Seconds between a standby's attempts at leadership: fail-over takes at most about this long."""
CHECK = 2.0
"""Seconds between the leader's checks that it still holds leadership."""

LeaderJobs = Callable[[asyncio.Event], Awaitable[None]]
"""The leader's work for one term: runs until the event is set (leadership lost or the worker stopping)."""


@dataclass
class Cluster:
    """This worker's place in the cluster, as /readyz and /metrics report it."""

    role: Role = "all"
    leader: bool = False
    terms: int = 0
    """How many times this worker has been elected."""

    @property
    def elects(self) -> bool:
        return self.role != "web"

    @property
    def serves_webhooks(self) -> bool:
        return self.role != "worker"

    @property
    def delivers(self) -> bool:
        return self.role != "web"

    @property
    def standing(self) -> str:
        """`leader`, `standby`, or `web` for a worker that takes no part in the election."""
        if not self.elects:
            return "web"
        return "leader" if self.leader else "standby"


async def lead(
    lock: LeaderLock,
    cluster: Cluster,
    jobs: LeaderJobs,
    stopping: asyncio.Event,
    *,
    retry: float = RETRY,
    check: float = CHECK,
) -> None:
    """Stand for leadership until `stopping`; while elected, run `jobs`. A failing term (a polling channel
    that cannot start) ends this worker: the error is the operator's to see, not to retry in a loop."""
    try:
        while not stopping.is_set():
            if not await asyncio.to_thread(lock.acquire):
                await _pause(stopping, retry)
                continue
            cluster.leader, cluster.terms = True, cluster.terms + 1
            log.info("leader: this worker runs polling and the timers (term %d)", cluster.terms)
            try:
                await _term(lock, jobs, stopping, check)
            finally:
                cluster.leader = False
            if not stopping.is_set():
                log.warning("leader: stepped down; standing by")
    finally:
        await asyncio.to_thread(lock.release)


async def _term(lock: LeaderLock, jobs: LeaderJobs, stopping: asyncio.Event, check: float) -> None:
    term = asyncio.Event()
    task = asyncio.create_task(jobs(term))
    try:
        while not stopping.is_set() and not task.done():
            await _pause(stopping, check, task)
            if not task.done() and not await asyncio.to_thread(lock.held):
                break
    finally:
        term.set()
        await task  # the jobs stop on `term`; their own failure propagates


async def _pause(stopping: asyncio.Event, seconds: float, task: asyncio.Task[None] | None = None) -> None:
    """Wait `seconds`, or less when the worker stops or the term's jobs end."""
    waiter = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait(
            [waiter, *([task] if task else [])], timeout=seconds, return_when="FIRST_COMPLETED"
        )
    finally:
        waiter.cancel()
