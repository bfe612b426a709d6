"""Staff working through the bot: `/staff CODE`, `/queue`, `/ticket N`, ticket cards and their actions —
take, comment (to the resident), resolve (completion photos required, optional comment), reject (a reason
from the catalogue; *wrong organisation* returns the ticket to the dispatcher).

Buttons carry everything they act on (`st:take:12`), so an old card still works — or is refused politely
when the ticket moved on, belongs to another organisation, or the person pressing it is not staff.
"""

from __future__ import annotations

from dataclasses import replace

from core import lifecycle, staffing
from core.context import Ctx, Retry
from core.dialogs.form import Step
from core.dialogs.menu import main_menu
from core.dialogs.tasks import add_photos, begin, cancel_row, number_of, task
from core.domain.tickets import Action, IllegalTransition, Status, Ticket, next_status
from core.messages import Button, Incoming, Reply
from core.notify import (
    REJECT_REASONS,
    Tx,
    card_buttons,
    local,
    local_date,
    organisation_name,
    staff_card,
)
from core.parsing import parse_id
from core.ports import StaffMember, TicketSummary

QUEUE_LIMIT = 20
COMMENT_MAX = 1000
MAX_PHOTOS = 5


def tx(ctx: Ctx) -> Tx:
    return Tx(ctx.store, ctx.municipality, ctx.now)


def not_staff(ctx: Ctx) -> list[Reply]:
    """The refusal for someone who is not (or no longer: `otklik staff remove`) staff, with the resident's
    menu — what they can do instead — unless they are in the middle of a report."""
    said = [ctx.reply("staff.only")]
    return said if ctx.state.get("flow") else [*said, main_menu(ctx)]


def member(ctx: Ctx) -> StaffMember | None:
    """The staff member behind this chat; notifications follow the language they use with the bot."""
    me = ctx.store.staff.get(ctx.chat)
    if me is not None and me.language != ctx.lang:
        ctx.store.staff.set_language(me.id, ctx.lang)
        me = replace(me, language=ctx.lang)
    return me


def authorise(ctx: Ctx, number: int, *, dispatch: bool = False) -> tuple[StaffMember, Ticket] | list[Reply]:
    """The member and the ticket (locked), or the polite refusal. Staff act on their organisation's
    tickets; with `dispatch`, dispatchers act on any ticket."""
    me = member(ctx)
    if me is None:
        return not_staff(ctx)
    ticket = ctx.store.tickets.lock(number)
    if ticket is None:
        return [ctx.reply("staff.not_found", number=number)]
    if ticket.organisation != me.organisation and not (dispatch and me.is_dispatcher):
        return [ctx.reply("staff.foreign", number=number)]
    return me, ticket


def stale(ctx: Ctx, ticket: Ticket) -> list[Reply]:
    return [ctx.reply("staff.stale", number=ticket.number, status=ctx.t(f"status.{ticket.status.value}"))]


def changed(ctx: Ctx, number: int) -> list[Reply]:
    ticket = ctx.store.tickets.get(number, with_events=False)
    status = ctx.t(f"status.{ticket.status.value}") if ticket is not None else "—"
    return [ctx.reply("staff.changed", number=number, status=status)]


def allows(ticket: Ticket, action: Action) -> bool:
    try:
        next_status(ticket.status, action)
    except IllegalTransition:
        return False
    return True


# --- commands ----------------------------------------------------------------------------------------------
def join(ctx: Ctx, args: str) -> list[Reply]:
    result = staffing.redeem(
        ctx.store, ctx.municipality, args, ctx.chat, ctx.incoming.display_name, ctx.lang, ctx.now
    )
    if isinstance(result, str):
        return [ctx.reply(result)]
    if isinstance(result, staffing.TooManyTries):
        return [ctx.reply("staff.invite.too_many", time=local(ctx.municipality, result.after, "%H:%M"))]
    key = "staff.joined_dispatcher" if result.is_dispatcher else "staff.joined"
    return [
        ctx.reply(
            key,
            organisation=organisation_name(ctx.municipality, ctx.lang, result.organisation),
            buttons=(((ctx.t("staff.button.queue"), "st:q"),),),
        )
    ]


