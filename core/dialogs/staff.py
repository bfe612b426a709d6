"""Staff working through the bot: `/staff CODE`, `/queue`, `/ticket N`, ticket cards and their actions —
take, comment (to the resident), resolve (completion photos required, optional comment), reject (a reason
from the catalogue; *wrong organisation* returns the ticket to the dispatcher).

Buttons carry everything they act on (`st:take:12`), so an old card still works — or is refused politely
when the ticket moved on, belongs to another organisation, or the person pressing it is not staff.
"""

from __future__ import annotations

from dataclasses import replace

from core import lifecycle, staffing
from core.buttons import (
    RejectReason,
    ResolveNoComment,
    ResolvePhotosDone,
    StaffComment,
    StaffOpen,
    StaffQueue,
    StaffReject,
    StaffResolve,
    StaffTake,
    parse,
)
from core.cards import card_buttons, staff_card
from core.change import Tx
from core.context import Ctx, Refusal, Retry
from core.dialogs.dialog import Dialog, begin, cancel_row, number_of
from core.dialogs.menu import main_menu
from core.dialogs.photos import add_photos, pressed_done
from core.dialogs.steps import DIALOG_KEY, Step
from core.domain.policy import REJECT_REASONS, is_overdue
from core.domain.tickets import Action, IllegalTransition, Status, Ticket, next_status
from core.labels import local, local_date, organisation_name
from core.messages import Button, Incoming, Reply
from core.parsing import parse_id
from core.photo_limits import MAX_PHOTOS
from core.ports import StaffMember, TicketSummary

QUEUE_LIMIT = 20
COMMENT_MAX = 1000


def tx(ctx: Ctx) -> Tx:
    return Tx(ctx.store, ctx.municipality, ctx.now)


def not_staff(ctx: Ctx) -> list[Reply]:
    """The refusal for someone who is not (or no longer: `otklik staff remove`) staff, with the resident's
    menu — what they can do instead — unless they are in the middle of a report."""
    said = [ctx.reply("staff.only")]
    return said if ctx.state.get(DIALOG_KEY) else [*said, main_menu(ctx)]


def member(ctx: Ctx) -> StaffMember | None:
    """The staff member behind this chat; notifications follow the language they use with the bot."""
    me = ctx.store.staff.get(ctx.chat)
    if me is not None and me.language != ctx.lang:
        ctx.store.staff.set_language(me.id, ctx.lang)
        me = replace(me, language=ctx.lang)
    return me


def staff_member(ctx: Ctx) -> StaffMember:
    """The staff member behind this chat; refused for anyone else."""
    me = member(ctx)
    if me is None:
        raise Refusal(not_staff(ctx))
    return me


def authorise(ctx: Ctx, number: int, *, dispatch: bool = False) -> tuple[StaffMember, Ticket]:
    """The member and the ticket (locked); refused politely otherwise. Staff act on their organisation's
    tickets; with `dispatch`, dispatchers act on any ticket."""
    me = staff_member(ctx)
    ticket = ctx.store.tickets.lock(number)
    if ticket is None:
        raise Refusal([ctx.reply("staff.not_found", number=number)])
    if ticket.organisation != me.organisation and not (dispatch and me.is_dispatcher):
        raise Refusal([ctx.reply("staff.foreign", number=number)])
    return me, ticket


def stale(ctx: Ctx, ticket: Ticket) -> Refusal:
    """The ticket's status no longer allows the action."""
    status = ctx.t(f"status.{ticket.status.value}")
    return Refusal([ctx.reply("staff.stale", number=ticket.number, status=status)])


def changed(ctx: Ctx, number: int) -> Refusal:
    """Someone else changed the ticket in the meantime."""
    ticket = ctx.store.tickets.get(number, with_events=False)
    status = ctx.t(f"status.{ticket.status.value}") if ticket is not None else "—"
    return Refusal([ctx.reply("staff.changed", number=number, status=status)])


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
            buttons=(((ctx.t("staff.button.queue"), StaffQueue().data),),),
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
    me = staff_member(ctx)
    organisations = [me.organisation]
    if me.is_dispatcher and ctx.municipality.dispatch not in organisations:
        organisations.append(ctx.municipality.dispatch)
    items = ctx.store.tickets.queue(organisations, ctx.now, QUEUE_LIMIT)
    name = organisation_name(ctx.municipality, ctx.lang, me.organisation)
    if not items:
        return [ctx.reply("staff.queue.empty", organisation=name)]
    rows = tuple(((_queue_label(ctx, item), StaffOpen(item.number).data),) for item in items)
    return [ctx.reply("staff.queue.title", buttons=rows, organisation=name, count=len(items))]


