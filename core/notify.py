"""What people other than the sender are told, in their own language, as outbox rows (DESIGN.md §6).

Residents hear about every status change of their ticket in the ticket's language; staff and dispatchers get
ticket cards with action buttons in the language they use with the bot. Everything here only builds `Reply`
objects and hands them to `Store.enqueue` inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.domain.tickets import Action, Status, Ticket, TicketEvent
from core.messages import Button, ChatRef, Location, Photo, Reply
from core.municipality import Municipality
from core.ports import StaffMember, UnitOfWork
from core.texts import date, t

WAITING = frozenset({Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.REOPENED})
REOPEN_WINDOW = timedelta(days=14)
AUTOCLOSE_AFTER = timedelta(days=7)
REJECT_REASONS = ("wrong_org", "duplicate", "not_municipal", "spam")


@dataclass(frozen=True, slots=True)
class Tx:
    """What a change needs besides the ticket: the open transaction, the city and the time."""

    store: UnitOfWork
    municipality: Municipality
    now: datetime


# --- formatting shared with the staff dialogs --------------------------------------------------------------
def local(municipality: Municipality, moment: datetime | None, fmt: str = "%d.%m.%Y") -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(municipality.timezone)).strftime(fmt)


def local_date(municipality: Municipality, lang: str, moment: datetime | None, kind: str = "date") -> str:
    """A moment in the city's time zone, written the reader's way (04.12.2026 / 4 Dec 2026)."""
    if moment is None:
        return "—"
    return date(lang, moment.astimezone(ZoneInfo(municipality.timezone)), kind)


def category_label(municipality: Municipality, lang: str, ticket: Ticket) -> str:
    parts = [municipality.category(code) for code in (ticket.category, ticket.subcategory) if code]
    return " → ".join(c.name(lang) for c in parts if c is not None)


def place_label(lang: str, ticket: Ticket) -> str:
    if ticket.address:
        return ticket.address
    if ticket.lat is not None and ticket.lon is not None:
        return t(lang, "report.review.point", lat=f"{ticket.lat:.5f}", lon=f"{ticket.lon:.5f}")
    return "—"


def organisation_name(municipality: Municipality, lang: str, code: str | None) -> str:
    org = municipality.organisation(code)
    return org.name(lang) if org is not None else (code or "—")


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    return ticket.status in WAITING and ticket.deadline is not None and ticket.deadline < now


def status_label(lang: str, status: Status) -> str:
    return t(lang, f"status.{status.value}")


# --- staff cards -------------------------------------------------------------------------------------------
def staff_extra(member: StaffMember) -> dict[str, str]:
    """Outbox `extra` of a message to a staff member: its language, and whom it is for as staff — so that
    `otklik staff remove` can drop what is still waiting for them (storage: `remove_staff`)."""
    return {"lang": member.language, "staff": str(member.id)}


def card_text(tx: Tx, lang: str, ticket: Ticket, headline: str, taken_by: str = "") -> str:
    m = tx.municipality
    return t(
        lang,
        "staff.card.text",
        headline=headline,
        number=ticket.number,
        status=status_label(lang, ticket.status),
        category=category_label(m, lang, ticket),
        place=place_label(lang, ticket),
        description=ticket.description,
        deadline=local_date(m, lang, ticket.deadline),
        overdue=t(lang, "staff.card.overdue") if is_overdue(ticket, tx.now) else "",
        organisation=organisation_name(m, lang, ticket.organisation),
        taken=t(lang, "staff.card.taken", name=taken_by) if taken_by else "",
        supporters=t(lang, "staff.card.supporters", count=ticket.supporters) if ticket.supporters else "",
    )


def card_buttons(lang: str, ticket: Ticket, member: StaffMember) -> tuple[tuple[Button, ...], ...]:
    """What this member can do with the ticket now (the handlers check again when pressed)."""
    n = ticket.number
    own = ticket.organisation == member.organisation
    rows: list[tuple[Button, ...]] = []
    if own and ticket.status in (Status.ASSIGNED, Status.REOPENED):
        rows.append(
            ((t(lang, "staff.button.take"), f"st:take:{n}"), (t(lang, "staff.button.reject"), f"st:rej:{n}"))
        )
        rows.append(((t(lang, "staff.button.comment"), f"st:com:{n}"),))
    elif own and ticket.status == Status.IN_PROGRESS:
        rows.append(
            (
                (t(lang, "staff.button.resolve"), f"st:res:{n}"),
                (t(lang, "staff.button.reject"), f"st:rej:{n}"),
            )
        )
        rows.append(((t(lang, "staff.button.comment"), f"st:com:{n}"),))
    if member.is_dispatcher and ticket.status == Status.NEW:
        rows.append(
            (
                (t(lang, "dispatch.button.route"), f"dp:route:{n}"),
                (t(lang, "staff.button.reject"), f"st:rej:{n}"),
            )
        )
    elif member.is_dispatcher and ticket.status in WAITING:
        rows.append(((t(lang, "dispatch.button.reroute"), f"dp:route:{n}"),))
    if member.is_dispatcher and ticket.status in WAITING:  # the dispatcher places it (issue 10)
        rows.append(((t(lang, "dispatch.button.place"), f"dp:place:{n}"),))
    return tuple(rows)


def staff_card(
    tx: Tx,
    member: StaffMember,
    ticket: Ticket,
    headline_key: str,
    *,
    media: bool = True,
    photos: Sequence[str] | None = None,
    **headline: object,
) -> Reply:
    """A ticket card for a staff member, with the resident's photos and pin and the buttons that apply."""
    lang = member.language
    taken = ""
    if ticket.taken_by is not None:
        holder = tx.store.staff.by_id(ticket.taken_by)
        taken = holder.name if holder is not None else ""
    shown = tuple(ticket.photos if photos is None else photos)
    return Reply(
        text=card_text(tx, lang, ticket, t(lang, headline_key, **headline), taken),
        buttons=card_buttons(lang, ticket, member),
        photos=tuple(Photo(sha) for sha in shown) if media else (),
        location=(
            Location(ticket.lat, ticket.lon)
            if media and ticket.lat is not None and ticket.lon is not None
            else None
        ),
        chat=member.chat,
        extra=staff_extra(member),
    )


