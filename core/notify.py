"""What people other than the sender are told, in their own language, as outbox rows (DESIGN.md §6).

`NOTICES` is the table: for each lifecycle action, who hears (the ticket's author and supporters, the staff
of its organisation, the dispatchers, the staff member who resolved it), which text, which photos and which
buttons. `announce` first resolves the recipients — the only store reads — and then formats each message
with pure functions, handing the `Reply` objects to `Store.enqueue` inside the caller's transaction.
Residents read the ticket's language; staff and dispatchers the language they use with the bot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.buttons import NotFixed, Rate, StaffOpen
from core.cards import card, staff_extra
from core.change import Tx
from core.domain.policy import AUTOCLOSE_AFTER, REOPEN_WINDOW
from core.domain.tickets import Action, Ticket, TicketEvent
from core.labels import category_label, local_date, organisation_name, place_label, reason_text
from core.messages import Button, ChatRef, Photo, Reply
from core.municipality import Municipality
from core.ports import StaffMember
from core.texts import t

__all__ = ["NOTICES", "Tx", "announce", "resident_recipients", "submitted", "verdict_buttons"]

Audience = Literal["residents", "organisation", "dispatchers", "organisation_and_dispatchers", "resolver"]
Rows = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class Change:
    """Everything formatting needs, read before any text is written."""

    municipality: Municipality
    before: Ticket
    ticket: Ticket
    event: TicketEvent | None
    now: datetime
    taken_by: str = ""
    """Name of the staff member holding the ticket, for cards ("" when nobody has it)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    chat: ChatRef
    language: str
    author: bool = False
    member: StaffMember | None = None


def _none(change: Change, lang: str) -> Mapping[str, object]:
    return {}


@dataclass(frozen=True, slots=True)
class Notice:
    """One row of the table. Residents get `key` (supporters `supporter_key` when set); staff get a ticket
    card headed by `key` when `card`, else a message. `params` fill the text (or the card's headline)."""

    to: Audience
    key: str
    supporter_key: str = ""
    card: bool = False
    params: Callable[[Change, str], Mapping[str, object]] = _none
    photos: Callable[[Change], tuple[str, ...] | None] = lambda change: ()
    buttons: Callable[[Change, Recipient], Rows] = lambda change, to: ()
    extra: dict[str, str] = field(default_factory=dict)


def verdict_buttons(lang: str, number: int, *, rate: bool = True) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if rate:
        rows.append(tuple((str(score), Rate(number, score).data) for score in range(1, 6)))
    rows.append(((t(lang, "verdict.button.not_fixed"), NotFixed(number).data),))
    return tuple(rows)


def _resident_params(change: Change, lang: str) -> dict[str, object]:
    ticket, m = change.ticket, change.municipality
    return {
        "number": ticket.number,
        "organisation": organisation_name(m, lang, ticket.organisation),
        "deadline": local_date(m, lang, ticket.deadline),
    }


def _comment(change: Change, lang: str) -> Mapping[str, object]:
    return {**_resident_params(change, lang), "comment": change.event.comment if change.event else ""}


def _resolved(change: Change, lang: str) -> Mapping[str, object]:
    comment = change.event.comment if change.event else ""
    return {
        **_resident_params(change, lang),
        "comment": t(lang, "notify.resolved_comment", comment=comment) if comment else "",
    }


def _rejected(change: Change, lang: str) -> Mapping[str, object]:
    return {
        "number": change.ticket.number,
        "reason": reason_text(lang, change.event.data if change.event else {}),
    }


def _closed(change: Change, lang: str) -> Mapping[str, object]:
    until = (change.ticket.resolved_at or change.now) + REOPEN_WINDOW
    return {
        "number": change.ticket.number,
        "count": AUTOCLOSE_AFTER.days,
        "until": local_date(change.municipality, lang, until),
    }


def _returned(change: Change, lang: str) -> Mapping[str, object]:
    return {"organisation": organisation_name(change.municipality, lang, change.before.organisation)}


