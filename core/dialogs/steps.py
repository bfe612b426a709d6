"""The steps of a dialog: an ordered list, each step filling one slot (DESIGN.md §4).

The runner asks for the first missing slot, routes the input to that step if it is of a kind the step
accepts, and otherwise answers with the step's retry text and asks again — so every step gets the same
treatment of wrong input without writing it twice. A step claims the buttons it declares by their parsed
type (core/buttons.py); any other button is left to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from core import photo_limits
from core.buttons import ButtonData, parse
from core.context import Ctx, Retry
from core.messages import Incoming, Reply


def input_kind(incoming: Incoming) -> str:
    if incoming.geocoded is not None:
        return "geocoded"
    if incoming.button is not None:
        return "button"
    if incoming.location is not None:
        return "location"
    if incoming.photos:
        return "photos"
    if incoming.unsupported is not None:
        return "unsupported"
    if incoming.contact is not None:
        return "contact"
    if incoming.text is not None and incoming.text.strip():
        return "text"
    return "empty"


def always(_ctx: Ctx) -> bool:
    return True


DIALOG_KEY = "flow"
"""Where the chat's state names its active dialog. The stored word predates the name "dialog" and stays:
states of unfinished dialogs are persisted, and renaming it would need a data migration for one word that
only this constant spells (core/reporting.py still pops it by its literal when a report is submitted)."""


@dataclass(frozen=True, slots=True)
class Step:
    slot: str
    prompt: Callable[[Ctx], Reply]
    accepts: frozenset[str]
    handle: Callable[[Ctx, Incoming], list[Reply] | None]
    """Fill the slot (or keep collecting, if repeatable) and say anything extra; raise Retry if bad."""
    retry: str
    applies: Callable[[Ctx], bool] = always
    """Whether the step is asked at all (the diagram in docs/dialogs.md names it)."""
    buttons: tuple[type[ButtonData], ...] = ()
    """The button formats this step handles; other buttons pass to the engine (cancel, menus, cards)."""


def current_step(ctx: Ctx, steps: Sequence[Step]) -> Step | None:
    slots = ctx.slots
    return next((s for s in steps if s.slot not in slots and s.applies(ctx)), None)


def label_key(label: str) -> str:
    """A label as people type it: no emoji or punctuation, any case and spacing ("✅ Готово" = "готово")."""
    return " ".join("".join(c if c.isalnum() else " " for c in label).split()).casefold()


def label_to_button(reply: Reply, text: str) -> str | None:
    """A typed label of one of the prompt's buttons counts as pressing it (console, reply keyboards)."""
    wanted = label_key(text)
    if not wanted:
        return None
    for row in reply.buttons:
        for label, data in row:
            if label_key(label) == wanted:
                return data
    return None


def run_step(ctx: Ctx, steps: Sequence[Step], incoming: Incoming) -> tuple[list[Reply], bool]:
    """One input into the dialog. Returns the replies and whether the step handled the input.

    Not handled means a button from another place that the caller may still handle (global buttons).
    """
    step = current_step(ctx, steps)
    if step is None:
        return [], False
    prompt = step.prompt(ctx)
    kind = input_kind(incoming)
    if kind == "text" and prompt.buttons:
        data = label_to_button(prompt, incoming.text or "")
        if data is not None:
            incoming = _as_button(incoming, data)
            kind = "button"
    if kind == "button" and not isinstance(parse(incoming.button), step.buttons):
        return [], False
    if kind not in step.accepts:
        return [_wrong_kind(ctx, incoming, kind, step), prompt], True
    try:
        said = step.handle(ctx, incoming) or []
    except Retry as retry:
        return [ctx.reply(retry.key, **retry.params), step.prompt(ctx)], True
    if not ctx.state.get(DIALOG_KEY):  # the step finished the dialog (submitted)
        return said, True
    following = current_step(ctx, steps)
    if following is None or following is step:
        return said, True
    return [*said, following.prompt(ctx)], True


def _as_button(incoming: Incoming, data: str) -> Incoming:
    return replace(incoming, button=data, text=None)


def _wrong_kind(ctx: Ctx, incoming: Incoming, kind: str, step: Step) -> Reply:
    if kind == "unsupported":
        return unsupported_reply(ctx, incoming.unsupported or "other")
    if kind == "contact":
        return ctx.reply("input.unsupported", kind=ctx.t("input.kind.contact"))
    if kind == "empty":
        return ctx.reply("input.empty")
    return ctx.reply(step.retry)


def unsupported_reply(ctx: Ctx, what: str) -> Reply:
    """Adapters name inputs we cannot use; bad or oversized photos have their own explanation."""
    if what == "bad_photo":
        return ctx.reply("input.bad_photo")
    if what == "photo_too_large":
        return ctx.reply("input.photo_too_large", max_mb=photo_limits.MAX_MB)
    if what == "photo_too_many_pixels":
        return ctx.reply(
            "input.photo_too_many_pixels",
            max_mp=photo_limits.MAX_MEGAPIXELS,
            webp_mp=photo_limits.WEBP_MAX_MEGAPIXELS,
        )
    if what == "photo_format":
        return ctx.reply("input.photo_format")
    if what == "bad_location":  # the console's `/loc` with unreadable coordinates: say how to write it
        return ctx.reply("input.bad_location")
    kind_key = f"input.kind.{what}"
    kind = ctx.t(kind_key)
    if kind == kind_key:
        kind = ctx.t("input.kind.other")
    return ctx.reply("input.unsupported", kind=kind)