# --- recipients --------------------------------------------------------------------------------------------
def _others(members: Iterable[StaffMember], actor: StaffMember | None) -> list[StaffMember]:
    seen: set[int] = set()
    out: list[StaffMember] = []
    for member in members:
        if member.id in seen or (actor is not None and member.chat == actor.chat):
            continue
        seen.add(member.id)
        out.append(member)
    return out


def organisation_staff(
    tx: Tx, organisation: str | None, actor: StaffMember | None = None
) -> list[StaffMember]:
    if organisation is None:
        return []
    if organisation == tx.municipality.dispatch:
        return dispatchers(tx, actor)
    return _others(tx.store.staff.of(organisation), actor)


def dispatchers(tx: Tx, actor: StaffMember | None = None) -> list[StaffMember]:
    return _others(tx.store.staff.dispatchers(), actor)


def resident_recipients(ticket: Ticket) -> list[tuple[ChatRef, str]]:
    """Who hears about a ticket's progress, and in which language: its author, then its supporters — those
    who joined it as the same problem ("me too", issue 6) — each in the language they reported in."""
    return [(ticket.author, ticket.language), *ticket.followers]


def resident(tx: Tx, ticket: Ticket, key: str, **params: object) -> None:
    """Tell the ticket's resident(s) something, in the ticket's language."""
    for chat, lang in resident_recipients(ticket):
        text_params = {
            "number": ticket.number,
            "organisation": organisation_name(tx.municipality, lang, ticket.organisation),
            "deadline": local_date(tx.municipality, lang, ticket.deadline),
            **params,
        }
        tx.store.outbox.enqueue(
            Reply(text=t(lang, key, **text_params), chat=chat, extra={"lang": lang}),
            tx.now,
        )


def verdict_buttons(lang: str, number: int, *, rate: bool = True) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if rate:
        rows.append(tuple((str(score), f"vd:rate:{number}:{score}") for score in range(1, 6)))
    rows.append(((t(lang, "verdict.button.not_fixed"), f"vd:nf:{number}"),))
    return tuple(rows)


def reason_text(lang: str, data: dict[str, str]) -> str:
    reason = data.get("reason", "")
    if reason == "duplicate":
        return t(lang, "notify.reason.duplicate", duplicate=data.get("duplicate_of", "?"))
    return t(lang, f"notify.reason.{reason}")


# --- what each change tells whom ---------------------------------------------------------------------------
def submitted(tx: Tx, number: int, organisation: str | None) -> None:
    """A ticket was just submitted: its organisation's staff, or the dispatchers, get the card."""
    members = organisation_staff(tx, organisation)
    ticket = tx.store.tickets.get(number, with_events=False) if members else None
    if ticket is None:
        return
    for member in members:
        tx.store.outbox.enqueue(staff_card(tx, member, ticket, "staff.headline.new"), tx.now)