def help_text(ctx: Ctx) -> Reply | None:
    """Staff and dispatchers get their own help (their commands); None for residents."""
    me = member(ctx)
    if me is None:
        return None
    key = "help.dispatcher" if me.is_dispatcher else "help.staff"
    return ctx.reply(key, organisation=organisation_name(ctx.municipality, ctx.lang, me.organisation))


def queue(ctx: Ctx) -> list[Reply]:
    me = member(ctx)
    if me is None:
        return not_staff(ctx)
    organisations = [me.organisation]
    if me.is_dispatcher and ctx.municipality.dispatch not in organisations:
        organisations.append(ctx.municipality.dispatch)
    items = ctx.store.tickets.queue(organisations, ctx.now, QUEUE_LIMIT)
    name = organisation_name(ctx.municipality, ctx.lang, me.organisation)
    if not items:
        return [ctx.reply("staff.queue.empty", organisation=name)]
    rows = tuple(((_queue_label(ctx, item), f"st:open:{item.number}"),) for item in items)
    return [ctx.reply("staff.queue.title", buttons=rows, organisation=name, count=len(items))]


def _queue_label(ctx: Ctx, item: TicketSummary) -> str:
    category = ctx.municipality.category(item.subcategory or item.category)
    overdue = item.deadline is not None and item.deadline < ctx.now
    return ctx.t(
        "staff.queue.item",
        mark=ctx.t("staff.queue.overdue_mark") if overdue else "",
        number=item.number,
        category=category.name(ctx.lang) if category else item.category,
        status=ctx.t(f"status.{item.status.value}"),
        deadline=local_date(ctx.municipality, ctx.lang, item.deadline, "day"),
        supporters=ctx.t("staff.queue.supporters", count=item.supporters) if item.supporters else "",
    )


def open_card(ctx: Ctx, number: int) -> list[Reply]:
    allowed = authorise(ctx, number, dispatch=True)
    if isinstance(allowed, list):
        return allowed
    me, ticket = allowed
    card = staff_card(tx(ctx), me, ticket, "staff.headline.open")
    return [replace(card, chat=None)]


def show_ticket(ctx: Ctx, args: str) -> list[Reply]:
    number = parse_id(args.strip().removeprefix("No.").lstrip("№#").strip())
    if number is None:
        return [ctx.reply("staff.ticket_usage")] if member(ctx) else not_staff(ctx)
    return open_card(ctx, number)


# --- buttons -----------------------------------------------------------------------------------------------
def button(ctx: Ctx, data: str) -> list[Reply]:
    verb, _, rest = data.removeprefix("st:").partition(":")
    if verb == "q":
        return queue(ctx)
    number = parse_id(rest)
    if number is None:
        return [ctx.reply("button.stale")]
    match verb:
        case "open":
            return open_card(ctx, number)
        case "take":
            return take(ctx, number)
        case "com":
            return start(ctx, number, "st_comment", Action.COMMENT, COMMENT_STEPS)
        case "res":
            return start(ctx, number, "st_resolve", Action.RESOLVE, RESOLVE_STEPS)
        case "rej":
            return start_reject(ctx, number)
    return [ctx.reply("button.stale")]


def take(ctx: Ctx, number: int) -> list[Reply]:
    allowed = authorise(ctx, number)
    if isinstance(allowed, list):
        return allowed
    me, ticket = allowed
    if ticket.status == Status.IN_PROGRESS and ticket.taken_by is not None:
        if ticket.taken_by == me.id:
            return [ctx.reply("staff.take.mine", number=number)]
        holder = ctx.store.staff.by_id(ticket.taken_by)
        return [ctx.reply("staff.take.already", number=number, name=holder.name if holder else "—")]
    try:
        after = lifecycle.apply(tx(ctx), ticket, Action.TAKE, me.actor, by=me)
    except IllegalTransition:
        return stale(ctx, ticket)
    except lifecycle.Changed:
        return changed(ctx, number)
    return [ctx.reply("staff.take.done", number=number, buttons=card_buttons(ctx.lang, after, me))]