def _reopened(change: Change, lang: str) -> Mapping[str, object]:
    return {"reason": change.event.comment if change.event else ""}


def _rated(change: Change, lang: str) -> Mapping[str, object]:
    return {
        "number": change.ticket.number,
        "rating": change.event.data.get("rating", "") if change.event else "",
    }


def _overdue(change: Change, lang: str) -> Mapping[str, object]:
    ticket, m = change.ticket, change.municipality
    return {
        "number": ticket.number,
        "deadline": local_date(m, lang, ticket.deadline),
        "category": category_label(m, lang, ticket),
        "place": place_label(lang, ticket),
        "organisation": organisation_name(m, lang, ticket.organisation),
    }


def _author_rates(change: Change, to: Recipient) -> Rows:
    return verdict_buttons(to.language, change.ticket.number) if to.author else ()


def _author_reopens(change: Change, to: Recipient) -> Rows:
    return verdict_buttons(to.language, change.ticket.number, rate=False) if to.author else ()


def _open_button(change: Change, to: Recipient) -> Rows:
    return ((((t(to.language, "staff.button.open")), StaffOpen(change.ticket.number).data),),)


NEW_CARD = Notice("organisation", "staff.headline.new", card=True)

NOTICES: dict[Action, tuple[Notice, ...]] = {
    Action.CREATE: (NEW_CARD,),
    Action.ASSIGN: (Notice("residents", "notify.assigned", params=_resident_params), NEW_CARD),
    Action.REROUTE: (Notice("residents", "notify.rerouted", params=_resident_params), NEW_CARD),
    Action.RETURN: (
        Notice("residents", "notify.returned", params=_resident_params),
        Notice("dispatchers", "staff.headline.returned", card=True, params=_returned),
    ),
    Action.TAKE: (Notice("residents", "notify.taken", params=_resident_params),),
    Action.COMMENT: (Notice("residents", "notify.comment", params=_comment),),
    Action.RESOLVE: (
        Notice(
            "residents",
            "notify.resolved",
            "notify.supporter.resolved",
            params=_resolved,
            photos=lambda change: change.event.photos if change.event else (),
            buttons=_author_rates,  # the author rates
        ),
    ),
    Action.REJECT: (Notice("residents", "notify.rejected", params=_rejected),),
    Action.REOPEN: (
        Notice(
            "organisation",
            "staff.headline.reopened",
            card=True,
            params=_reopened,
            photos=lambda change: (change.event.photos if change.event else ()) or change.ticket.photos,
        ),
    ),
    Action.RATE: (Notice("resolver", "notify.rated", params=_rated),),
    Action.CLOSE: (
        Notice(
            "residents",
            "notify.auto_closed",
            "notify.supporter.closed",
            params=_closed,
            buttons=_author_reopens,
        ),
    ),
    Action.OVERDUE: (
        Notice("organisation_and_dispatchers", "notify.overdue", params=_overdue, buttons=_open_button),
    ),
}
"""action → who hears what. Actions absent here (place) tell nobody."""


# --- recipients (the store reads) ---------------------------------------------------------------------------
NO_INBOX_CHANNELS = frozenset({"open311"})
"""Doors whose authors have no chat to tell: a partner system filing through Open311 follows its tickets with
`requests` and `servicerequestupdates` instead (a message queued for it would never leave the outbox)."""


def resident_recipients(ticket: Ticket) -> list[tuple[ChatRef, str]]:
    """Who hears about a ticket's progress, and in which language: its author, then its supporters — those
    who joined it as the same problem ("me too") — each in the language they reported in."""
    # No one to tell: a partner system (Open311 reads its own updates) or a resident who left ("").
    left_or_partner = not ticket.author_channel or ticket.author_channel in NO_INBOX_CHANNELS
    author = [] if left_or_partner else [(ticket.author, ticket.language)]
    return [*author, *ticket.supporter_chats]


