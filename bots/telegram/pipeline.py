"""From a Telegram update (the Bot API's JSON) to the engine and back, with the guarantees neither library
gives by itself.

- Per-chat order: each chat has a queue worked by one task (created on demand, gone when the queue is
  empty), so one chat's updates are handled one after another while chats run concurrently.
- Albums: Telegram delivers a media group as several updates at once. When a chat's next update belongs to
  a media group, the worker collects the group's following updates — up to 10, waiting at most `album_wait`
  for each next one and `album_limit` in all — and hands the engine one `Incoming` with every photo, in
  order, keyed by the group's first update: one draft, one acknowledgement.
- Every submitted update gets a future that completes once it is handled (the engine's transaction
  committed and the answers sent): the poller commits offsets and the webhook answers 200 only then.
- A repeated update_id (a webhook retry) joins the delivery in flight or is dropped when it was handled
  recently; after a restart the engine's event-key dedupe catches it (and re-asks the current question, in
  case the answer was lost with the process).
- A failure is classified (bots/failures.py): a transient one (database, network) leaves the update
  unconfirmed, so Telegram sends it again; any other would fail again on every redelivery, so it is logged
  once with its traceback, the user is told once, and the update is confirmed and recorded as handled.
- Photos are downloaded only when the chat's current step takes photos (`Engine.wants_photos`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any

from bots.failures import is_transient
from bots.photos import ingest_photos
from bots.telegram.api import BotApi, FileTooBig
from bots.telegram.render import ALBUM_MAX
from bots.telegram.sender import TelegramSender
from bots.telegram.translate import MAX_DOWNLOAD, Draft, FileRef, translate
from core.engine import Engine
from core.messages import NOT_KEPT, Incoming, Photo, Reply
from core.personal_data import pseudonym
from core.ports import Database, DeliveryError, Photos
from core.texts import normalise_language, t

log = logging.getLogger(__name__)

_Item = tuple[Draft, "asyncio.Future[bool]"]


@dataclass(eq=False)
class _ChatQueue:
    items: deque[_Item] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class Pipeline:
    api: BotApi
    engine: Engine
    db: Database
    photos: Photos
    sender: TelegramSender
    _: KW_ONLY
    album_wait: float = 0.8
    album_limit: float = 3.0
    _chats: dict[int, _ChatQueue] = field(default_factory=dict, init=False)
    _in_flight: dict[int, asyncio.Future[bool]] = field(default_factory=dict, init=False)
    _recent: OrderedDict[int, None] = field(default_factory=OrderedDict, init=False)
    _answered_by_caller: set[int] = field(default_factory=set, init=False)
    """Updates whose callback query the submitter answers (the webhook, in its HTTP response)."""
    _closing: bool = field(default=False, init=False)

    # --- intake ------------------------------------------------------------------------------------------
    def submit(self, update: dict[str, Any], *, answer_callback: bool = True) -> asyncio.Future[bool]:
        """Queue one update (the Bot API's JSON); the future says whether it may be confirmed (False: a
        transient failure or a shutdown cut it short — Telegram must send it again). `answer_callback`
        False: a button press's callback query is answered by the caller once the future says True (the
        webhook does it in its response), not here."""
        update_id = int(update["update_id"])
        if update_id in self._in_flight:
            return self._in_flight[update_id]
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if update_id in self._recent:
            future.set_result(True)
            return future
        try:
            draft = translate(update, username=self.api.username, bot=self.api.bot_id)
        except Exception:
            log.exception("cannot translate update %s; skipped", update_id)
            draft = Draft(update_id, None)
        if draft.chat_id is None or draft.incoming is None:
            future.set_result(True)
            return future
        self._in_flight[update_id] = future
        if not answer_callback:
            self._answered_by_caller.add(update_id)
        queue = self._chats.get(draft.chat_id)
        if queue is None:
            queue = self._chats[draft.chat_id] = _ChatQueue()
        queue.items.append((draft, future))
        queue.arrived.set()
        if queue.task is None:
            queue.task = asyncio.create_task(
                self._work(draft.chat_id, queue), name=f"tg-chat-{draft.chat_id}"
            )
        return future

    @property
    def busy(self) -> bool:
        return bool(self._in_flight)

    async def close(self, timeout: float = 30.0) -> None:
        """Finish what was submitted (an album being collected is handled at once), then return."""
        self._closing = True
        for queue in self._chats.values():
            queue.arrived.set()
        tasks = [q.task for q in self._chats.values() if q.task is not None]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "%d chats were still busy after %.1fs; their updates will come again", len(pending), timeout
            )
            await asyncio.gather(*pending, return_exceptions=True)

    # --- per chat ----------------------------------------------------------------------------------------
    async def _work(self, chat_id: int, queue: _ChatQueue) -> None:
        batch: list[_Item] = []
        try:
            while queue.items:
                batch = [queue.items.popleft()]
                if batch[0][0].media_group_id is not None:
                    await self._collect_album(queue, batch)
                await self._run(batch)
        finally:
            for draft, future in [*batch, *queue.items]:  # cancelled: not handled, Telegram sends them again
                if not future.done():
                    self._settle(draft, future, ok=False)
            queue.items.clear()
            if self._chats.get(chat_id) is queue:
                del self._chats[chat_id]

    async def _collect_album(self, queue: _ChatQueue, batch: list[_Item]) -> None:
        group = batch[0][0].media_group_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.album_limit
        while len(batch) < ALBUM_MAX:
            if queue.items:
                if queue.items[0][0].media_group_id != group:
                    return  # something else came after the album: the album is complete
                batch.append(queue.items.popleft())
                continue
            timeout = min(self.album_wait, deadline - loop.time())
            if self._closing or timeout <= 0:
                return
            queue.arrived.clear()
            try:
                await asyncio.wait_for(queue.arrived.wait(), timeout)
            except TimeoutError:
                return

    async def _run(self, batch: list[_Item]) -> None:
        drafts = [draft for draft, _future in batch]
        ok = False
        try:
            await self._handle(drafts)
            ok = True
        except Exception as exc:
            if is_transient(exc):
                log.warning(
                    "Telegram update %s failed (%s: %s); left for Telegram to send again",
                    drafts[0].update_id,
                    type(exc).__name__,
                    exc,
                )
            else:
                log.exception(
                    "Telegram update %s failed; confirmed, as it would fail again", drafts[0].update_id
                )
                await self._give_up(drafts)
                await self._apologise(drafts[0])
                ok = True
        finally:
            for draft, future in batch:
                self._settle(draft, future, ok=ok)

    def _settle(self, draft: Draft, future: asyncio.Future[bool], *, ok: bool) -> None:
        self._in_flight.pop(draft.update_id, None)
        self._answered_by_caller.discard(draft.update_id)
        if ok:
            self._recent[draft.update_id] = None
            while len(self._recent) > 10_000:
                self._recent.popitem(last=False)
        if not future.done():
            future.set_result(ok)

    # --- one update (or album) ---------------------------------------------------------------------------
    async def _handle(self, drafts: list[Draft]) -> None:
        first = drafts[0]
        assert first.chat_id is not None and first.incoming is not None
        incoming = await self._incoming(drafts)  # `bot` set by `translate`
        chat_id = first.chat_id
        replies = await self.engine.handle(incoming, progress=lambda _notice: self.sender.typing(chat_id))
        if first.callback_id is not None:
            await self.sender.acknowledge(
                first.chat_id,
                first.callback_id,
                first.callback_message_id,
                answer=first.update_id not in self._answered_by_caller,
            )
        await self._answer(first.chat_id, replies, incoming.language)

    async def _answer(self, chat_id: int, replies: list[Reply], language: str | None) -> None:
        for reply in replies:
            try:
                await self.sender.send(chat_id, reply, language)
            except DeliveryError as exc:
                if not exc.permanent:  # not confirmed: the redelivery re-asks (Engine._repeated)
                    raise
                # The update is handled (committed); only the answer is lost. Blocked: nobody to tell.
                log.warning("could not answer chat %s: %s", pseudonym(chat_id), exc)
                return

    async def _incoming(self, drafts: list[Draft]) -> Incoming:
        first = drafts[0]
        base = first.incoming
        assert base is not None and first.chat_id is not None
        if base.button is not None:
            data = self.sender.codec.decode(base.button)
            return base if data == base.button else replace(base, button=data)
        if base.text is not None and base.command is None and first.photo is None and len(drafts) == 1:
            data = self.sender.keyboards.button_for(first.chat_id, base.text)
            return replace(base, button=data, text=None) if data is not None else base
        if len(drafts) == 1 and first.photo is None:
            return base
        drafts = sorted(drafts, key=lambda d: d.message_id)
        files = [d.photo for d in drafts if d.photo is not None]
        if files and not await self.engine.wants_photos(base.chat):
            photos, problem = [NOT_KEPT] * len(files), None
        else:
            photos, problem = await self._photos(files)
        caption = next((d.incoming.text for d in drafts if d.incoming and d.incoming.text), None)
        unsupported = (
            None
            if photos
            else problem
            or next((d.incoming.unsupported for d in drafts if d.incoming and d.incoming.unsupported), None)
        )
        return replace(
            base,
            event_key=str(min(d.update_id for d in drafts)),
            text=caption,
            photos=tuple(photos),
            unsupported=unsupported,
        )

    async def _photos(self, files: list[FileRef]) -> tuple[list[Photo], str | None]:
        """Downloaded at once, then stored and registered together: one transaction for an album."""
        downloads = await asyncio.gather(*(self._download(f) for f in files))
        data = [d for d in downloads if isinstance(d, bytes)]
        results: list[Photo | str] = [d for d in downloads if isinstance(d, str)]
        if data:
            results += await ingest_photos(self.db, self.photos, data)
        photos = [r for r in results if isinstance(r, Photo)]
        problem = next((r for r in results if isinstance(r, str)), None)
        return photos, problem

    async def _download(self, file: FileRef) -> bytes | str:
        if file.size is not None and file.size > MAX_DOWNLOAD:
            return "photo_too_large"
        try:
            return await self.api.download(file.file_id)
        except FileTooBig:
            return "photo_too_large"

    async def _give_up(self, drafts: list[Draft]) -> None:
        base = drafts[0].incoming
        assert base is not None
        key = str(min(d.update_id for d in drafts))  # as `_incoming` keys an album
        try:
            await self.engine.give_up(replace(base, event_key=key, bot=self.api.bot_id))
        except Exception as exc:
            log.warning("could not record failed update %s as handled: %s", key, exc)

    async def _apologise(self, draft: Draft) -> None:
        if draft.chat_id is None or draft.incoming is None:
            return
        language = normalise_language(draft.incoming.language, self.sender.default_language)
        try:
            if draft.callback_id is not None and draft.update_id not in self._answered_by_caller:
                await self.sender.acknowledge(draft.chat_id, draft.callback_id, None)
            await self.sender.send(draft.chat_id, Reply(text=t(language, "channel.error")), language)
        except Exception as exc:
            log.warning("could not tell chat %s about the failure: %s", pseudonym(draft.chat_id), exc)
