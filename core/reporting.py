"""Turning a finished report into a ticket: route it, give it a deadline, record its first events, tell
staff. One function, `file_ticket`, whatever the door: the bot's review step and Open311's POST call it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from core.change import Tx
from core.context import Ctx
from core.domain.calendar import deadline as compute_deadline
from core.domain.routing import route
from core.domain.tickets import Action, Report, Status, TicketEvent, next_status
from core.messages import Reply
from core.notify import submitted
from core.ports import NewTicket


@dataclass(frozen=True, slots=True)
class Filed:
    number: int
    organisation: str
    deadline: datetime


def file_ticket(tx: Tx, report: Report) -> Filed:
    """Create the ticket routed to its organisation (or the dispatcher) with its deadline and its first
    events, and queue the staff card, all in the caller's transaction."""
    m = tx.municipality
    category_code = report.subcategory or report.category
    category = m.category(category_code)
    assert category is not None
    organisation = route(m, category_code, report.lat, report.lon)
    routed = organisation != m.dispatch
    due = compute_deadline(tx.now, category.sla_days, m.timezone)
    status = next_status(None, Action.CREATE)
    number = tx.store.tickets.create(
        NewTicket(
            **{part.name: getattr(report, part.name) for part in fields(Report)},
            organisation=organisation,
            status=Status.ASSIGNED if routed else status,
            created_at=tx.now,
            deadline=due,
        )
    )
    actor = f"resident:{report.author.key}"
    tx.store.tickets.add_event(number, TicketEvent(Action.CREATE, tx.now, actor, None, status))
    if routed:
        assigned = next_status(status, Action.ASSIGN)
        tx.store.tickets.add_event(
            number,
            TicketEvent(
                Action.ASSIGN, tx.now, "router", status, assigned, data={"organisation": organisation}
            ),
        )
    submitted(tx, number, organisation)  # staff (or dispatchers) get the card
    return Filed(number, organisation, due)


def submit_report(ctx: Ctx) -> Reply:
    s = ctx.slots
    m = ctx.municipality
    location = s["location"]
    filed = file_ticket(
        Tx(ctx.store, m, ctx.now),
        Report(
            category=s["category"],
            subcategory=s.get("subcategory"),
            lat=location.get("lat"),
            lon=location.get("lon"),
            address=location.get("address", ""),
            location_source=location.get("source", "typed"),
            description=s["description"],
            photos=tuple(s.get("photos", ())),
            author=ctx.chat,
            language=ctx.lang,
        ),
    )
    ctx.state.pop("flow", None)
    ctx.state.pop("slots", None)
    org = m.organisation(filed.organisation)
    return ctx.reply(
        "report.submitted",
        number=filed.number,
        organisation=org.name(ctx.lang) if org else filed.organisation,
        deadline=ctx.local(filed.deadline),
    )