def _others(members: Iterable[StaffMember], actor: StaffMember | None) -> list[StaffMember]:
    seen: set[int] = set()
    out: list[StaffMember] = []
    for member in members:
        if member.id in seen or (actor is not None and member.chat == actor.chat):
            continue
        seen.add(member.id)
        out.append(member)
    return out


def dispatchers(tx: Tx, actor: StaffMember | None = None) -> list[StaffMember]:
    return _others(tx.store.staff.dispatchers(), actor)


def organisation_staff(
    tx: Tx, organisation: str | None, actor: StaffMember | None = None
) -> list[StaffMember]:
    if organisation is None:
        return []
    if organisation == tx.municipality.dispatch:
        return dispatchers(tx, actor)
    return _others(tx.store.staff.of(organisation), actor)


def last_resolver(tx: Tx, ticket: Ticket) -> StaffMember | None:
    for event in reversed(ticket.events):
        if event.action == Action.RESOLVE and event.actor.startswith("staff:"):
            return tx.store.staff.by_id(int(event.actor.removeprefix("staff:")))
    return None


def recipients(
    tx: Tx, notice: Notice, before: Ticket, after: Ticket, actor: StaffMember | None
) -> list[Recipient]:
    members: list[StaffMember]
    match notice.to:
        case "residents":
            return [
                Recipient(chat, lang, author=chat == after.author)
                for chat, lang in resident_recipients(after)
            ]
        case "organisation":
            members = organisation_staff(tx, after.organisation, actor)
        case "dispatchers":
            members = dispatchers(tx, actor)
        case "organisation_and_dispatchers":
            members = _others([*organisation_staff(tx, after.organisation), *dispatchers(tx)], None)
        case "resolver":
            resolver = last_resolver(tx, before)
            members = [resolver] if resolver is not None else []
    return [Recipient(m.chat, m.language, member=m) for m in members]


# --- formatting (pure) ------------------------------------------------------------------------------------
def message(notice: Notice, change: Change, to: Recipient) -> Reply:
    """One recipient's message: a pure function of the table row, the change and the recipient."""
    lang = to.language
    if notice.card and to.member is not None:
        return card(
            change.municipality,
            change.now,
            to.member,
            change.ticket,
            t(lang, notice.key, **notice.params(change, lang)),
            change.taken_by,
            photos=notice.photos(change) or None,
        )
    key = notice.supporter_key if notice.supporter_key and not to.author and to.member is None else notice.key
    return Reply(
        text=t(lang, key, **notice.params(change, lang)),
        photos=tuple(Photo(sha) for sha in notice.photos(change) or ()),
        buttons=notice.buttons(change, to),
        chat=to.chat,
        language=lang,
        extra=staff_extra(to.member) if to.member is not None else {},
    )


# --- what each change tells whom ---------------------------------------------------------------------------
def _tell(
    tx: Tx,
    action: Action,
    before: Ticket,
    after: Ticket,
    event: TicketEvent | None,
    actor: StaffMember | None,
) -> None:
    notices = NOTICES.get(action, ())
    addressed = [(notice, recipients(tx, notice, before, after, actor)) for notice in notices]
    taken = ""
    if after.taken_by is not None and any(n.card and to for n, to in addressed):
        holder = tx.store.staff.by_id(after.taken_by)
        taken = holder.name if holder is not None else ""
    change = Change(tx.municipality, before, after, event, tx.now, taken)
    messages = [message(notice, change, to) for notice, people in addressed for to in people]
    tx.store.outbox.enqueue_many(messages, tx.now)


def submitted(tx: Tx, number: int, organisation: str | None) -> None:
    """A ticket was just submitted: its organisation's staff, or the dispatchers, get the card."""
    if not organisation_staff(tx, organisation):
        return
    ticket = tx.store.tickets.get(number, with_events=False)
    if ticket is not None:
        _tell(tx, Action.CREATE, ticket, ticket, None, None)


def announce(tx: Tx, before: Ticket, after: Ticket, event: TicketEvent, actor: StaffMember | None) -> None:
    """Everything a lifecycle change tells people other than the one who made it."""
    _tell(tx, event.action, before, after, event, actor)
