"""The `Dialog` record: what the engine needs to know of a multi-step conversation, and starting and ending
one.

A dialog's name is stored in the chat's state (`state[DIALOG_KEY]`) and its answers in `ctx.slots`,
including the ticket number it is about. A dialog with a `finish` runs it as soon as its last applicable
slot is filled, and ends. Every dialog is listed once in core/dialogs/registry.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from core.buttons import CANCEL
from core.context import Ctx
from core.dialogs.steps import DIALOG_KEY, Step, current_step
from core.messages import Button, Incoming, Reply

Finish = Callable[[Ctx], list[Reply]]


@dataclass(frozen=True, slots=True)
class Dialog:
    name: str
    """Stored in the chat's state while the dialog runs: never rename one that has shipped."""
    steps: tuple[Step, ...]
    resume: str
    """Text key said on /start while the dialog is unfinished."""
    cancelled: str
    """Text key said on /cancel."""
    staff: bool = False
    """A staff member's dialog: it ends when their access does (`otklik staff remove`)."""
    then_menu: bool = False
    """What follows its end (submitted, cancelled or left for a "me too"): the resident's main menu."""
    command: str = ""
    """The command (and main-menu item) that starts it; staff dialogs start from ticket-card buttons."""
    personal: bool = False
    """It stores the resident's personal data (a report): the consent notice comes first when required."""
    finish: Finish | None = None
    """The action it ends in, run once the last applicable slot is filled (the record's steps are wrapped to
    do so); None when one of its steps ends it."""

    def __post_init__(self) -> None:
        if self.finish is not None:
            object.__setattr__(self, "steps", _finishing(self.steps, self.finish))


def _finishing(steps: tuple[Step, ...], finish: Finish) -> tuple[Step, ...]:
    """The steps, each followed by `finish` and the end of the dialog when nothing is left to ask. The dialog
    ends even when `finish` refuses (`Refusal`): the ticket moved on, there is nothing left to do."""
    built: list[Step] = []

    def completing(step: Step) -> Step:
        def handle(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
            said = step.handle(ctx, incoming) or []
            if ctx.state.get(DIALOG_KEY) and current_step(ctx, built) is None:
                try:
                    said = [*said, *finish(ctx)]
                finally:
                    end(ctx)
            return said

        return replace(step, handle=handle)

    built.extend(completing(step) for step in steps)
    return tuple(built)


def begin(ctx: Ctx, dialog: Dialog, **slots: object) -> list[Reply]:
    ctx.state[DIALOG_KEY] = dialog.name
    ctx.state["slots"] = dict(slots)
    step = current_step(ctx, dialog.steps)
    return [step.prompt(ctx)] if step is not None else []


def end(ctx: Ctx) -> None:
    ctx.state.pop(DIALOG_KEY, None)
    ctx.state.pop("slots", None)


def number_of(ctx: Ctx) -> int:
    """The ticket a staff or verdict dialog is about."""
    return int(ctx.slots["ticket"])


def cancel_row(ctx: Ctx) -> tuple[Button, ...]:
    """The cancel button under a prompt: it ends whatever dialog is active."""
    return ((ctx.t("report.cancel"), CANCEL),)
