"""The resident's verdict on a resolved ticket: a rating 1–5 (once; closes the ticket), or *Not fixed* — a
reason and optional photos — which reopens it to the same organisation within 14 days of the resolution,
also after it closed unrated. Late or repeated verdicts are answered politely.
"""

from __future__ import annotations

from core import lifecycle
from core.buttons import NotFixed, Rate, ReopenPhotosDone
from core.change import Tx
from core.context import Ctx, Refusal, Retry
from core.dialogs.dialog import Dialog, begin, cancel_row, number_of
from core.dialogs.photos import add_photos, pressed_done
from core.dialogs.steps import Step
from core.domain.policy import REOPEN_WINDOW
from core.domain.tickets import Action, IllegalTransition, Status, Ticket
from core.labels import local, organisation_name
from core.messages import Button, Incoming, Reply
from core.notify import verdict_buttons
from core.photo_limits import MAX_PHOTOS

REASON_MIN = 5
REASON_MAX = 1000


def actor(ctx: Ctx) -> str:
    return f"resident:{ctx.chat.key}"


def own_ticket(ctx: Ctx, number: int) -> Ticket:
    """The resident's own ticket, locked; refused for anyone else's."""
    ticket = ctx.store.tickets.lock(number)
    if ticket is None or not is_author(ctx, ticket):
        raise Refusal([ctx.reply("verdict.not_yours")])
    return ticket


def rate(ctx: Ctx, number: int, score: int) -> list[Reply]:
    ticket = own_ticket(ctx, number)
    if ticket.rating is not None:
        return [ctx.reply("verdict.already_rated", number=number, rating=ticket.rating)]
    if ticket.status == Status.CLOSED:
        return [ctx.reply("verdict.too_late", number=number)]
    if ticket.status != Status.RESOLVED:
        return [ctx.reply("verdict.not_resolved", number=number)]
    try:
        lifecycle.apply(
            Tx(ctx.store, ctx.municipality, ctx.now), ticket, Action.RATE, actor(ctx), rating=score
        )
    except (IllegalTransition, lifecycle.Changed):
        return [ctx.reply("verdict.not_resolved", number=number)]
    return [ctx.reply("verdict.thanks", number=number, rating=score)]


def reopen_refusal(ctx: Ctx, ticket: Ticket) -> list[Reply] | None:
    """Why this ticket cannot be reopened now, or None when it can."""
    if ticket.rating is not None:
        return [ctx.reply("verdict.rated_no_reopen", number=ticket.number, rating=ticket.rating)]
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        status = ctx.t(f"status.{ticket.status.value}")
        return [ctx.reply("verdict.cannot_reopen", number=ticket.number, status=status)]
    if ticket.resolved_at is None or ctx.now - ticket.resolved_at > REOPEN_WINDOW:
        return [ctx.reply("verdict.reopen_too_late", number=ticket.number, count=REOPEN_WINDOW.days)]
    return None


def is_author(ctx: Ctx, ticket: Ticket) -> bool:
    return (ticket.author_channel, ticket.author_chat_id) == (ctx.chat.channel, ctx.chat.chat_id)


def awaits_verdict(status: Status) -> bool:
    """In a resident's list: the work is done and nobody rated it yet (rating closes the ticket)."""
    return status == Status.RESOLVED


def offer(ctx: Ctx, ticket: Ticket) -> tuple[str, tuple[tuple[Button, ...], ...]]:
    """The verdict buttons again, for a resident who missed them (`/my` → the ticket): *Rate* while the
    ticket is resolved and unrated, *Not fixed* while the reopen window is open; the same buttons as the
    completion notice, checked again when pressed. Returns the hint to show with them, and the buttons."""
    if not is_author(ctx, ticket) or reopen_refusal(ctx, ticket) is not None:
        return "", ()
    if ticket.status == Status.RESOLVED:
        return ctx.t("ticket.verdict_rate"), verdict_buttons(ctx.lang, ticket.number)
    assert ticket.resolved_at is not None  # reopen_refusal checked it
    until = local(ctx.municipality, ticket.resolved_at + REOPEN_WINDOW)
    return ctx.t("ticket.verdict_reopen", until=until), verdict_buttons(ctx.lang, ticket.number, rate=False)


