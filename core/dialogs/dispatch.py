"""The dispatcher: routes tickets nobody's area covers, and tickets staff returned as *wrong organisation*,
to an organisation chosen from a button list; may re-route any waiting ticket. Every move is an event
(`assign` from the queue, `reroute` otherwise), so the history shows who sent it where.
"""

from __future__ import annotations

from core import lifecycle
from core.context import Ctx
from core.dialogs.staff import authorise, changed, stale, tx
from core.domain.tickets import Action, IllegalTransition, Status, Ticket
from core.messages import Button, Reply
from core.municipality import Organisation
from core.notify import WAITING, organisation_name
from core.parsing import parse_id
from core.ports import StaffMember


def button(ctx: Ctx, data: str) -> list[Reply]:
    parts = data.split(":")
    number = parse_id(parts[2]) if len(parts) >= 3 else None
    if number is not None and parts[1] == "route":
        return choices(ctx, number)
    if number is not None and len(parts) == 4 and parts[1] == "to":
        return route(ctx, number, parts[3])
    return [ctx.reply("button.stale")]


def _dispatcher_and_ticket(ctx: Ctx, number: int) -> tuple[StaffMember, Ticket] | list[Reply]:
    allowed = authorise(ctx, number, dispatch=True)
    if isinstance(allowed, list):
        return allowed
    me, ticket = allowed
    if not me.is_dispatcher:
        return [ctx.reply("dispatch.only")]
    if ticket.status not in WAITING:
        return stale(ctx, ticket)
    return me, ticket


def _covers(org: Organisation, ticket: Ticket) -> bool:
    return ticket.category in org.categories or (ticket.subcategory or "") in org.categories


def candidates(ctx: Ctx, ticket: Ticket) -> list[Organisation]:
    """Organisations the ticket can go to: those that handle its category first, then the rest."""
    orgs = [
        o for o in ctx.municipality.organisations if o.kind != "dispatch" and o.code != ticket.organisation
    ]
    return sorted(orgs, key=lambda o: not _covers(o, ticket))  # stable: the configuration's order within


def choices(ctx: Ctx, number: int) -> list[Reply]:
    allowed = _dispatcher_and_ticket(ctx, number)
    if isinstance(allowed, list):
        return allowed
    _me, ticket = allowed
    rows: tuple[tuple[Button, ...], ...] = tuple(
        ((o.name(ctx.lang), f"dp:to:{number}:{o.code}"),) for o in candidates(ctx, ticket)
    )
    return [ctx.reply("dispatch.route_ask", buttons=rows, number=number)]


def route(ctx: Ctx, number: int, code: str) -> list[Reply]:
    allowed = _dispatcher_and_ticket(ctx, number)
    if isinstance(allowed, list):
        return allowed
    me, ticket = allowed
    org = ctx.municipality.organisation(code)
    if org is None or org.kind == "dispatch":
        return [ctx.reply("button.stale")]
    if ticket.organisation == code:
        return [ctx.reply("dispatch.same", number=number)]
    action = Action.ASSIGN if ticket.status == Status.NEW else Action.REROUTE
    try:
        lifecycle.apply(tx(ctx), ticket, action, me.actor, by=me, organisation=code)
    except IllegalTransition:
        return stale(ctx, ticket)
    except lifecycle.Changed:
        return changed(ctx, number)
    return [
        ctx.reply(
            "dispatch.routed", number=number, organisation=organisation_name(ctx.municipality, ctx.lang, code)
        )
    ]
