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


def keep_photos(ctx: Ctx, incoming: Incoming, limit: int) -> tuple[int, list[str]]:
    """Collect the input's photos into `slots["photos"]` up to `limit`, and say exactly what happened to
    them: how many were added, which were already there (same sha256), which did not fit.
    Returns the number added and those sentences."""
    photos: list[str] = ctx.slots.setdefault("photos", [])
    new: list[str] = []
    duplicates = 0
    for photo in incoming.photos:
        if photo.sha256 in photos or photo.sha256 in new:
            duplicates += 1
        else:
            new.append(photo.sha256)
    room = max(0, limit - len(photos))
    photos.extend(new[:room])
    added, dropped = min(room, len(new)), max(0, len(new) - room)
    news = []
    if added:
        news.append(ctx.t("report.photos.added", count=added))
    if duplicates:
        news.append(ctx.t("report.photos.duplicate", count=duplicates))
    if dropped:
        news.append(ctx.t("report.photos.limit", count=dropped, max=limit))
    return added, news


def add_photos(ctx: Ctx, incoming: Incoming, limit: int) -> list[Reply]:
    """Collect photos up to `limit`; says so when some were repeats or did not fit (the prompt that follows
    gives the new count)."""
    added, news = keep_photos(ctx, incoming, limit)
    trouble = news[1:] if added else news
    return [Reply(text="\n".join(trouble))] if trouble else []