def _queue_label(ctx: Ctx, item: TicketSummary) -> str:
    category = ctx.municipality.category(item.subcategory or item.category)
    return ctx.t(
        "staff.queue.item",
        mark=ctx.t("staff.queue.overdue_mark") if is_overdue(item, ctx.now) else "",
        number=item.number,
        category=category.name(ctx.lang) if category else item.category,
        status=ctx.t(f"status.{item.status.value}"),
        deadline=local_date(ctx.municipality, ctx.lang, item.deadline, "day"),
        supporters=ctx.t("staff.queue.supporters", count=item.supporters) if item.supporters else "",
    )


def open_card(ctx: Ctx, number: int) -> list[Reply]:
    me, ticket = authorise(ctx, number, dispatch=True)
    card = staff_card(tx(ctx), me, ticket, "staff.headline.open")
    return [replace(card, chat=None)]


def show_ticket(ctx: Ctx, args: str) -> list[Reply]:
    number = parse_id(args.strip().removeprefix("No.").lstrip("№#").strip())
    if number is None:
        return [ctx.reply("staff.ticket_usage")] if member(ctx) else not_staff(ctx)
    return open_card(ctx, number)


# --- buttons -----------------------------------------------------------------------------------------------
def take(ctx: Ctx, number: int) -> list[Reply]:
    me, ticket = authorise(ctx, number)
    if ticket.status == Status.IN_PROGRESS and ticket.taken_by is not None:
        if ticket.taken_by == me.id:
            return [ctx.reply("staff.take.mine", number=number)]
        holder = ctx.store.staff.by_id(ticket.taken_by)
        return [ctx.reply("staff.take.already", number=number, name=holder.name if holder else "—")]
    try:
        after = lifecycle.apply(tx(ctx), ticket, Action.TAKE, me.actor, by=me)
    except IllegalTransition:
        raise stale(ctx, ticket) from None
    except lifecycle.Changed:
        raise changed(ctx, number) from None
    return [ctx.reply("staff.take.done", number=number, buttons=card_buttons(ctx.lang, after, me))]


def start(ctx: Ctx, number: int, dialog: Dialog, action: Action) -> list[Reply]:
    _me, ticket = authorise(ctx, number)
    if not allows(ticket, action):
        raise stale(ctx, ticket)
    return begin(ctx, dialog, ticket=number)


def start_reject(ctx: Ctx, number: int) -> list[Reply]:
    _me, ticket = authorise(ctx, number, dispatch=True)
    if not allows(ticket, Action.REJECT):
        raise stale(ctx, ticket)
    return begin(ctx, REJECT, ticket=number, waiting=ticket.status == Status.NEW)


# --- finishing a dialog: check again, then change the ticket -----------------------------------------------
def finish(ctx: Ctx, action: Action, *, dispatch: bool = False, **change: object) -> Ticket:
    """The ticket after the change; refused when the member or the ticket moved on meanwhile."""
    number = number_of(ctx)
    me, ticket = authorise(ctx, number, dispatch=dispatch)
    try:
        return lifecycle.apply(tx(ctx), ticket, action, me.actor, by=me, **change)  # type: ignore[arg-type]
    except (IllegalTransition, lifecycle.Changed):
        raise changed(ctx, number) from None


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
    return [ctx.reply("staff.comment.sent", number=done.number)]


COMMENT = Dialog(
    "st_comment",
    (Step("text", ask_comment, frozenset({"text"}), take_comment, "staff.comment.retry"),),
    resume="staff.resume",
    cancelled="staff.cancelled",
    staff=True,
    finish=finish_comment,
)
"""A comment to the resident on a ticket."""


# --- resolve -----------------------------------------------------------------------------------------------
def ask_resolve_photos(ctx: Ctx) -> Reply:
    count = len(ctx.slots.get("photos", ()))
    if not count:
        return ctx.reply(
            "staff.resolve.photos_ask", buttons=(cancel_row(ctx),), number=number_of(ctx), max=MAX_PHOTOS
        )
    return ctx.reply(
        "staff.resolve.photos_more",
        buttons=(((ctx.t("report.photos.done"), ResolvePhotosDone().data),), cancel_row(ctx)),
        count=count,
        max=MAX_PHOTOS,
    )


