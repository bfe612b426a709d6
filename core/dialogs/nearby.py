"""The "me too" step of the report dialog: open tickets of the same category near the place.

Asked after category and place, only when there is something to offer. *This is the same problem* makes the
resident a supporter of that ticket (they get its notifications; staff see the count) and ends the dialog
instead of filing a duplicate; *No, mine is different* goes on. The offer is computed once per place and
category and kept in `slots["nearby_offer"]` (editing either recomputes it).
"""

from __future__ import annotations

from typing import Any

from core.buttons import NearbyDifferent, NearbySame, parse
from core.context import Ctx, Retry
from core.dialogs.dialog import cancel_row, end
from core.domain.tickets import is_open
from core.messages import Button, Incoming, Reply

BUTTONS = (NearbySame, NearbyDifferent)
MAX_OFFERED = 3
EXCERPT = 80
SLOTS = ("nearby_checked", "nearby_offer")
"""What to forget when the category or the place changes."""


def _offer(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.slots
    if "nearby_offer" not in s:
        s["nearby_offer"] = _find(ctx)
    return s["nearby_offer"]


def _find(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.slots
    location = s.get("location") or {}
    lat, lon = location.get("lat"), location.get("lon")
    category = ctx.municipality.category(s.get("subcategory") or s.get("category", ""))
    if lat is None or lon is None or category is None:
        return []
    found = ctx.store.tickets.nearby(
        s["category"], s.get("subcategory"), lat, lon, category.nearby_radius_m, MAX_OFFERED
    )
    return [
        {
            "number": t.number,
            "distance": round(t.distance_m),
            "address": t.address,
            "excerpt": _excerpt(t.description),
            "status": t.status.value,
            "created": ctx.local(t.created_at),
            "supporters": t.supporters,
        }
        for t in found
    ]


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1].rstrip() + "…"


def applies(ctx: Ctx) -> bool:
    return bool(_offer(ctx))


def ask(ctx: Ctx) -> Reply:
    offer = _offer(ctx)
    items = "\n\n".join(
        ctx.t(
            "report.nearby.item",
            number=o["number"],
            place=o["address"] or ctx.t("report.nearby.here"),
            distance=o["distance"],
            status=ctx.t(f"status.{o['status']}"),
            created=o["created"],
            excerpt=o["excerpt"],
            supporters=o["supporters"],
        )
        for o in offer
    )
    rows: list[tuple[Button, ...]] = [
        ((ctx.t("report.nearby.same", number=o["number"]), NearbySame(o["number"]).data),) for o in offer
    ]
    rows.append(((ctx.t("report.nearby.different"), NearbyDifferent().data),))
    rows.append(cancel_row(ctx))
    return ctx.reply("report.nearby.ask", buttons=tuple(rows), items=items)


def take(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    match parse(incoming.button):
        case NearbyDifferent():
            _go_on(ctx)
            return None
        case NearbySame(number) if number in {o["number"] for o in _offer(ctx)}:
            return [_join(ctx, number)]
    raise Retry("button.stale")


def _go_on(ctx: Ctx) -> None:
    ctx.slots["nearby_checked"] = True
    ctx.slots["nearby_offer"] = []  # answered: keep the state small


def _join(ctx: Ctx, number: int) -> Reply:
    ticket = ctx.store.tickets.get(number, with_events=False)
    if ticket is None or not is_open(ticket.status):
        _go_on(ctx)
        return ctx.reply("report.nearby.gone", number=number)
    author = (ticket.author_channel, ticket.author_chat_id) == (ctx.chat.channel, ctx.chat.chat_id)
    joined = not author and ctx.store.supporters.add(number, ctx.chat, ctx.lang, ctx.now)
    end(ctx)
    if not joined:
        return ctx.reply("report.nearby.already", number=number)
    return ctx.reply("report.nearby.joined", number=number, supporters=ticket.supporters + 1)
