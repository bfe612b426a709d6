"""The conversation engine: one update in, replies out, everything in between in one transaction.

`handle` runs `step` inside the storage's transaction: claim the delivery id (a repeat re-asks the chat's
current question at most, see `_repeated`), load the chat's state (locked), run one step of the dialog, save
the state. Commands and a few buttons work at every step; everything else goes to the active dialog, or to
the main menu when there is none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

from core import buttons
from core.buttons import Cancel, Language, Menu, MyTicket
from core.context import Ctx, Refusal
from core.dialogs import menu, place, privacy, registry
from core.dialogs.dialog import Dialog, begin, end
from core.dialogs.steps import DIALOG_KEY, current_step, input_kind, run_step, unsupported_reply
from core.geo import DEFAULT_TIMEOUT, Lookup, run_lookup
from core.messages import ChatRef, Incoming, Reply
from core.municipality import Municipality
from core.normalise import normalise_incoming
from core.personal_data import PrivacyPolicy
from core.photo_limits import MAX_PHOTOS
from core.ports import Database, Geocoder, UnitOfWork
from core.texts import LANGUAGES, normalise_language, t

log = logging.getLogger(__name__)

Progress = Callable[[Reply], Awaitable[None]]
Observer = Callable[[Incoming, float, bool], None]
"""Told of every handled update: the update, seconds it took, and whether it succeeded (metrics)."""
"""An adapter's way to show an interim notice while the engine waits on the network (the console and VK
print it, Telegram shows "typing…"); the engine never knows which."""
PROGRESS_AFTER = 1.0
"""Seconds of a geocoder lookup before the resident is told that the address is being checked."""

LAST_EVENT = "last_event"
"""Dialog state: bot and delivery id of the chat's latest update, for `Engine._repeated`."""

MENU_COMMANDS = {"new": "new", "mine": "my", "help": "help", "language": "language"}
"""Each main-menu button does what its command does."""


