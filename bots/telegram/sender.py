"""Everything the bot sends goes through here: replies, callback answers and outbox messages.

- Pace: about 1 message/s per chat (short bursts allowed) and `bot_rate` per bot (TELEGRAM_RATE, 30 by
  default as Telegram asks; more for bots with paid broadcasts); an album counts as one message per photo.
  These are GCRA schedules — no background task, no timer per chat. The per-bot rate is this process's own
  unless a shared `bot_pace` is given (`otklik run` passes `App.shared_pace`: one row on PostgreSQL), which
  then paces direct answers and outbox messages alike, so N workers together stay under it. Outbox messages
  (notifications, bulk) also keep to `bulk_rate` (30/s), whatever `bot_rate` allows.
- 429: wait `retry_after`, hold that chat back meanwhile, and try again (an outbox message whose wait is too
  long goes back to the outbox with `retry_after` instead). Network and 5xx errors: a few retries with
  back-off. 403 (the user blocked the bot) and 400: `DeliveryError(permanent=True)`, never retried.
- Photos are uploaded once per bot: the file_id Telegram returns is cached per sha256 (in memory and in the
  `channel_photos` table) and reused by every later message.
- An outbox message that failed half way (album sent, text not) resumes where it stopped when retried by
  this process, so a retry does not send the album twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from bots.telegram.api import BotApi, Markup, RemoveKeyboard, ReplyKeyboard, Upload
from bots.telegram.render import CallbackCodec, MapOffer, Op, SendDocument, SendPhotos, SendText, render
from bots.telegram.translate import CHANNEL
from core.messages import Reply
from core.personal_data import pseudonym
from core.ports import Database, DeliveryError, OutgoingMessage, PhotoNotFound, Photos, numeric_chat_id
from core.ports import Pace as BotPace
from core.texts import normalise_language, t

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    chat_rate: float = 1.0
    chat_burst: int = 3
    bot_rate: float = 30.0
    bot_burst: int = 30
    bulk_rate: float = 30.0
    """Outbox messages a second: Telegram's limit for bulk notifications, even when `bot_rate` is raised."""
    max_retry_after: float = 30.0
    """Longer flood waits are not slept through: the message fails with `retry_after` (the outbox retries)."""
    attempts: int = 4
    """Tries per call for 429 and network errors."""
    backoff: float = 0.5


class Pace:
    """GCRA: `rate` per second on average, up to `burst` at once. `reserve` books slots, says how long to
    wait before using them."""

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.tat = 0.0  # theoretical arrival time of the next slot

    def reserve(self, now: float, cost: int = 1) -> float:
        tat = max(self.tat, now)
        start = max(now, tat - self.tolerance)
        self.tat = tat + cost * self.interval
        return start - now

    def ready_in(self, now: float) -> float:
        """Seconds until `reserve` would not wait (nothing booked)."""
        return max(0.0, self.tat - self.tolerance - now)

    def hold(self, now: float, seconds: float) -> None:
        """Nothing before `now + seconds` (Telegram said so)."""
        self.tat = max(self.tat, now + seconds + self.tolerance)


