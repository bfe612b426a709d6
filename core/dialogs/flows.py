"""The staff side's entry points for the engine: its commands, its buttons and its flows (tasks).

The engine asks here for what it does not handle itself: `command` and `button` return None when the input
is not theirs; `active` is the running task (the report dialog stays the engine's own).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.context import Ctx
from core.dialogs import dispatch, staff, verdict
from core.dialogs.form import Step, current_step
from core.dialogs.tasks import end
from core.messages import Reply


@dataclass(frozen=True, slots=True)
class Flow:
    steps: tuple[Step, ...]
    resume: str
    """Said on /start while the task is unfinished."""
    cancelled: str
    """Said on /cancel."""
    staff: bool = False
    """A staff member's task: it ends when their access does (`otklik staff remove`)."""


FLOWS: dict[str, Flow] = {
    "st_comment": Flow(staff.COMMENT_STEPS, "staff.resume", "staff.cancelled", staff=True),
    "st_resolve": Flow(staff.RESOLVE_STEPS, "staff.resume", "staff.cancelled", staff=True),
    "st_reject": Flow(staff.REJECT_STEPS, "staff.resume", "staff.cancelled", staff=True),
    "dp_place": Flow(dispatch.PLACE_STEPS, "dispatch.place.resume", "dispatch.place.cancelled", staff=True),
    "reopen": Flow(verdict.REOPEN_STEPS, "verdict.reopen.resume", "verdict.reopen.cancelled"),
}


def active(ctx: Ctx) -> Flow | None:
    return FLOWS.get(str(ctx.state.get("flow", "")))


def revoked(ctx: Ctx) -> list[Reply] | None:
    """A staff task of someone whose staff access ended meanwhile: it ends now, whatever they send, and
    they are refused as anyone who is not staff. None when there is no such task."""
    flow = active(ctx)
    if flow is None or not flow.staff or staff.member(ctx) is not None:
        return None
    end(ctx)
    return staff.not_staff(ctx)


def reask(ctx: Ctx, flow: Flow) -> list[Reply]:
    step = current_step(ctx, flow.steps)
    return [step.prompt(ctx)] if step is not None else []


def resume_key(ctx: Ctx) -> str:
    flow = active(ctx)
    return flow.resume if flow is not None else "report.resume"


def cancelled(ctx: Ctx, name: str) -> list[Reply] | None:
    flow = FLOWS.get(name)
    return [ctx.reply(flow.cancelled)] if flow is not None else None


def help_text(ctx: Ctx) -> Reply | None:
    """The help of a staff member or dispatcher; None for a resident (the engine's own help)."""
    return staff.help_text(ctx)


def command(ctx: Ctx, name: str, args: str) -> list[Reply] | None:
    match name:
        case "staff":
            return staff.join(ctx, args)
        case "queue":
            return staff.queue(ctx)
        case "ticket":
            return staff.show_ticket(ctx, args)
    return None


def button(ctx: Ctx, data: str) -> list[Reply] | None:
    prefix = data.partition(":")[0]
    match prefix:
        case "st":
            return staff.button(ctx, data)
        case "dp":
            return dispatch.button(ctx, data)
        case "vd":
            return verdict.button(ctx, data)
    return None