def announce(tx: Tx, before: Ticket, after: Ticket, event: TicketEvent, actor: StaffMember | None) -> None:
    """Everything a lifecycle change tells people other than the one who made it."""
    m = tx.municipality
    match event.action:
        case Action.ASSIGN | Action.REROUTE:
            resident(tx, after, "notify.assigned" if event.action == Action.ASSIGN else "notify.rerouted")
            for member in organisation_staff(tx, after.organisation, actor):
                tx.store.outbox.enqueue(staff_card(tx, member, after, "staff.headline.new"), tx.now)
        case Action.RETURN:
            resident(tx, after, "notify.returned")
            for member in dispatchers(tx, actor):
                tx.store.outbox.enqueue(
                    staff_card(
                        tx,
                        member,
                        after,
                        "staff.headline.returned",
                        organisation=organisation_name(m, member.language, before.organisation),
                    ),
                    tx.now,
                )
        case Action.TAKE:
            resident(tx, after, "notify.taken")
        case Action.COMMENT:
            resident(tx, after, "notify.comment", comment=event.comment)
        case Action.RESOLVE:
            _resolved(tx, after, event)
        case Action.REJECT:
            for chat, lang in resident_recipients(after):
                tx.store.outbox.enqueue(
                    Reply(
                        text=t(
                            lang, "notify.rejected", number=after.number, reason=reason_text(lang, event.data)
                        ),
                        chat=chat,
                        extra={"lang": lang},
                    ),
                    tx.now,
                )
        case Action.REOPEN:
            for member in organisation_staff(tx, after.organisation, actor):
                tx.store.outbox.enqueue(
                    staff_card(
                        tx,
                        member,
                        after,
                        "staff.headline.reopened",
                        photos=event.photos or after.photos,
                        reason=event.comment,
                    ),
                    tx.now,
                )
        case Action.RATE:
            resolver = last_resolver(tx, before)
            if resolver is not None:
                tx.store.outbox.enqueue(
                    Reply(
                        text=t(
                            resolver.language,
                            "notify.rated",
                            number=after.number,
                            rating=event.data.get("rating", ""),
                        ),
                        chat=resolver.chat,
                        extra=staff_extra(resolver),
                    ),
                    tx.now,
                )
        case Action.CLOSE:
            until = (after.resolved_at or tx.now) + REOPEN_WINDOW
            for chat, lang in resident_recipients(after):
                tx.store.outbox.enqueue(
                    Reply(
                        text=t(
                            lang,
                            "notify.auto_closed" if chat == after.author else "notify.supporter.closed",
                            number=after.number,
                            count=AUTOCLOSE_AFTER.days,
                            until=local_date(m, lang, until),
                        ),
                        buttons=verdict_buttons(lang, after.number, rate=False)
                        if chat == after.author
                        else (),
                        chat=chat,
                        extra={"lang": lang},
                    ),
                    tx.now,
                )
        case Action.OVERDUE:
            members = [*organisation_staff(tx, after.organisation), *dispatchers(tx)]
            for member in _others(members, None):
                lang = member.language
                tx.store.outbox.enqueue(
                    Reply(
                        text=t(
                            lang,
                            "notify.overdue",
                            number=after.number,
                            deadline=local_date(m, lang, after.deadline),
                            category=category_label(m, lang, after),
                            place=place_label(lang, after),
                            organisation=organisation_name(m, lang, after.organisation),
                        ),
                        buttons=((((t(lang, "staff.button.open")), f"st:open:{after.number}"),),),
                        chat=member.chat,
                        extra=staff_extra(member),
                    ),
                    tx.now,
                )
        case _:
            pass


def _resolved(tx: Tx, ticket: Ticket, event: TicketEvent) -> None:
    for chat, lang in resident_recipients(ticket):
        comment = t(lang, "notify.resolved_comment", comment=event.comment) if event.comment else ""
        tx.store.outbox.enqueue(
            Reply(
                text=t(
                    lang,
                    "notify.resolved" if chat == ticket.author else "notify.supporter.resolved",
                    number=ticket.number,
                    organisation=organisation_name(tx.municipality, lang, ticket.organisation),
                    comment=comment,
                ),
                photos=tuple(Photo(sha) for sha in event.photos),
                buttons=verdict_buttons(lang, ticket.number) if chat == ticket.author else (),  # author rates
                chat=chat,
                extra={"lang": lang},
            ),
            tx.now,
        )


def last_resolver(tx: Tx, ticket: Ticket) -> StaffMember | None:
    for event in reversed(ticket.events):
        if event.action == Action.RESOLVE and event.actor.startswith("staff:"):
            return tx.store.staff.by_id(int(event.actor.removeprefix("staff:")))
    return None