class TelegramPacer:
    """Telegram's two limits at once: messages per chat and messages per bot (a burst allowed on each)."""

    def __init__(
        self, limits: Limits, clock: Callable[[], float] = time.monotonic, shared: BotPace | None = None
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.bot = Pace(limits.bot_rate, limits.bot_burst)
        self.shared = shared
        """The bot's rate shared with the other workers (a slot per message); None: `bot`, this process's."""
        self.chats: dict[int, Pace] = {}

    def _chat(self, chat_id: int) -> Pace:
        pace = self.chats.get(chat_id)
        if pace is None:
            if len(self.chats) >= 10_000:  # forget chats that have been quiet long enough to be at rest
                now = self.clock()
                self.chats = {k: p for k, p in self.chats.items() if p.tat > now}
            pace = self.chats[chat_id] = Pace(self.limits.chat_rate, self.limits.chat_burst)
        return pace

    async def acquire(self, chat_id: int, cost: int = 1, *, bot: bool = True) -> None:
        """`bot` False: the caller holds the bot's slots already (an outbox message's joint slot)."""
        wait = self._chat(chat_id).reserve(self.clock(), cost)
        if wait > 0:
            await asyncio.sleep(wait)
        if not bot:
            return
        if self.shared is not None:
            try:
                for _ in range(cost):
                    await self.shared.wait()
                return
            except Exception:  # the shared row is on the database: while it is unreachable, answers still go
                log.warning("shared Telegram pace unavailable; pacing this worker alone", exc_info=True)
        wait = self.bot.reserve(self.clock(), cost)
        if wait > 0:
            await asyncio.sleep(wait)

    def chat_ready_in(self, chat_id: int) -> float:
        """Seconds until the chat's own pace lets a message go."""
        return self._chat(chat_id).ready_in(self.clock())

    def hold(self, chat_id: int, seconds: float) -> None:
        self._chat(chat_id).hold(self.clock(), seconds)


class Rejected(DeliveryError):
    """Telegram refused the request as sent (400): retrying the same request is pointless."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=True)


class ReplyKeyboards:
    """Which chats show a reply keyboard of ours, and what its text buttons stand for."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._labels: OrderedDict[int, dict[str, str]] = OrderedDict()

    def shown(self, chat_id: int, labels: dict[str, str]) -> None:
        self._labels[chat_id] = labels
        self._labels.move_to_end(chat_id)
        while len(self._labels) > self.capacity:
            self._labels.popitem(last=False)

    def removed(self, chat_id: int) -> None:
        self._labels.pop(chat_id, None)

    def is_shown(self, chat_id: int) -> bool:
        return chat_id in self._labels

    def button_for(self, chat_id: int, text: str) -> str | None:
        labels = self._labels.get(chat_id)
        return labels.get(text.strip()) if labels else None


class FileIds:
    """sha256 → this bot's file_id, in memory in front of the `channel_photos` table."""

    def __init__(self, db: Database, key: str, capacity: int = 5_000) -> None:
        self.db = db
        self.key = key
        self.capacity = capacity
        self._memory: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        file_id = self._memory.get(sha256)
        if file_id is None:
            file_id = await self.db.run(lambda uow: uow.channel_photos.get(self.key, sha256))
            if file_id is not None:
                self._remember(sha256, file_id)
        return file_id

    async def put(self, sha256: str, file_id: str) -> None:
        self._remember(sha256, file_id)
        try:
            await self.db.run(lambda uow: uow.channel_photos.remember(self.key, sha256, file_id))
        except Exception:  # only a cache: the photo went out; another process uploads it once more
            log.warning("could not record the file_id of photo %s", sha256, exc_info=True)

    def forget(self, sha256: str) -> None:
        self._memory.pop(sha256, None)

    def _remember(self, sha256: str, file_id: str) -> None:
        self._memory[sha256] = file_id
        self._memory.move_to_end(sha256)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)


