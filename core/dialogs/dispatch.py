"""The dispatcher: routes tickets nobody's area covers, and tickets staff returned as *wrong organisation*,
to an organisation chosen from a button list; may re-route any waiting ticket. Every move is an event
(`assign` from the queue, `reroute` otherwise), so the history shows who sent it where.

*Set place*: a ticket whose typed address could not be checked has no point, so nothing routes
it. The dispatcher sends a pin or types an address — the resident's place step (core/dialogs/place.py, with
the geocoder as for residents, but a point required) —, confirms, and the new place is a `place` event in
the ticket's history; then the routing list follows, the organisation routing finds for the new point first.
"""

from __future__ import annotations

from core import lifecycle
from core.buttons import PlaceAgain, PlaceSave, RouteChoices, RouteTo, SetPlace, parse
from core.context import Ctx, Refusal, Retry
from core.dialogs import place
from core.dialogs.dialog import Dialog, begin, cancel_row, number_of
from core.dialogs.report import describe_place
from core.dialogs.staff import authorise, changed, stale, tx
from core.dialogs.steps import Step
from core.domain import routing
from core.domain.policy import WAITING
from core.domain.tickets import Action, IllegalTransition, Status, Ticket
from core.labels import organisation_name, place_label
from core.messages import Button, Incoming, Location, Reply
from core.municipality import Organisation
from core.ports import StaffMember


def _dispatcher_and_ticket(ctx: Ctx, number: int) -> tuple[StaffMember, Ticket]:
    me, ticket = authorise(ctx, number, dispatch=True)
    if not me.is_dispatcher:
        raise Refusal([ctx.reply("dispatch.only")])
    if ticket.status not in WAITING:
        raise stale(ctx, ticket)
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
    _me, ticket = _dispatcher_and_ticket(ctx, number)
    return [routing_list(ctx, ticket)]


def suggestion(ctx: Ctx, ticket: Ticket) -> str | None:
    """The organisation routing finds for the ticket's category and point, unless that is the dispatcher
    or where the ticket already is."""
    code = routing.route(ctx.municipality, ticket.subcategory or ticket.category, ticket.lat, ticket.lon)
    return None if code in (ctx.municipality.dispatch, ticket.organisation) else code


def routing_list(ctx: Ctx, ticket: Ticket) -> Reply:
    """Organisations to route to (the suggested one first, marked), and *Set place*."""
    number = ticket.number
    suggested = suggestion(ctx, ticket)
    orgs = sorted(candidates(ctx, ticket), key=lambda o: o.code != suggested)
    mark = ctx.t("dispatch.suggested_mark")
    rows: list[tuple[Button, ...]] = [
        (((mark if o.code == suggested else "") + o.name(ctx.lang), RouteTo(number, o.code).data),)
        for o in orgs
    ]
    rows.append(((ctx.t("dispatch.button.place"), SetPlace(number).data),))
    if suggested is None:
        return ctx.reply("dispatch.route_ask", buttons=tuple(rows), number=number)
    name = organisation_name(ctx.municipality, ctx.lang, suggested)
    return ctx.reply("dispatch.route_suggested", buttons=tuple(rows), number=number, organisation=name)


def route(ctx: Ctx, number: int, code: str) -> list[Reply]:
    me, ticket = _dispatcher_and_ticket(ctx, number)
    org = ctx.municipality.organisation(code)
    if org is None or org.kind == "dispatch":
        return [ctx.reply("button.stale")]
    if ticket.organisation == code:
        return [ctx.reply("dispatch.same", number=number)]
    action = Action.ASSIGN if ticket.status == Status.NEW else Action.REROUTE
    try:
        lifecycle.apply(tx(ctx), ticket, action, me.actor, by=me, organisation=code)
    except IllegalTransition:
        raise stale(ctx, ticket) from None
    except lifecycle.Changed:
        raise changed(ctx, number) from None
    return [
        ctx.reply(
            "dispatch.routed", number=number, organisation=organisation_name(ctx.municipality, ctx.lang, code)
        )
    ]


# --- set place ---------------------------------------------------------------------------------------------
def start_place(ctx: Ctx, number: int) -> list[Reply]:
    _dispatcher_and_ticket(ctx, number)
    return begin(ctx, PLACE, ticket=number, need_point=True)


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
            (
                (ctx.t("dispatch.place.save"), PlaceSave().data),
                (ctx.t("dispatch.place.again"), PlaceAgain().data),
            ),
            cancel_row(ctx),
        ),
    )


def take_confirm(ctx: Ctx, incoming: Incoming) -> None:
    match parse(incoming.button):
        case PlaceSave():
            ctx.slots["confirmed"] = True
        case PlaceAgain():
            ctx.slots.pop("location", None)
            ctx.slots.pop("place", None)
        case _:
            raise Retry("button.stale")


def finish_place(ctx: Ctx) -> list[Reply]:
    number = number_of(ctx)
    me, ticket = _dispatcher_and_ticket(ctx, number)  # checked again: the ticket may have moved on meanwhile
    location = ctx.slots["location"]
    shown = location.get("address") or f"{location['lat']:.5f}, {location['lon']:.5f}"  # in any language
    try:
        after = lifecycle.apply(tx(ctx), ticket, Action.PLACE, me.actor, by=me, comment=shown, place=location)
    except (IllegalTransition, lifecycle.Changed):
        raise changed(ctx, number) from None
    saved = ctx.reply("dispatch.place.saved", number=number, place=describe_place(ctx, location))
    return [saved, routing_list(ctx, after)]


PLACE = Dialog(
    "dp_place",
    (
        Step("location", ask_place, frozenset({"location", "text", "button", "geocoded"}), place.take,
             "dispatch.place.retry", buttons=place.BUTTONS),
        Step("confirmed", ask_confirm, frozenset({"button"}), take_confirm, "dispatch.place.confirm_retry",
             buttons=(PlaceSave, PlaceAgain)),
    ),
    resume="dispatch.place.resume",
    cancelled="dispatch.place.cancelled",
    staff=True,
    finish=finish_place,
)  # fmt: skip
"""*Set place*: the dispatcher sends a pin or an address (checked as a resident's), confirms, and routes."""


ACTIONS = {
    RouteChoices: lambda ctx, pressed: choices(ctx, pressed.number),
    RouteTo: lambda ctx, pressed: route(ctx, pressed.number, pressed.organisation),
    SetPlace: lambda ctx, pressed: start_place(ctx, pressed.number),
}
"""The dispatcher's buttons on ticket cards and routing lists."""
