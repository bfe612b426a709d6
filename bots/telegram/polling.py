"""Long polling that confirms only what was handled.

`getUpdates` confirms every update below the `offset` it is called with. The frameworks pass the next
offset as soon as updates are fetched (aiogram) or queued (PTB), so a crash loses them. Here the offset
never passes an update still in flight: while something is being handled the poller keeps fetching (albums
need their later parts, other chats must not wait) with the offset held at the oldest update in flight,
skipping what it already has. A graceful stop finishes the updates in hand and confirms them.

An update that failed transiently (bots/failures.py: the database or the network) holds the offset too and
is handled again when it is fetched again, after a growing pause; one that failed for good was answered with
an apology by the pipeline and is confirmed like any handled update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import KW_ONLY, dataclass, field

from bots.telegram.api import BotApi
from bots.telegram.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Poller:
    api: BotApi
    pipeline: Pipeline
    _: KW_ONLY
    timeout: int = 25
    limit: int = 100
    busy_interval: float = 0.1
    max_backoff: float = 30.0
    _seen: int = field(default=0, init=False, repr=False)
    _in_flight: set[int] = field(default_factory=set, init=False, repr=False)
    _unhandled: set[int] = field(default_factory=set, init=False, repr=False)
    """Cut short by a shutdown: Telegram must send them again."""
    _retry: set[int] = field(default_factory=set, init=False, repr=False)
    """Failed transiently: handled again when fetched again."""
    _retry_failures: int = field(default=0, init=False, repr=False)
    _retry_at: float = field(default=0.0, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"tg-poller-{self.api.bot_id}")

    async def stop(self, drain_timeout: float = 30.0) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()  # only ever waiting for Telegram or for a pause: nothing is lost
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.pipeline.close(drain_timeout)
        await self._confirm()

    @property
    def offset(self) -> int | None:
        """The first update not yet handled: everything below it may be confirmed."""
        if self._in_flight or self._unhandled or self._retry:
            return min(self._in_flight | self._unhandled | self._retry)
        return self._seen + 1 if self._seen else None

    async def _loop(self) -> None:
        failures = 0
        while True:
            if self._in_flight:
                self._idle.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), self.busy_interval)
            elif self._retry:  # the database or network was down a moment ago: give it time
                await asyncio.sleep(max(0.0, self._retry_at - asyncio.get_running_loop().time()))
            try:
                updates = await self.api.get_updates(
                    self.offset, 0 if self._in_flight else self.timeout, self.limit
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = self.api.failure(exc)
                if failure is not None and failure.kind == "unauthorized":
                    log.error("Telegram refused the bot token (%s): polling stopped", failure.message)
                    return
                failures += 1
                delay = min(self.max_backoff, 0.5 * 2**failures)
                if failure is not None and failure.retry_after:
                    delay = failure.retry_after
                if failure is None:
                    log.exception("getUpdates failed; retrying in %.1fs", delay)
                else:
                    log.warning(
                        "getUpdates failed (%s: %s); retrying in %.1fs", failure.kind, failure.message, delay
                    )
                await asyncio.sleep(delay)
                continue
            failures = 0
            for raw in updates:
                update_id = int(raw["update_id"])
                if update_id in self._retry:
                    self._retry.discard(update_id)
                elif update_id <= self._seen:
                    continue  # fetched again because the offset is held for an update in flight
                self._seen = max(self._seen, update_id)
                try:
                    update = self.api.parse_update(raw)
                except Exception:
                    log.exception("cannot parse Telegram update %s; skipped", update_id)
                    continue
                self._in_flight.add(update_id)
                self.pipeline.submit(update).add_done_callback(
                    lambda future, update_id=update_id: self._done(update_id, future)
                )

    def _done(self, update_id: int, future: asyncio.Future[bool]) -> None:
        # A deterministic failure was answered with an apology and settled as handled (a poison update would
        # hold the offset forever); a transient one is fetched and handled again; one cut short by a shutdown
        # was never handled, so it is not confirmed.
        ok = not future.cancelled() and future.result()
        if not ok and self._stopping:
            self._unhandled.add(update_id)
        elif not ok:
            self._retry.add(update_id)
            self._retry_failures += 1
            delay = min(self.max_backoff, 0.1 * 2 ** min(self._retry_failures, 10))
            self._retry_at = asyncio.get_running_loop().time() + delay
        elif not self._retry:
            self._retry_failures = 0
        self._in_flight.discard(update_id)
        if not self._in_flight:
            self._idle.set()

    async def _confirm(self) -> None:
        """Tell Telegram what was handled, so that a restart does not fetch it again."""
        if not self._seen:
            return
        try:
            await self.api.get_updates(self.offset, 0, 1)
        except Exception as exc:
            if self.api.failure(exc) is None:
                raise
            log.info("could not confirm handled updates on shutdown: %s", exc)