def ensure_reopenable(ctx: Ctx, ticket: Ticket) -> None:
    if (refusal := reopen_refusal(ctx, ticket)) is not None:
        raise Refusal(refusal)


def not_fixed(ctx: Ctx, number: int) -> list[Reply]:
    ensure_reopenable(ctx, own_ticket(ctx, number))
    return begin(ctx, REOPEN, ticket=number)


# --- the reopen dialog: reason, then optional photos -------------------------------------------------------
def ask_reason(ctx: Ctx) -> Reply:
    return ctx.reply("verdict.reopen.ask", buttons=(cancel_row(ctx),), number=number_of(ctx))


def take_reason(ctx: Ctx, incoming: Incoming) -> None:
    text = " ".join((incoming.text or "").split())
    if len(text) < REASON_MIN:
        raise Retry("verdict.reopen.too_short", count=REASON_MIN)
    if len(text) > REASON_MAX:
        raise Retry("verdict.reopen.too_long", count=len(text), max=REASON_MAX)
    ctx.slots["reason"] = text


def ask_photos(ctx: Ctx) -> Reply:
    count = len(ctx.slots.get("photos", ()))
    if count:
        return ctx.reply(
            "verdict.reopen.photos_more" if count < MAX_PHOTOS else "report.photos.full",
            news="",
            buttons=(((ctx.t("report.photos.done"), ReopenPhotosDone().data),), cancel_row(ctx)),
            count=count,
            max=MAX_PHOTOS,
        )
    return ctx.reply(
        "verdict.reopen.photos_ask",
        buttons=(((ctx.t("report.photos.skip"), ReopenPhotosDone().data),), cancel_row(ctx)),
        max=MAX_PHOTOS,
    )


def take_photos(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    if pressed_done(ctx, incoming, ReopenPhotosDone):
        return None
    return [*add_photos(ctx, incoming, MAX_PHOTOS), ask_photos(ctx)]


def finish_reopen(ctx: Ctx) -> list[Reply]:
    number = number_of(ctx)
    ticket = own_ticket(ctx, number)
    ensure_reopenable(ctx, ticket)
    try:
        after = lifecycle.apply(
            Tx(ctx.store, ctx.municipality, ctx.now),
            ticket,
            Action.REOPEN,
            actor(ctx),
            comment=ctx.slots["reason"],
            photos=tuple(ctx.slots.get("photos", ())),
        )
    except (IllegalTransition, lifecycle.Changed):
        return [
            ctx.reply("verdict.cannot_reopen", number=number, status=ctx.t(f"status.{ticket.status.value}"))
        ]
    org = organisation_name(ctx.municipality, ctx.lang, after.organisation)
    return [ctx.reply("verdict.reopened", number=number, organisation=org)]


REOPEN = Dialog(
    "reopen",
    (
        Step("reason", ask_reason, frozenset({"text"}), take_reason, "verdict.reopen.retry"),
        Step("photos_done", ask_photos, frozenset({"photos", "button"}), take_photos,
             "verdict.reopen.photos_retry", buttons=(ReopenPhotosDone,)),
    ),
    resume="verdict.reopen.resume",
    cancelled="verdict.reopen.cancelled",
    finish=finish_reopen,
)  # fmt: skip
"""*Not fixed*: the resident says why (and may show it), and the ticket reopens."""


def _rate(ctx: Ctx, pressed: Rate) -> list[Reply]:
    return rate(ctx, pressed.number, pressed.score)


def _not_fixed(ctx: Ctx, pressed: NotFixed) -> list[Reply]:
    return not_fixed(ctx, pressed.number)


ACTIONS = {Rate: _rate, NotFixed: _not_fixed}
"""The verdict buttons of a completion notice (and of the ticket in *My reports*)."""