class TelegramSender:
    """`ChannelSender` for the outbox, and the way the pipeline answers updates."""

    channel = CHANNEL

    def __init__(
        self,
        api: BotApi,
        db: Database,
        photos: Photos,
        *,
        limits: Limits | None = None,
        default_language: str = "ru",
        map_url: str = "",
        bot_pace: BotPace | None = None,
        bulk_pace: BotPace | None = None,
    ) -> None:
        self.api = api
        self.bulk_pace = bulk_pace
        """Outbox messages at `Limits.bulk_rate`, one slot per message (an album: per photo), when `bot_rate`
        is above it (`otklik run` passes `App.pace`: shared on PostgreSQL)."""
        self.bulk_holds_bot_slot = (
            bulk_pace is not None
            and bot_pace is not None
            and (getattr(bulk_pace, "within", None) is bot_pace)
        )
        """The bulk pace books each slot in the bot's shared pace too (`SharedPace(within=...)`): an outbox
        message then goes at its slot instead of queueing for the bot's pace behind the answers."""
        self.map_url = map_url if map_url.startswith("https://") else ""
        """The widget's map page (`…/widget/map`) offered as a Web App in the place step; Telegram opens only
        https pages, so anything else offers no button."""
        self.photos = photos
        self.limits = limits or Limits()
        self.limiter = TelegramPacer(self.limits, shared=bot_pace)
        self.default_language = default_language
        self.codec = CallbackCodec()
        self.keyboards = ReplyKeyboards()
        self.file_ids = FileIds(db, f"tg:{api.bot_id}"[:16])
        self._progress: OrderedDict[int, int] = OrderedDict()
        # Read by the outbox worker, which spaces its deliveries at the bulk rate — unless the shared
        # `bot_pace` already keeps every call of this bot under it: 0 (unlimited) there, or outbox messages
        # would book twice.
        bulk = min(self.limits.bot_rate, self.limits.bulk_rate)
        covered = bulk_pace is not None or (bot_pace is not None and bulk == self.limits.bot_rate)
        self.max_per_second = 0.0 if covered else bulk
        self.chat_interval = 1.0 / self.limits.chat_rate

    # --- the ChannelSender port --------------------------------------------------------------------------
    async def deliver(self, message: OutgoingMessage) -> None:
        chat_id = numeric_chat_id(message, "Telegram chat id")
        ops = self.render(message.reply, None)
        done = self._progress.pop(message.id, 0)
        try:
            for index in range(done, len(ops)):
                op = ops[index]
                if self.bulk_pace is not None:
                    # The chat's own pace (a message a second) first: a bulk slot taken before it would be
                    # spent up to seconds late, in other messages' slots (bench/cluster.py: staff told of
                    # every ticket, 160 outbox messages in five seconds at 30/s).
                    wait = self.limiter.chat_ready_in(chat_id)
                    if wait > 0:
                        await asyncio.sleep(wait)
                    for _ in range(len(op.shas) if isinstance(op, SendPhotos) else 1):
                        await self.bulk_pace.wait()
                await self.execute(chat_id, op, strict=True, paced=self.bulk_holds_bot_slot)
                done = index + 1
        except DeliveryError:
            if done:
                self._progress[message.id] = done
                while len(self._progress) > 1_000:
                    self._progress.popitem(last=False)
            raise

    # --- replies ----------------------------------------------------------------------------------------
    def render(self, reply: Reply, language: str | None) -> list[Op]:
        lang = self.language_of(reply, language) if reply.ask_location else self.default_language
        offer = None
        if reply.ask_location and self.map_url:
            url = f"{self.map_url}?{urlencode({'app': 'telegram', 'lang': lang})}"
            offer = MapOffer(t(lang, "messenger_map.prompt"), t(lang, "messenger_map.button"), url)
        return render(
            reply, location_label=t(lang, "report.location.button"), codec=self.codec, map_offer=offer
        )

    def language_of(self, reply: Reply, fallback: str | None) -> str:
        """The language the reply is in, for the label we add (*Send my location*): the one the core set,
        else the user's Telegram language."""
        return normalise_language(reply.language or fallback, self.default_language)

    async def send(self, chat_id: int, reply: Reply, language: str | None = None) -> None:
        for op in self.render(reply, language):
            await self.execute(chat_id, op)

    async def acknowledge(
        self, chat_id: int, callback_id: str, message_id: int | None, *, answer: bool = True
    ) -> None:
        """Stop the button's spinner (`answer` False: the webhook's response does) and take the keyboard off
        its message, so it cannot be pressed again. Both are best effort: an old query or an already edited
        message is no reason to fail an update."""
        if answer:
            try:
                await self.api.answer_callback(callback_id)
            except Exception as exc:
                if self.api.failure(exc) is None:
                    raise
                log.debug("answerCallbackQuery failed: %s", exc)
        if message_id is None:
            return
        try:
            await self.api.remove_inline_keyboard(chat_id, message_id)
        except Exception as exc:
            if self.api.failure(exc) is None:
                raise
            log.debug(
                "could not remove the keyboard of message %s in %s: %s", message_id, pseudonym(chat_id), exc
            )

    async def typing(self, chat_id: int) -> None:
        """The interim notice of a slow update (a geocoder lookup), as Telegram's "typing…" indicator.
        Best effort, like `acknowledge`."""
        try:
            await self.call(chat_id, 1, lambda: self.api.send_typing(chat_id))
        except DeliveryError as exc:
            log.debug("sendChatAction failed in %s: %s", pseudonym(chat_id), exc)

    async def execute(self, chat_id: int, op: Op, *, strict: bool = False, paced: bool = False) -> None:
        """One planned call. `strict` (outbox messages): a photo missing from the store fails the message for
        good, as the outbox contract says; a reply to the sender goes out without it instead. `paced`: its
        slots of the bot's pace are booked already."""
        if isinstance(op, SendText):
            markup = self._markup(chat_id, op.markup)
            await self.call(chat_id, 1, lambda: self.api.send_text(chat_id, op.text, markup), paced=paced)
            if isinstance(markup, ReplyKeyboard):
                self.keyboards.shown(chat_id, self._labels(op.markup))
            elif isinstance(markup, RemoveKeyboard):
                self.keyboards.removed(chat_id)
        elif isinstance(op, SendPhotos):
            await self._send_photos(chat_id, op, strict, paced)
        elif isinstance(op, SendDocument):
            await self.call(
                chat_id, 1, lambda: self.api.send_document(chat_id, op.filename, op.data), paced=paced
            )
        else:
            await self.call(chat_id, 1, lambda: self.api.send_location(chat_id, op.lat, op.lon), paced=paced)

    def _markup(self, chat_id: int, markup: Markup) -> Markup:
        """A message without a keyboard of its own takes a reply keyboard we showed earlier away."""
        if markup is None and self.keyboards.is_shown(chat_id):
            return RemoveKeyboard()
        return markup

    @staticmethod
    def _labels(markup: Markup) -> dict[str, str]:
        if not isinstance(markup, ReplyKeyboard):
            return {}
        return {label.strip(): data for row in markup.rows for label, data in row}

    async def _send_photos(self, chat_id: int, op: SendPhotos, strict: bool, paced: bool) -> None:
        uploads = await self._uploads(op.shas, strict=strict)
        if not uploads:
            if op.caption:
                await self.execute(chat_id, SendText(op.caption), paced=paced)
            return
        try:
            await self._send_uploads(chat_id, uploads, op.caption, paced)
        except Rejected:
            cached = [u for u in uploads if u.file_id is not None]
            if not cached:
                raise
            # A file_id this bot cannot use (the token changed owners, the cache was copied): upload instead.
            log.warning("Telegram refused cached file ids; uploading %d photos again", len(cached))
            for upload in cached:
                self.file_ids.forget(upload.sha256)
            fresh = await self._uploads(op.shas, cached=False, strict=strict)
            await self._send_uploads(chat_id, fresh, op.caption, False)  # a second try: slots of its own

    async def _send_uploads(
        self, chat_id: int, uploads: Sequence[Upload], caption: str | None, paced: bool
    ) -> None:
        if len(uploads) == 1:
            file_ids = [
                await self.call(
                    chat_id, 1, lambda: self.api.send_photo(chat_id, uploads[0], caption), paced=paced
                )
            ]
        else:
            file_ids = await self.call(
                chat_id, len(uploads), lambda: self.api.send_album(chat_id, uploads, caption), paced=paced
            )
        for upload, file_id in zip(uploads, file_ids, strict=False):
            if upload.file_id is None and file_id:
                await self.file_ids.put(upload.sha256, file_id)

    async def _uploads(
        self, shas: Sequence[str], *, cached: bool = True, strict: bool = False
    ) -> list[Upload]:
        uploads: list[Upload] = []
        for sha in shas:
            file_id = await self.file_ids.get(sha) if cached else None
            if file_id is not None:
                uploads.append(Upload(sha, file_id=file_id))
                continue
            try:
                data = await asyncio.to_thread(self.photos.read, sha)
            except PhotoNotFound:
                if strict:
                    raise DeliveryError(f"photo {sha} is not in the photo store", permanent=True) from None
                log.error("photo %s is not in the photo store; sent without it", sha)
                continue
            uploads.append(Upload(sha, data=data))
        return uploads

    # --- one API call, paced and retried -----------------------------------------------------------------
    async def call(
        self, chat_id: int, cost: int, request: Callable[[], Awaitable[T]], *, paced: bool = False
    ) -> T:
        """`paced`: the first try's slots of the bot's pace are booked already; a retry books its own."""
        attempt = 0
        while True:
            await self.limiter.acquire(chat_id, cost, bot=not paced or attempt > 0)
            try:
                return await request()
            except Exception as exc:
                failure = self.api.failure(exc)
                if failure is None:
                    raise
                attempt += 1
                if failure.kind == "retry_after":
                    wait = failure.retry_after or 1.0
                    self.limiter.hold(chat_id, wait)
                    if wait > self.limits.max_retry_after or attempt >= self.limits.attempts:
                        raise DeliveryError(failure.message, retry_after=wait) from exc
                    log.warning("Telegram flood control in chat %s: waiting %.1fs", pseudonym(chat_id), wait)
                    continue  # `acquire` now waits until the hold is over
                if failure.kind in ("network", "server"):
                    if attempt >= self.limits.attempts:
                        raise DeliveryError(failure.message) from exc
                    delay = self.limits.backoff * 2 ** (attempt - 1)
                    log.info("Telegram unreachable (%s); retrying in %.1fs", failure.message, delay)
                    await asyncio.sleep(delay)
                    continue
                if failure.kind == "forbidden":
                    raise DeliveryError(failure.message, permanent=True) from exc
                raise Rejected(failure.message) from exc
