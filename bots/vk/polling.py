"""Bots Long Poll that saves its place in the database, and only after a batch was handled.

This is vkbottle's `BotPolling` with two changes: its `ts` lives in the database (the `PollPositions` port)
instead of a file in the working directory, and old events are not skipped — the saved `ts` is where the bot
picks up after a restart, or wherever the next leader runs (bots/roles.py: any worker on any host), so
messages sent meanwhile are answered. A batch of events is handled completely (events of one chat in order,
chats side by side) before its `ts` is saved: a crash mid-batch fetches the batch again and the engine's
`event_key` check makes the repeats no-ops.

A `ts` file vkbottle kept under DATA_DIR before (one host) is read once, when the database has no position
yet, and copied there: an upgraded single-host install keeps its place; then the database is the truth.

An event that failed transiently (bots/failures.py) is handled again, with a growing pause, before the batch
is let go; stopping meanwhile leaves the batch's `ts` unsaved, so VK sends it again after the restart.

Two workers may poll for a moment: a leader deposed before it noticed (its lock's session ended while it
hung), and the one that took over. A save never moves the position back (storage/poll_positions.py), and a
poll whose save finds a later position saved resumes from there: the deposed leader does not go on through
events the new leader answered (each repeat of a chat's latest event re-asks its question), and a new leader
that started behind a deposed one's last batch skips what that batch handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

from vkbottle.polling import BotPolling

from bots.vk.api import VkApi
from bots.vk.pipeline import Pipeline
from bots.vk.translate import CHANNEL, peer_of
from core.ports import PollPositions

log = logging.getLogger(__name__)

BATCH_BACKOFF_MAX = 5.0


class StatefulBotPolling(BotPolling):
    """vkbottle's Bots Long Poll, resuming from the `ts` saved in `positions`.

    `in_hand` is true from the moment a batch is yielded until the next request to VK — that is, while the
    batch is handled and its `ts` saved — when stopping must wait rather than cancel."""

    def __init__(
        self,
        api: VkApi,
        group_id: int | None,
        positions: PollPositions,
        state_dir: Path,
        wait: int = 25,
    ) -> None:
        super().__init__(api, group_id=group_id, wait=wait, skip_old_events=False)
        self.positions = positions
        self.state_dir = state_dir
        """Where vkbottle's `ts` file was before the database (DATA_DIR/vkbottle): read once, to upgrade."""
        self.in_hand = False
        self._resuming = False

    @property
    def position_name(self) -> str:
        if self.group_id is None:
            raise RuntimeError("the community id is not known yet")
        return f"{CHANNEL}:{self.group_id}"

    @property
    def ts_state_path(self) -> Path:
        if self.group_id is None:
            raise RuntimeError("the community id is not known yet")
        return self.state_dir / "bot-polling" / f"{self.group_id}.json"

    def listen(self) -> AsyncGenerator[dict[str, Any], None]:
        self._resuming = True  # its first server gets the saved ts (get_server)
        return super().listen()

    def restore_server_ts(self, server: dict[str, Any]) -> dict[str, Any]:
        return server  # done in get_server, which can await the database

    def save_server_ts(self, server: dict[str, Any]) -> None:
        pass  # the Poller saves the ts once the batch is handled (`save`)

    async def get_server(self) -> dict[str, Any]:
        server = await super().get_server()  # also learns the community id
        if self._resuming:
            self._resuming = False
            ts = await self.saved_ts()
            if ts is not None:
                log.info("VK: resuming Bots Long Poll from ts %s", ts)
                server["ts"] = ts
        return server

    async def saved_ts(self) -> str | None:
        """The position in the database; else the one in vkbottle's DATA_DIR file, copied to the database."""
        ts = await self.positions.load(self.position_name)
        if ts is not None:
            return ts
        found = BotPolling.restore_server_ts(self, {}).get("ts")  # vkbottle's reader of its file
        if found is None:
            return None
        await self.positions.save(self.position_name, str(found))
        log.info("VK: long-poll position %s moved from %s to the database", found, self.ts_state_path)
        return str(found)

    async def save(self, ts: Any) -> bool:
        """False when a later position is saved already (another worker polls): nothing written."""
        return await self.positions.save(self.position_name, str(ts))

    async def get_event(self, server: dict[str, Any]) -> dict[str, Any]:
        self.in_hand = False
        return await super().get_event(server)


class Unfinished(Exception):
    """Stopping with events of a batch not handled: the batch's `ts` must not be saved."""


class Poller:
    def __init__(
        self, api: VkApi, pipeline: Pipeline, positions: PollPositions, state_dir: Path, *, wait: int = 25
    ) -> None:
        self.api = api
        self.pipeline = pipeline
        self.polling = StatefulBotPolling(api, pipeline.group_id, positions, state_dir, wait)
        self._stopping = False
        self._stop_requested = asyncio.Event()
        """Set by `stop`: ends a batch's pause between rounds at once, not after up to BATCH_BACKOFF_MAX."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vk-long-poll")

    async def stop(self) -> None:
        """Cancel a request to VK; a batch in hand ends with its current round (a deposed leader's too: its
        `ts` is then left for the next leader, whose poll fetches the batch again)."""
        self._stopping = True
        self._stop_requested.set()
        self.polling.stop()
        if self._task is not None:
            if not self.polling.in_hand:  # waiting for VK: nothing in hand
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping:
            events = self.polling.listen()
            try:
                async for event in events:
                    self.polling.in_hand = True
                    await self.handle_batch(event.get("updates") or [])
                    failures = 0
                    if self.pipeline.group_id is None:
                        self.pipeline.group_id = self.polling.group_id
                    # only now: a crash before fetches the batch again
                    if not await self.polling.save(event["ts"]):
                        log.warning(
                            "VK: another worker's long poll is past ts %s; resuming from its position",
                            event["ts"],
                        )
                        break  # listen() again: from the saved position, not through what it handled
            except asyncio.CancelledError:
                raise
            except Unfinished as exc:
                log.warning("%s; they come again after the restart", exc)
                return
            except Exception:
                self.polling.in_hand = False
                failures += 1
                delay = self.api.delay(min(failures, 5))
                log.exception("VK long poll failed; reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)
            finally:
                await events.aclose()

    async def handle_batch(self, updates: Sequence[dict[str, Any]]) -> None:
        """Events of one conversation in order, conversations concurrently. A conversation whose event failed
        transiently is tried again from that event, with a growing pause, until it goes through: the batch's
        `ts` is saved only after this returns, so a stop meanwhile leaves the batch to be fetched again.
        A stop ends the pause and tries nothing more: a leader that lost its lock (the database dropped it,
        which is also when its events fail) must not go on handling the batch for seconds beside the new
        leader."""
        by_peer: dict[int | None, list[dict[str, Any]]] = {}
        for update in updates:
            by_peer.setdefault(peer_of(update), []).append(update)
        pending = list(by_peer.values())
        attempt = 0
        while pending:
            left = await asyncio.gather(*(self._handle_in_order(group) for group in pending))
            pending = [group for group in left if group]
            if not pending:
                return
            with contextlib.suppress(TimeoutError):
                pause = min(BATCH_BACKOFF_MAX, self.api.delay(attempt))
                await asyncio.wait_for(self._stop_requested.wait(), pause)
            if self._stopping:
                raise Unfinished(f"VK: stopping with {sum(map(len, pending))} event(s) not handled")
            attempt += 1

    async def _handle_in_order(self, updates: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
        """What is left of the conversation's events after the first transient failure (nothing: all done)."""
        for index, update in enumerate(updates):
            if not await self.pipeline.handle_event(update):
                return updates[index:]
        return ()
