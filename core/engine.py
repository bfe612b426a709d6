"""The conversation engine: one update in, replies out, everything in between in one transaction.

`handle` runs `step` inside the storage's transaction: claim the delivery id (a repeat is a no-op), load the
chat's state (locked), run one step of the dialog, save the state. Commands and a few buttons work at every
step; everything else goes to the active dialog, or to the main menu when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from core.context import Ctx
from core.dialogs import flows, menu, place, report
from core.dialogs.form import current_step, input_kind, run_step, unsupported_reply
from core.geo import DEFAULT_TIMEOUT, Geocoder, Lookup, run_lookup
from core.messages import ChatRef, Incoming, Reply
from core.municipality import Municipality
from core.ports import Database, Store
from core.texts import LANGUAGES, normalise_language


def utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        db: Database,
        municipality: Municipality,
        *,
        default_language: str = "ru",
        clock: Callable[[], datetime] = utcnow,
        geocoder: Geocoder | None = None,
        geocode_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.db = db
        self.municipality = municipality
        self.default_language = default_language
        self.clock = clock
        self.geocoder = geocoder  # None: geocoding is off
        self.geocode_timeout = geocode_timeout

    async def handle(self, incoming: Incoming) -> list[Reply]:
        lookups: list[Lookup] = []
        replies = await self.db.run(partial(self.step, incoming, lookups=lookups))
        if lookups:  # geocoding (issue 6): never inside the transaction
            replies = [*replies, *await self._geocode(incoming, lookups[-1])]
        return replies

    async def _geocode(self, incoming: Incoming, lookup: Lookup) -> list[Reply]:
        """Run a lookup the step asked for, after its transaction committed, and feed the answer back as an
        update of its own: a second transaction, idempotent through a key derived from the original one."""
        answer = await run_lookup(self.geocoder, lookup, self.municipality, self.geocode_timeout)
        key = f"{incoming.event_key[:120]}:geo" if incoming.event_key else ""
        fed = Incoming(incoming.chat, key, incoming.language, geocoded=answer)
        return await self.db.run(partial(self.step, fed))

    async def pending(self, chat: ChatRef, *, menu_when_idle: bool = False) -> tuple[str, list[Reply]]:
        """The chat's language and the question it was last asked, asked again (the main menu when idle, if
        wanted); nothing is saved. For a channel whose buttons do not survive a restart (the console)."""
        return await self.db.run(partial(self._pending, chat, menu_when_idle=menu_when_idle))

    def _pending(self, chat: ChatRef, store: Store, *, menu_when_idle: bool) -> tuple[str, list[Reply]]:
        state = store.load_dialog(chat) or {"lang": self.default_language}
        ctx = Ctx(
            store,
            self.municipality,
            state,
            chat,
            Incoming(chat, ""),
            self.clock(),
            geocoding=self.geocoder is not None,
        )
        if not state.get("flow") and not menu_when_idle:
            return ctx.lang, []
        return ctx.lang, self._reask(ctx)

    def step(self, incoming: Incoming, store: Store, *, lookups: list[Lookup] | None = None) -> list[Reply]:
        now = self.clock()
        chat = incoming.chat
        if incoming.event_key and not store.claim_event(chat.channel, incoming.event_key, now):
            return []
        state = store.load_dialog(chat) or {
            "lang": normalise_language(incoming.language, self.default_language)
        }
        ctx = Ctx(store, self.municipality, state, chat, incoming, now, geocoding=self.geocoder is not None)
        replies = self._dispatch(ctx, incoming)
        store.save_dialog(chat, state, now)
        if lookups is not None:  # a retried transaction replaces what an earlier attempt asked for
            lookups[:] = ctx.lookups
        return replies

    # --- routing of one input ------------------------------------------------------------------------------
    def _dispatch(self, ctx: Ctx, incoming: Incoming) -> list[Reply]:
        if incoming.geocoded is not None:  # the geocoder's answer to an earlier step (issue 6)
            return place.feed(ctx, report.STEPS)
        if incoming.command is not None:
            return self._command(ctx, incoming.command.lower(), incoming.args.strip().lower())
        if ctx.state.get("flow") == "report":
            replies, taken = run_step(ctx, report.STEPS, incoming)
            if taken:
                return replies if ctx.state.get("flow") else [*replies, menu.main_menu(ctx)]
        if (flow := flows.active(ctx)) is not None:  # a staff or verdict task (issue 3)
            replies, taken = run_step(ctx, flow.steps, incoming)
            if taken:
                return replies
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
        return [ctx.reply("menu.welcome"), menu.main_menu(ctx)]

    def _reask(self, ctx: Ctx) -> list[Reply]:
        """Whatever the user was last asked, asked again (after help, a language change, a stale button)."""
        if ctx.state.get("flow") == "report":
            step = current_step(ctx, report.STEPS)
            if step is not None:
                return [step.prompt(ctx)]
        if (flow := flows.active(ctx)) is not None:
            return flows.reask(ctx, flow)
        return [menu.main_menu(ctx)]

    def _command(self, ctx: Ctx, command: str, args: str = "") -> list[Reply]:
        ctx.state["seen"] = True
        match command:
            case "start":
                if ctx.state.get("flow"):
                    return [ctx.reply(flows.resume_key(ctx)), *self._reask(ctx)]
                return [ctx.reply("menu.welcome"), menu.main_menu(ctx)]
            case "help":
                return [ctx.reply("help.text", max_photos=report.MAX_PHOTOS), *self._reask(ctx)]
            case "cancel":
                if (flow := ctx.state.pop("flow", None)) is None:
                    return [menu.main_menu(ctx, "cancel.nothing")]
                ctx.state.pop("slots", None)
                return flows.cancelled(ctx, flow) or [menu.main_menu(ctx, "cancel.done")]
            case "language":
                if args in LANGUAGES:
                    ctx.state["lang"] = args
                    return [ctx.reply("language.set"), *self._reask(ctx)]
                return [menu.language_menu(ctx)]
            case "new":
                return self._start_report(ctx)
            case "my":
                return [menu.my_reports(ctx)]
        if (said := flows.command(ctx, command, args)) is not None:  # staff commands (issue 3)
            return said
        return [ctx.reply("command.unknown", command=f"/{command}"), *self._reask(ctx)]

    def _button(self, ctx: Ctx, data: str) -> list[Reply]:
        ctx.state["seen"] = True
        prefix, _, value = data.partition(":")
        if prefix == "lang" and value in LANGUAGES:
            ctx.state["lang"] = value
            return [ctx.reply("language.set"), *self._reask(ctx)]
        if data == "menu:new":
            return self._start_report(ctx)
        if data == "menu:mine":
            return [menu.my_reports(ctx)]
        if data == "menu:help":
            return self._command(ctx, "help")
        if data == "menu:language":
            return [menu.language_menu(ctx)]
        if data == report.CANCEL and ctx.state.get("flow"):
            return self._command(ctx, "cancel")
        if prefix == "ticket" and value.isdigit():
            return [menu.ticket_details(ctx, int(value))]
        if (said := flows.button(ctx, data)) is not None:  # staff, dispatch, verdict buttons (issue 3)
            return said
        return [ctx.reply("button.stale"), *self._reask(ctx)]

    def _start_report(self, ctx: Ctx) -> list[Reply]:
        if ctx.state.get("flow") == "report":
            return [ctx.reply("report.resume"), *self._reask(ctx)]
        ctx.state["flow"] = "report"
        ctx.state["slots"] = {}
        return self._reask(ctx)
