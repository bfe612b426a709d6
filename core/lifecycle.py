"""Applying a lifecycle change in one place: the transition table, the ticket row, the event, the outbox.

Every change made by staff, dispatchers, residents or timers goes through `apply`, inside the caller's
transaction, on a ticket read with `Store.lock_ticket`: the status moves only as `next_status` allows, the
row is updated only if nobody changed it meanwhile, one event records who did what, and `core.notify` queues
what the others are told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from core import notify
from core.change import Tx
from core.domain.tickets import Action, Ticket, TicketEvent, next_status
from core.ports import StaffMember

__all__ = ["Changed", "Tx", "apply"]


class Changed(Exception):
    """The ticket moved on between reading and writing it (a concurrent change won)."""


def apply(
    tx: Tx,
    ticket: Ticket,
    action: Action,
    actor: str,
    *,
    by: StaffMember | None = None,
    comment: str = "",
    photos: Sequence[str] = (),
    data: dict[str, str] | None = None,
    organisation: str | None = None,
    rating: int | None = None,
    place: Mapping[str, Any] | None = None,
) -> Ticket:
    """Make the change and return the ticket as it is now. IllegalTransition when the table forbids it,
    Changed when the row was changed by someone else since `ticket` was read."""
    to = next_status(ticket.status, action)
    changes: dict[str, Any] = {"status": to, "updated_at": tx.now}
    event_data = dict(data or {})
    after = replace(ticket, status=to)
    match action:
        case Action.TAKE:
            assert by is not None
            changes["taken_by"] = after.taken_by = by.id
        case Action.RESOLVE:
            changes["resolved_at"] = after.resolved_at = tx.now
            if ticket.taken_by is None and by is not None:
                changes["taken_by"] = after.taken_by = by.id
        case Action.ASSIGN | Action.REROUTE:
            assert organisation is not None
            event_data.update({"organisation": organisation, "from": ticket.organisation or ""})
            changes["organisation"] = after.organisation = organisation
            changes["taken_by"] = after.taken_by = None
        case Action.RETURN:
            event_data["from"] = ticket.organisation or ""
            changes["organisation"] = after.organisation = tx.municipality.dispatch
            changes["taken_by"] = after.taken_by = None
        case Action.REOPEN:
            changes["taken_by"] = after.taken_by = None
        case Action.RATE:
            assert rating is not None
            event_data["rating"] = str(rating)
            changes["rating"] = after.rating = rating
        case Action.OVERDUE:
            changes["overdue_notified"] = after.overdue_notified = True
        case Action.PLACE:  # {"lat", "lon", "address", "source"}, as the place step settles it
            assert place is not None
            event_data.update(_place_change(ticket, place))
            changes["lat"] = after.lat = place.get("lat")
            changes["lon"] = after.lon = place.get("lon")
            changes["address"] = after.address = str(place.get("address") or "")
            changes["location_source"] = after.location_source = str(place.get("source") or "typed")
    if by is not None and by.name:
        event_data.setdefault("name", by.name)
    if not tx.store.tickets.update(ticket.number, ticket.status, changes):
        raise Changed(ticket.number)
    event = TicketEvent(action, tx.now, actor, ticket.status, to, comment, tuple(photos), event_data)
    tx.store.tickets.add_event(ticket.number, event)
    if action == Action.RESOLVE and photos:
        tx.store.tickets.add_photos(ticket.number, photos, "resolution")
        after.resolution_photos = (*ticket.resolution_photos, *photos)
    if action == Action.REOPEN and photos:
        tx.store.tickets.add_photos(ticket.number, photos, "reopen")
    after.events = [*ticket.events, event]
    notify.announce(tx, ticket, after, event, by)
    return after


def _place_change(ticket: Ticket, place: Mapping[str, Any]) -> dict[str, str]:
    """The event's record of a new place: what it was and what it is now (event data holds strings)."""

    def coordinate(value: object) -> str:
        return "" if value is None else f"{float(value):.6f}"  # type: ignore[arg-type]

    return {
        "lat": coordinate(place.get("lat")),
        "lon": coordinate(place.get("lon")),
        "address": str(place.get("address") or ""),
        "from_lat": coordinate(ticket.lat),
        "from_lon": coordinate(ticket.lon),
        "from_address": ticket.address,
    }
