"""Short declarative forms that end in one action (resolve, reject, comment, reopen).

A task is a flow like the report dialog: `ctx.state["flow"]` names it and `ctx.slots` holds its answers,
including the ticket number it is about. `task(steps, finish)` wraps the steps so that `finish` runs as soon
as the last applicable slot is filled, and the flow ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from core.context import Ctx
from core.dialogs.form import Step, current_step
from core.messages import Button, Incoming, Reply

CANCEL = "report:cancel"  # the engine's cancel button: it ends whatever flow is active


def cancel_row(ctx: Ctx) -> tuple[Button, ...]:
    return ((ctx.t("report.cancel"), CANCEL),)


def task(steps: Sequence[Step], finish: Callable[[Ctx], list[Reply]]) -> tuple[Step, ...]:
    built: list[Step] = []

    def completing(step: Step) -> Step:
        def handle(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
            said = step.handle(ctx, incoming) or []
            if ctx.state.get("flow") and current_step(ctx, built) is None:
                said = [*said, *finish(ctx)]
                end(ctx)
            return said

        return replace(step, handle=handle)

    built.extend(completing(step) for step in steps)
    return tuple(built)


def begin(ctx: Ctx, flow: str, steps: Sequence[Step], **slots: object) -> list[Reply]:
    ctx.state["flow"] = flow
    ctx.state["slots"] = dict(slots)
    step = current_step(ctx, steps)
    return [step.prompt(ctx)] if step is not None else []


def end(ctx: Ctx) -> None:
    ctx.state.pop("flow", None)
    ctx.state.pop("slots", None)


def number_of(ctx: Ctx) -> int:
    return int(ctx.slots["ticket"])


def add_photos(ctx: Ctx, incoming: Incoming, limit: int) -> list[Reply]:
    """Collect photos into `slots["photos"]` up to `limit`; says so when some did not fit."""
    photos: list[str] = ctx.slots.setdefault("photos", [])
    new = [p.sha256 for p in incoming.photos if p.sha256 not in photos]
    room = limit - len(photos)
    photos.extend(new[:room])
    return [ctx.reply("report.photos.limit", max=limit)] if len(new) > room else []
