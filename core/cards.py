"""Ticket cards for staff and dispatchers: the ticket's facts, its photos and pin, and the buttons that apply
to the member reading it, in the language they use with the bot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.buttons import RouteChoices, SetPlace, StaffComment, StaffReject, StaffResolve, StaffTake
from core.change import Tx
from core.domain.policy import WAITING, is_overdue
from core.domain.tickets import Status, Ticket
from core.labels import category_label, local_date, organisation_name, place_label, status_label
from core.messages import Button, Location, Photo, Reply
from core.municipality import Municipality
from core.ports import StaffMember
from core.texts import t


def staff_extra(member: StaffMember) -> dict[str, str]:
    """Outbox `extra` of a message to a staff member: its language, and whom it is for as staff — so that
    `otklik staff remove` can drop what is still waiting for them (storage: `remove_staff`)."""
    return {"lang": member.language, "staff": str(member.id)}


def card_text(
    m: Municipality, now: datetime, lang: str, ticket: Ticket, headline: str, taken_by: str = ""
) -> str:
    text = _card_text(m, now, lang, ticket, headline, taken_by)
    # "" : the resident asked to be forgotten (or retention anonymised the ticket): staff should know why
    # nobody answers a question or rates the work.
    return text if ticket.author_channel else f"{text}\n{t(lang, 'privacy.resident_left')}"


def _card_text(
    m: Municipality, now: datetime, lang: str, ticket: Ticket, headline: str, taken_by: str = ""
) -> str:
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
        overdue=t(lang, "staff.card.overdue") if is_overdue(ticket, now) else "",
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
            (
                (t(lang, "staff.button.take"), StaffTake(n).data),
                (t(lang, "staff.button.reject"), StaffReject(n).data),
            )
        )
        rows.append(((t(lang, "staff.button.comment"), StaffComment(n).data),))
    elif own and ticket.status == Status.IN_PROGRESS:
        rows.append(
            (
                (t(lang, "staff.button.resolve"), StaffResolve(n).data),
                (t(lang, "staff.button.reject"), StaffReject(n).data),
            )
        )
        rows.append(((t(lang, "staff.button.comment"), StaffComment(n).data),))
    if member.is_dispatcher and ticket.status == Status.NEW:
        rows.append(
            (
                (t(lang, "dispatch.button.route"), RouteChoices(n).data),
                (t(lang, "staff.button.reject"), StaffReject(n).data),
            )
        )
    elif member.is_dispatcher and ticket.status in WAITING:
        rows.append(((t(lang, "dispatch.button.reroute"), RouteChoices(n).data),))
    if member.is_dispatcher and ticket.status in WAITING:  # the dispatcher places it
        rows.append(((t(lang, "dispatch.button.place"), SetPlace(n).data),))
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
    """A ticket card for a staff member, with the name of whoever holds the ticket read from the store."""
    taken = ""
    if ticket.taken_by is not None:
        holder = tx.store.staff.by_id(ticket.taken_by)
        taken = holder.name if holder is not None else ""
    lang = member.language
    return card(
        tx.municipality,
        tx.now,
        member,
        ticket,
        t(lang, headline_key, **headline),
        taken,
        media=media,
        photos=photos,
    )


def card(
    municipality: Municipality,
    now: datetime,
    member: StaffMember,
    ticket: Ticket,
    headline: str,
    taken_by: str = "",
    *,
    media: bool = True,
    photos: Sequence[str] | None = None,
) -> Reply:
    """A ticket card for a staff member, with the resident's photos and pin and the buttons that apply.
    Pure: everything it shows is given."""
    lang = member.language
    shown = tuple(ticket.photos if photos is None else photos)
    return Reply(
        text=card_text(municipality, now, lang, ticket, headline, taken_by),
        buttons=card_buttons(lang, ticket, member),
        photos=tuple(Photo(sha) for sha in shown) if media else (),
        location=(
            Location(ticket.lat, ticket.lon)
            if media and ticket.lat is not None and ticket.lon is not None
            else None
        ),
        chat=member.chat,
        language=lang,
        extra=staff_extra(member),
    )
