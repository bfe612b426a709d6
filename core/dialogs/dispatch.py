"""The dispatcher: routes tickets nobody's area covers, and tickets staff returned as *wrong organisation*,
to an organisation chosen from a button list; may re-route any waiting ticket. Every move is an event
(`assign` from the queue, `reroute` otherwise), so the history shows who sent it where.

*Set place* (issue 10): a ticket whose typed address could not be checked has no point, so nothing routes
it. The dispatcher sends a pin or types an address — the resident's place step (core/dialogs/place.py, with
the geocoder as for residents, but a point required) —, confirms, and the new place is a `place` event in
the ticket's history; then the routing list follows, the organisation routing finds for the new point first.
"""

from __future__ import annotations

from core import lifecycle
from core.context import Ctx, Retry
from core.dialogs import place
from core.dialogs.form import Step
from core.dialogs.report import describe_place
from core.dialogs.staff import authorise, changed, stale, tx
from core.dialogs.tasks import begin, cancel_row, number_of, task
from core.domain.tickets import Action, IllegalTransition, Status, Ticket
from core.messages import Button, Incoming, Location, Reply
from core.municipality import Organisation
from core.notify import WAITING, organisation_name, place_label
from core.parsing import parse_id
from core.ports import StaffMember


def button(ctx: Ctx, data: str) -> list[Reply]:
    parts = data.split(":")
    number = parse_id(parts[2]) if len(parts) >= 3 else None
    if number is not None and len(parts) == 3 and parts[1] == "place":
        return start_place(ctx, number)
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
    return [routing_list(ctx, allowed[1])]


def suggestion(ctx: Ctx, ticket: Ticket) -> str | None:
    """The organisation routing finds for the ticket's category and point, unless that is the dispatcher
    or where the ticket already is."""
    code = ctx.municipality.route(ticket.subcategory or ticket.category, ticket.lat, ticket.lon)
    return None if code in (ctx.municipality.dispatch, ticket.organisation) else code


def routing_list(ctx: Ctx, ticket: Ticket) -> Reply:
    """Organisations to route to (the suggested one first, marked), and *Set place*."""
    number = ticket.number
    suggested = suggestion(ctx, ticket)
    orgs = sorted(candidates(ctx, ticket), key=lambda o: o.code != suggested)
    mark = ctx.t("dispatch.suggested_mark")
    rows: list[tuple[Button, ...]] = [
        (((mark if o.code == suggested else "") + o.name(ctx.lang), f"dp:to:{number}:{o.code}"),)
        for o in orgs
    ]
    rows.append(((ctx.t("dispatch.button.place"), f"dp:place:{number}"),))
    if suggested is None:
        return ctx.reply("dispatch.route_ask", buttons=tuple(rows), number=number)
    name = organisation_name(ctx.municipality, ctx.lang, suggested)
    return ctx.reply("dispatch.route_suggested", buttons=tuple(rows), number=number, organisation=name)


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


# --- set place ---------------------------------------------------------------------------------------------
def start_place(ctx: Ctx, number: int) -> list[Reply]:
    allowed = _dispatcher_and_ticket(ctx, number)
    if isinstance(allowed, list):
        return allowed
    return begin(ctx, "dp_place", PLACE_STEPS, ticket=number, need_point=True)


def ask_place(ctx: Ctx) -> Reply:
    if ctx.slots.get("place"):  # a pin or an address is being checked: the place step's own questions
        return place.ask(ctx)
    ticket = ctx.store.tickets.get(number_of(ctx), with_events=False)
    now = place_label(ctx.lang, ticket) if ticket is not None else "—"
    return Reply(
        text=ctx.t("dispatch.place.ask", number=number_of(ctx), place=now),
        ask_location=True,
        buttons=(cancel_row(ctx),),
    )


def ask_confirm(ctx: Ctx) -> Reply:
    location = ctx.slots["location"]
    point = (location.get("lat"), location.get("lon"))
    return Reply(
        text=ctx.t("dispatch.place.confirm", number=number_of(ctx), place=describe_place(ctx, location)),
        location=Location(*point) if None not in point else None,
        buttons=(
            ((ctx.t("dispatch.place.save"), "dpp:save"), (ctx.t("dispatch.place.again"), "dpp:again")),
            cancel_row(ctx),
        ),
    )


def take_confirm(ctx: Ctx, incoming: Incoming) -> None:
    match incoming.button:
        case "dpp:save":
            ctx.slots["confirmed"] = True
        case "dpp:again":
            ctx.slots.pop("location", None)
            ctx.slots.pop("place", None)
        case _:
            raise Retry("button.stale")


def finish_place(ctx: Ctx) -> list[Reply]:
    number = number_of(ctx)
    allowed = _dispatcher_and_ticket(ctx, number)  # checked again: the ticket may have moved on meanwhile
    if isinstance(allowed, list):
        return allowed
    me, ticket = allowed
    location = ctx.slots["location"]
    shown = location.get("address") or f"{location['lat']:.5f}, {location['lon']:.5f}"  # in any language
    try:
        after = lifecycle.apply(tx(ctx), ticket, Action.PLACE, me.actor, by=me, comment=shown, place=location)
    except (IllegalTransition, lifecycle.Changed):
        return changed(ctx, number)
    saved = ctx.reply("dispatch.place.saved", number=number, place=describe_place(ctx, location))
    return [saved, routing_list(ctx, after)]


PLACE_STEPS = task(
    [
        Step("location", ask_place, frozenset({"location", "text", "button", "geocoded"}), place.take,
             "dispatch.place.retry", button_prefix=place.PREFIX),
        Step("confirmed", ask_confirm, frozenset({"button"}), take_confirm, "dispatch.place.confirm_retry",
             button_prefix="dpp:"),
    ],
    finish_place,
)  # fmt: skip
