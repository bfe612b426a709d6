"""Turning a finished draft into a ticket: route it, give it a deadline, record its first events."""

from __future__ import annotations

from core.change import Tx
from core.context import Ctx
from core.domain.calendar import deadline as compute_deadline
from core.domain.routing import route
from core.domain.tickets import Action, Status, TicketEvent, next_status
from core.messages import Reply
from core.notify import submitted
from core.ports import NewTicket


def submit_report(ctx: Ctx) -> Reply:
    s = ctx.slots
    m = ctx.municipality
    category_code = s.get("subcategory") or s["category"]
    category = m.category(category_code)
    assert category is not None
    location = s["location"]
    lat, lon = location.get("lat"), location.get("lon")
    organisation = route(m, category_code, lat, lon)
    routed = organisation != m.dispatch
    due = compute_deadline(ctx.now, category.sla_days, m.timezone)
    status = next_status(None, Action.CREATE)
    actor = f"resident:{ctx.chat.key}"
    number = ctx.store.tickets.create(
        NewTicket(
            category=s["category"],
            subcategory=s.get("subcategory"),
            lat=lat,
            lon=lon,
            address=location.get("address", ""),
            location_source=location.get("source", "typed"),
            description=s["description"],
            photos=tuple(s.get("photos", ())),
            author=ctx.chat,
            language=ctx.lang,
            organisation=organisation,
            status=Status.ASSIGNED if routed else status,
            created_at=ctx.now,
            deadline=due,
        )
    )
    ctx.store.tickets.add_event(number, TicketEvent(Action.CREATE, ctx.now, actor, None, status))
    if routed:
        assigned = next_status(status, Action.ASSIGN)
        ctx.store.tickets.add_event(
            number,
            TicketEvent(
                Action.ASSIGN, ctx.now, "router", status, assigned, data={"organisation": organisation}
            ),
        )
    submitted(Tx(ctx.store, m, ctx.now), number, organisation)  # staff (or dispatchers) get the card
    ctx.state.pop("flow", None)
    ctx.state.pop("slots", None)
    org = m.organisation(organisation)
    return ctx.reply(
        "report.submitted",
        number=number,
        organisation=org.name(ctx.lang) if org else organisation,
        deadline=ctx.local(due),
    )