def start(ctx: Ctx, number: int, flow: str, action: Action, steps: tuple[Step, ...]) -> list[Reply]:
    allowed = authorise(ctx, number)
    if isinstance(allowed, list):
        return allowed
    _me, ticket = allowed
    if not allows(ticket, action):
        return stale(ctx, ticket)
    return begin(ctx, flow, steps, ticket=number)


def start_reject(ctx: Ctx, number: int) -> list[Reply]:
    allowed = authorise(ctx, number, dispatch=True)
    if isinstance(allowed, list):
        return allowed
    _me, ticket = allowed
    if not allows(ticket, Action.REJECT):
        return stale(ctx, ticket)
    return begin(ctx, "st_reject", REJECT_STEPS, ticket=number, waiting=ticket.status == Status.NEW)


# --- finishing a task: check again, then change the ticket -------------------------------------------------
def finish(
    ctx: Ctx, action: Action, *, dispatch: bool = False, **change: object
) -> tuple[StaffMember, Ticket] | list[Reply]:
    number = number_of(ctx)
    allowed = authorise(ctx, number, dispatch=dispatch)
    if isinstance(allowed, list):
        return allowed
    me, ticket = allowed
    try:
        after = lifecycle.apply(tx(ctx), ticket, action, me.actor, by=me, **change)  # type: ignore[arg-type]
    except (IllegalTransition, lifecycle.Changed):
        return changed(ctx, number)
    return me, after


# --- comment -----------------------------------------------------------------------------------------------
def ask_comment(ctx: Ctx) -> Reply:
    return ctx.reply("staff.comment.ask", buttons=(cancel_row(ctx),), number=number_of(ctx))


def take_comment(ctx: Ctx, incoming: Incoming) -> None:
    text = (incoming.text or "").strip()
    if len(text) > COMMENT_MAX:
        raise Retry("staff.comment.too_long", count=len(text), max=COMMENT_MAX)
    ctx.slots["text"] = text


def finish_comment(ctx: Ctx) -> list[Reply]:
    done = finish(ctx, Action.COMMENT, comment=ctx.slots["text"])
    if isinstance(done, list):
        return done
    return [ctx.reply("staff.comment.sent", number=done[1].number)]


COMMENT_STEPS = task(
    [Step("text", ask_comment, frozenset({"text"}), take_comment, "staff.comment.retry")], finish_comment
)


# --- resolve -----------------------------------------------------------------------------------------------
def ask_resolve_photos(ctx: Ctx) -> Reply:
    count = len(ctx.slots.get("photos", ()))
    if not count:
        return ctx.reply(
            "staff.resolve.photos_ask", buttons=(cancel_row(ctx),), number=number_of(ctx), max=MAX_PHOTOS
        )
    return ctx.reply(
        "staff.resolve.photos_more",
        buttons=(((ctx.t("report.photos.done"), "res:done"),), cancel_row(ctx)),
        count=count,
        max=MAX_PHOTOS,
    )