def take_resolve_photos(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    if pressed_done(ctx, incoming, ResolvePhotosDone, required="staff.resolve.photo_required"):
        return None
    return [*add_photos(ctx, incoming, MAX_PHOTOS), ask_resolve_photos(ctx)]


def ask_resolve_comment(ctx: Ctx) -> Reply:
    return ctx.reply(
        "staff.resolve.comment_ask",
        buttons=(((ctx.t("staff.resolve.no_comment"), ResolveNoComment().data),), cancel_row(ctx)),
    )


def take_resolve_comment(ctx: Ctx, incoming: Incoming) -> None:
    if incoming.button is not None:
        if not isinstance(parse(incoming.button), ResolveNoComment):
            raise Retry("button.stale")
        ctx.slots["comment"] = ""
        return
    take_comment(ctx, incoming)
    ctx.slots["comment"] = ctx.slots.pop("text")


def finish_resolve(ctx: Ctx) -> list[Reply]:
    photos = tuple(ctx.slots.get("photos", ()))
    done = finish(ctx, Action.RESOLVE, comment=ctx.slots.get("comment", ""), photos=photos)
    return [ctx.reply("staff.resolve.done", number=done.number)]


RESOLVE = Dialog(
    "st_resolve",
    (
        Step("photos_done", ask_resolve_photos, frozenset({"photos", "button"}), take_resolve_photos,
             "staff.resolve.photo_required", buttons=(ResolvePhotosDone, ResolveNoComment)),
        Step("comment", ask_resolve_comment, frozenset({"text", "button"}), take_resolve_comment,
             "staff.resolve.comment_retry", buttons=(ResolvePhotosDone, ResolveNoComment)),
    ),
    resume="staff.resume",
    cancelled="staff.cancelled",
    staff=True,
    finish=finish_resolve,
)  # fmt: skip
"""Completion photos (required) and an optional comment, then the ticket is resolved."""


# --- reject ------------------------------------------------------------------------------------------------
def reasons(ctx: Ctx) -> tuple[str, ...]:
    """A ticket still waiting for the dispatcher cannot be 'not ours': the dispatcher routes it instead."""
    return tuple(r for r in REJECT_REASONS if not (r == "wrong_org" and ctx.slots.get("waiting")))


def ask_reason(ctx: Ctx) -> Reply:
    rows: tuple[tuple[Button, ...], ...] = tuple(
        ((ctx.t(f"staff.reason.{r}"), RejectReason(r).data),) for r in reasons(ctx)
    )
    return ctx.reply("staff.reject.ask", buttons=(*rows, cancel_row(ctx)), number=number_of(ctx))


def take_reason(ctx: Ctx, incoming: Incoming) -> None:
    match parse(incoming.button):
        case RejectReason(reason) if reason in reasons(ctx):
            ctx.slots["reason"] = reason
        case _:
            raise Retry("button.stale")


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
        return [ctx.reply("staff.reject.returned", number=done.number)]
    data = {"reason": reason}
    if "duplicate_of" in ctx.slots:
        data["duplicate_of"] = str(ctx.slots["duplicate_of"])
    done = finish(ctx, Action.REJECT, dispatch=True, data=data)
    return [ctx.reply("staff.reject.done", number=done.number, reason=ctx.t(f"staff.reason.{reason}"))]


REJECT = Dialog(
    "st_reject",
    (
        Step("reason", ask_reason, frozenset({"button"}), take_reason, "staff.reject.retry",
             buttons=(RejectReason,)),
        Step("duplicate_of", ask_duplicate, frozenset({"text"}), take_duplicate,
             "staff.reject.duplicate_retry", applies=is_duplicate),
    ),
    resume="staff.resume",
    cancelled="staff.cancelled",
    staff=True,
    finish=finish_reject,
)  # fmt: skip
"""A reason from the catalogue (and the original's number for a duplicate); *wrong organisation* returns the
ticket to the dispatcher."""


ACTIONS = {
    StaffQueue: lambda ctx, _pressed: queue(ctx),
    StaffOpen: lambda ctx, pressed: open_card(ctx, pressed.number),
    StaffTake: lambda ctx, pressed: take(ctx, pressed.number),
    StaffComment: lambda ctx, pressed: start(ctx, pressed.number, COMMENT, Action.COMMENT),
    StaffResolve: lambda ctx, pressed: start(ctx, pressed.number, RESOLVE, Action.RESOLVE),
    StaffReject: lambda ctx, pressed: start_reject(ctx, pressed.number),
}
"""The buttons of staff ticket cards (`st:take:12`): they carry everything they act on, so an old card still
works — or is refused politely."""

COMMANDS = {
    "staff": lambda ctx, args: join(ctx, args),
    "queue": lambda ctx, _args: queue(ctx),
    "ticket": lambda ctx, args: show_ticket(ctx, args),
}
"""Staff commands: `/staff CODE`, `/queue`, `/ticket N`."""