def in_language(replies: list[Reply], language: str) -> list[Reply]:
    """Replies a dialog built from texts without saying their language are in the chat's."""
    return [r if r.language else replace(r, language=language) for r in replies]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Engine:
    db: Database
    municipality: Municipality
    _: KW_ONLY
    default_language: str = "ru"
    clock: Callable[[], datetime] = utcnow
    geocoder: Geocoder | None = None
    """None: geocoding is off."""
    geocode_timeout: float = DEFAULT_TIMEOUT
    progress_after: float = PROGRESS_AFTER
    privacy: PrivacyPolicy = field(default_factory=lambda: PrivacyPolicy(consent_required=False))
    """The composition root passes the operator's policy; engines built bare (tests, benchmarks) ask for no
    consent."""
    web_url: str = "http://127.0.0.1:8080"
    """The base of `/web` sign-in links."""
    observer: Observer | None = None

    async def handle(self, incoming: Incoming, progress: Progress | None = None) -> list[Reply]:
        """One update → the replies. `progress`, when given, gets an interim notice if the update waits on
        the network for more than `progress_after` seconds (a geocoder lookup)."""
        if self.observer is None:
            return await self._handle(incoming, progress)
        started, ok = time.perf_counter(), False
        try:
            replies = await self._handle(incoming, progress)
            ok = True
            return replies
        finally:
            self.observer(incoming, time.perf_counter() - started, ok)

    async def _handle(self, incoming: Incoming, progress: Progress | None) -> list[Reply]:
        incoming = normalise_incoming(incoming)  # once, here, for every channel
        lookups: list[Lookup] = []
        replies = await self.db.run(partial(self.step, incoming, lookups=lookups))
        if lookups:  # geocoding: never inside the transaction
            replies = [*replies, *await self._geocode(incoming, lookups[-1], progress)]
        return replies

    async def _geocode(self, incoming: Incoming, lookup: Lookup, progress: Progress | None) -> list[Reply]:
        """Run a lookup the step asked for, after its transaction committed, and feed the answer back as an
        update of its own: a second transaction, idempotent through a key derived from the original one."""
        task = asyncio.ensure_future(
            run_lookup(self.geocoder, lookup, self.municipality, self.geocode_timeout)
        )
        try:
            if progress is not None:
                done, _pending = await asyncio.wait({task}, timeout=self.progress_after)
                if not done:
                    notice = Reply(text=t(lookup.language, "report.place.checking"), language=lookup.language)
                    await self._notify(progress, notice)
            answer = await task
        finally:
            task.cancel()  # a no-op once done; stops the lookup if the update itself was cancelled
        key = f"{incoming.event_key[:120]}:geo" if incoming.event_key else ""
        fed = Incoming(incoming.chat, key, incoming.language, geocoded=answer, bot=incoming.bot)
        return await self.db.run(partial(self.step, fed))

    @staticmethod
    async def _notify(progress: Progress, notice: Reply) -> None:
        """Best effort: a notice that cannot be shown is no reason to lose the answer."""
        try:
            await progress(notice)
        except Exception:
            log.warning("could not show an interim notice", exc_info=True)

    async def pending(self, chat: ChatRef, *, menu_when_idle: bool = False) -> tuple[str, list[Reply]]:
        """The chat's language and the question it was last asked, asked again (the main menu when idle, if
        wanted); nothing is saved. For a channel whose buttons do not survive a restart (the console)."""
        return await self.db.run(partial(self._pending, chat, menu_when_idle=menu_when_idle))

    def _pending(self, chat: ChatRef, store: UnitOfWork, *, menu_when_idle: bool) -> tuple[str, list[Reply]]:
        state = store.dialogs.load(chat) or {"lang": self.default_language}
        ctx = Ctx(
            store,
            self.municipality,
            state,
            chat,
            Incoming(chat, ""),
            self.clock(),
            geocoding=self.geocoder is not None,
            city_language=self.default_language,
            privacy=self.privacy,
        )
        if not state.get(DIALOG_KEY) and not menu_when_idle:
            return ctx.lang, []
        return ctx.lang, in_language(self._reask(ctx), ctx.lang)

    def step(
        self, incoming: Incoming, store: UnitOfWork, *, lookups: list[Lookup] | None = None
    ) -> list[Reply]:
        now = self.clock()
        chat = incoming.chat
        if incoming.event_key:
            fresh, loaded = store.dialogs.claim_and_load(chat, incoming.bot, incoming.event_key, now)
        else:
            fresh, loaded = True, store.dialogs.load(chat)
        state = loaded or {"lang": normalise_language(incoming.language, self.default_language)}
        ctx = Ctx(
            store,
            self.municipality,
            state,
            chat,
            incoming,
            now,
            geocoding=self.geocoder is not None,
            city_language=self.default_language,
            privacy=self.privacy,
            web_url=self.web_url,
        )
        if not fresh:
            return self._repeated(ctx, incoming)
        if any(not photo.sha256 for photo in incoming.photos) and self._takes_photos(ctx):
            # Not downloaded because the step took no photos when the adapter asked, yet it does now (another
            # update of the chat came first): nothing is lost by asking for them again.
            incoming = ctx.incoming = replace(incoming, photos=(), unsupported="bad_photo")
        replies = in_language(self._dispatch(ctx, incoming), ctx.lang)
        if incoming.event_key and incoming.geocoded is None:
            state[LAST_EVENT] = f"{incoming.bot}:{incoming.event_key}"
        if not state.get(privacy.FORGOTTEN):  # a forgotten chat leaves no state behind
            store.dialogs.save(chat, state, now)
        if lookups is not None:  # a retried transaction replaces what an earlier attempt asked for
            lookups[:] = ctx.lookups
        return replies

    async def give_up(self, incoming: Incoming) -> None:
        """Record as handled an update whose handling failed in a way that will repeat (a bug, not an outage):
        its transaction was rolled back, so without this a redelivery — or the next process after a restart
        — would fail again and apologise again. The adapter has told the user once."""
        if incoming.event_key:
            chat, now = incoming.chat, self.clock()
            await self.db.run(
                lambda store: store.events.claim(chat.channel, incoming.bot, incoming.event_key, now)
            )

    async def seen(self, chat: ChatRef, bot: str, event_key: str) -> bool:
        """Whether an update was handled already (read-only): adapters whose platform redelivers check this
        before side effects of their own — answering a button press, downloading photos — so a repeat has
        none. Not a claim: an update that fails after this check must still be handled on its redelivery."""
        return bool(event_key) and await self.db.run(
            lambda store: store.events.seen(chat.channel, bot, event_key)
        )

    def _repeated(self, ctx: Ctx, incoming: Incoming) -> list[Reply]:
        """A delivery id handled before. Usually a platform's retry of an update that was also
        answered — but it may be one whose transaction committed just before the process died, with its answer
        never sent: the resident would wait for a question that never comes. Storing each update's replies
        with its event would cost a write per update and, after a crash past the sending, repeat answers
        already given ("ticket №12 registered" twice); so the chat's current question is asked again instead.
        Only for the chat's latest update, though: a long-poll batch fetched again after a crash, or an older
        update redelivered, re-asks once at most, and a retry of an already answered update costs one re-ask
        of the question the resident is looking at. Nothing is saved: the transaction changes nothing."""
        if ctx.state.get(LAST_EVENT) != f"{incoming.bot}:{incoming.event_key}":
            return []
        return self._reask(ctx)

    async def wants_photos(self, chat: ChatRef) -> bool:
        """Whether the chat's current step takes photos: adapters download a user's photos only then, so
        twenty photos sent at the main menu do not become twenty files. Read-only."""
        return await self.db.run(partial(self._wants_photos, chat))

    def _wants_photos(self, chat: ChatRef, store: UnitOfWork) -> bool:
        state = store.dialogs.load(chat)
        if not state:
            return False
        return self._takes_photos(
            Ctx(store, self.municipality, state, chat, Incoming(chat, ""), self.clock())
        )

    @staticmethod
    def _takes_photos(ctx: Ctx) -> bool:
        """Derived from the steps' declared input kinds, so a step that starts taking photos needs no change
        here."""
        dialog = registry.active(ctx)
        step = current_step(ctx, dialog.steps) if dialog is not None else None
        return step is not None and "photos" in step.accepts

    # --- routing of one input ------------------------------------------------------------------------------
    def _dispatch(self, ctx: Ctx, incoming: Incoming) -> list[Reply]:
        """The one place where a dialog's refusal (not staff, a ticket moved on, …) becomes the answer."""
        try:
            return self._route(ctx, incoming)
        except Refusal as refusal:
            return refusal.replies

    def _route(self, ctx: Ctx, incoming: Incoming) -> list[Reply]:
        dialog = registry.active(ctx)
        if incoming.geocoded is not None:  # the geocoder's answer to an earlier place step
            return place.feed(ctx, dialog.steps) if dialog is not None else []
        registry.revoked(ctx)  # staff access ended mid-dialog: refused
        if incoming.command is not None:
            return self._command(ctx, incoming.command.lower(), incoming.args.strip().lower())
        if dialog is not None and (notice := privacy.gate_draft(ctx, dialog)) is not None:
            return notice
        if dialog is not None:
            replies, handled = run_step(ctx, dialog.steps, incoming)
            if handled:
                ended = dialog.then_menu and registry.active(ctx) is None
                return [*replies, menu.main_menu(ctx)] if ended else replies
        if input_kind(incoming) == "button":
            return self._button(ctx, incoming.button or "")
        return self._idle(ctx, incoming)

    def _idle(self, ctx: Ctx, incoming: Incoming) -> list[Reply]:
        kind = input_kind(incoming)
        if kind == "text" and ctx.state.get("seen"):
            return [menu.main_menu(ctx, "menu.unknown_text")]
        if kind == "unsupported":
            return [unsupported_reply(ctx, incoming.unsupported or "other"), menu.main_menu(ctx)]
        ctx.state["seen"] = True
        return [ctx.reply("menu.welcome"), *privacy.first_contact(ctx)]

    def _reask(self, ctx: Ctx) -> list[Reply]:
        """Whatever the user was last asked, asked again (after help, a language change, a stale button)."""
        dialog = registry.active(ctx)
        step = current_step(ctx, dialog.steps) if dialog is not None else None
        return [step.prompt(ctx)] if step is not None else [menu.main_menu(ctx)]

    def _command(self, ctx: Ctx, command: str, args: str = "") -> list[Reply]:
        ctx.state["seen"] = True
        match command:
            case "start":
                if (dialog := registry.active(ctx)) is not None:
                    return [ctx.reply(dialog.resume), *self._reask(ctx)]
                return [ctx.reply("menu.welcome"), *privacy.first_contact(ctx)]
            case "help":
                said = registry.help_text(ctx) or ctx.reply("help.text", max_photos=MAX_PHOTOS)
                return [said, *self._reask(ctx)]
            case "cancel":
                return self._cancel(ctx)
            case "language":
                if args in LANGUAGES:
                    ctx.state["lang"] = args
                    return [ctx.reply("language.set"), *self._reask(ctx)]
                return [menu.language_menu(ctx)]
            case "my":
                return [menu.my_reports(ctx)]
        if (dialog := registry.STARTED_BY.get(command)) is not None:
            return self._start(ctx, dialog)
        if (run := registry.COMMANDS.get(command)) is not None:
            return run(ctx, args)
        return [ctx.reply("command.unknown", command=f"/{command}"), *self._reask(ctx)]

    def _cancel(self, ctx: Ctx) -> list[Reply]:
        if not ctx.state.get(DIALOG_KEY):
            return [menu.main_menu(ctx, "cancel.nothing")]
        dialog = registry.active(ctx)
        end(ctx)
        if dialog is None or dialog.then_menu:
            return [menu.main_menu(ctx, dialog.cancelled if dialog is not None else "cancel.done")]
        return [ctx.reply(dialog.cancelled)]

    def _button(self, ctx: Ctx, data: str) -> list[Reply]:
        """A button no step of the active dialog handled: the global ones, ticket-card actions, or stale."""
        ctx.state["seen"] = True
        match pressed := buttons.parse(data):
            case Language(code):
                ctx.state["lang"] = code
                return [ctx.reply("language.set"), *self._reask(ctx)]
            case Menu(item):
                return self._command(ctx, MENU_COMMANDS[item])
            case Cancel() if ctx.state.get(DIALOG_KEY):
                return self._cancel(ctx)
            case MyTicket(number):
                return [menu.ticket_details(ctx, number)]
        if pressed is not None and (act := registry.ACTIONS.get(type(pressed))) is not None:
            return act(ctx, pressed)
        return self._stale(ctx, data)

    def _stale(self, ctx: Ctx, data: str) -> list[Reply]:
        """The one answer to a button that is unknown, malformed, forged, or out of place here: a stale
        ticket-card button is refused alone (the card is not the conversation); any other is followed by
        the chat's current question."""
        if buttons.on_card(data):
            return [ctx.reply("button.stale")]
        return [ctx.reply("button.stale"), *self._reask(ctx)]

    def _start(self, ctx: Ctx, dialog: Dialog) -> list[Reply]:
        if registry.active(ctx) is dialog:
            return [ctx.reply(dialog.resume), *self._reask(ctx)]
        if dialog.personal and (notice := privacy.gate(ctx, dialog.command)) is not None:
            return notice
        return begin(ctx, dialog)