def take_resolve_photos(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    if incoming.button is not None:
        if incoming.button != "res:done":
            raise Retry("button.stale")
        if not ctx.slots.get("photos"):
            raise Retry("staff.resolve.photo_required")
        ctx.slots["photos_done"] = True
        return None
    return [*add_photos(ctx, incoming, MAX_PHOTOS), ask_resolve_photos(ctx)]


def ask_resolve_comment(ctx: Ctx) -> Reply:
    return ctx.reply(
        "staff.resolve.comment_ask",
        buttons=(((ctx.t("staff.resolve.no_comment"), "res:skip"),), cancel_row(ctx)),
    )


def take_resolve_comment(ctx: Ctx, incoming: Incoming) -> None:
    if incoming.button is not None:
        if incoming.button != "res:skip":
            raise Retry("button.stale")
        ctx.slots["comment"] = ""
        return
    take_comment(ctx, incoming)
    ctx.slots["comment"] = ctx.slots.pop("text")


def finish_resolve(ctx: Ctx) -> list[Reply]:
    photos = tuple(ctx.slots.get("photos", ()))
    done = finish(ctx, Action.RESOLVE, comment=ctx.slots.get("comment", ""), photos=photos)
    if isinstance(done, list):
        return done
    return [ctx.reply("staff.resolve.done", number=done[1].number)]


RESOLVE_STEPS = task(
    [
        Step("photos_done", ask_resolve_photos, frozenset({"photos", "button"}), take_resolve_photos,
             "staff.resolve.photo_required", button_prefix="res:"),
        Step("comment", ask_resolve_comment, frozenset({"text", "button"}), take_resolve_comment,
             "staff.resolve.comment_retry", button_prefix="res:"),
    ],
    finish_resolve,
)  # fmt: skip


# --- reject ------------------------------------------------------------------------------------------------
def reasons(ctx: Ctx) -> tuple[str, ...]:
    """A ticket still waiting for the dispatcher cannot be 'not ours': the dispatcher routes it instead."""
    return tuple(r for r in REJECT_REASONS if not (r == "wrong_org" and ctx.slots.get("waiting")))


def ask_reason(ctx: Ctx) -> Reply:
    rows: tuple[tuple[Button, ...], ...] = tuple(
        ((ctx.t(f"staff.reason.{r}"), f"rej:{r}"),) for r in reasons(ctx)
    )
    return ctx.reply("staff.reject.ask", buttons=(*rows, cancel_row(ctx)), number=number_of(ctx))


def take_reason(ctx: Ctx, incoming: Incoming) -> None:
    reason = (incoming.button or "").removeprefix("rej:")
    if reason not in reasons(ctx):
        raise Retry("button.stale")
    ctx.slots["reason"] = reason


def is_duplicate(ctx: Ctx) -> bool:
    return ctx.slots.get("reason") == "duplicate"


def ask_duplicate(ctx: Ctx) -> Reply:
    return ctx.reply("staff.reject.duplicate_ask", buttons=(cancel_row(ctx),), number=number_of(ctx))


def take_duplicate(ctx: Ctx, incoming: Incoming) -> None:
    other = parse_id((incoming.text or "").strip().lstrip("№#").strip())
    if other is None:
        raise Retry("staff.reject.duplicate_retry")
    if other == number_of(ctx):
        raise Retry("staff.reject.duplicate_self")
    if ctx.store.tickets.get(other, with_events=False) is None:
        raise Retry("staff.reject.duplicate_unknown", duplicate=other)
    ctx.slots["duplicate_of"] = other


def finish_reject(ctx: Ctx) -> list[Reply]:
    reason = ctx.slots["reason"]
    if reason == "wrong_org":
        done = finish(ctx, Action.RETURN, data={"reason": reason})
        if isinstance(done, list):
            return done
        return [ctx.reply("staff.reject.returned", number=done[1].number)]
    data = {"reason": reason}
    if "duplicate_of" in ctx.slots:
        data["duplicate_of"] = str(ctx.slots["duplicate_of"])
    done = finish(ctx, Action.REJECT, dispatch=True, data=data)
    if isinstance(done, list):
        return done
    return [ctx.reply("staff.reject.done", number=done[1].number, reason=ctx.t(f"staff.reason.{reason}"))]


REJECT_STEPS = task(
    [
        Step("reason", ask_reason, frozenset({"button"}), take_reason, "staff.reject.retry",
             button_prefix="rej:"),
        Step("duplicate_of", ask_duplicate, frozenset({"text"}), take_duplicate,
             "staff.reject.duplicate_retry", applies=is_duplicate),
    ],
    finish_reject,
)  # fmt: skip
