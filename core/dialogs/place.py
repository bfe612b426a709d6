"""The place step of the report dialog: a pin or a typed address, checked with the geocoder.

A step never waits for the network (it runs inside the update's transaction). With a geocoder configured, a
pin or an address puts the step into stage `looking` — a `Lookup` for the engine to run after the commit —
and the answer comes back as an internal update (`Incoming.geocoded`) that moves the stage on:

    pin      → looking → confirm_pin ("улица Ленина, 5 — верно?") → yes: point + address
                                      └ no → pin_address: the resident types the address, the point stays
    address  → looking → choose (several candidates) → confirm_pick (shown as a pin) → yes: point + address
                       → confirm_pick (one candidate)             └ no → back to choose / not_found
                       → not_found: retype, send a pin, or keep the text as typed
                       → all candidates outside the city: say so, ask again
    geocoder slow, failing or off → the point alone, or the text as typed (`typed_unverified` when the
    geocoder failed: the dispatcher places the ticket) — nothing is lost.

A new pin or a new address at any stage starts over; an answer to a superseded lookup is dropped.

The dispatcher placing a ticket (core/dialogs/dispatch.py) runs the same step with `slots["need_point"]`:
there the point is the purpose, so an address that cannot be checked or found is not kept as typed — the
dispatcher is asked for a pin or another address instead.
The sub-state lives in `slots["place"]`; the step's slot `location` is filled only when the place is settled:
`{"lat", "lon", "address", "source"}` with source `pin`, `geocoded`, `typed` or `typed_unverified`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from core.buttons import PlaceAnswer, PlacePick, parse
from core.context import Ctx, Retry
from core.dialogs.dialog import cancel_row
from core.dialogs.steps import DIALOG_KEY, Step, current_step, input_kind, run_step
from core.geo import Geocoded, Lookup, Place
from core.messages import Button, Incoming, Location, Reply

ADDRESS_MIN = 5
ADDRESS_MAX = 300
BUTTONS = (PlaceAnswer, PlacePick)
YES, NO, KEEP = PlaceAnswer("yes").data, PlaceAnswer("no").data, PlaceAnswer("keep").data


def _stage(ctx: Ctx) -> dict[str, Any]:
    return ctx.slots.get("place") or {}


def _settle(
    ctx: Ctx, lat: float | None, lon: float | None, address: str, source: str, shown: str = ""
) -> None:
    """`address` is what staff get (the city's language); `shown`, when it differs, what the resident sees."""
    ctx.slots.pop("place", None)
    ctx.slots["location"] = {"lat": lat, "lon": lon, "address": address, "source": source}
    if shown and shown != address:
        ctx.slots["location"]["shown"] = shown


def _needs_point(ctx: Ctx) -> bool:
    return bool(ctx.slots.get("need_point"))


def _city(ctx: Ctx) -> str:
    return ctx.municipality.names.get(ctx.lang) or ctx.municipality.name("ru")


# --- prompts ---------------------------------------------------------------------------------------------
def ask(ctx: Ctx) -> Reply:
    place = _stage(ctx)
    stage = place.get("stage")
    yes_no = (
        ((ctx.t("report.place.yes"), YES), (ctx.t("report.place.no"), NO)),
        cancel_row(ctx),
    )
    if stage == "confirm_pin":
        return ctx.reply(
            "report.place.confirm_pin", buttons=yes_no, address=place.get("shown") or place["address"]
        )
    if stage == "pin_address":
        return Reply(
            text=ctx.t("report.place.pin_address"),
            ask_location=True,
            buttons=(((ctx.t("report.place.keep_point"), KEEP),), cancel_row(ctx)),
        )
    if stage == "choose":
        labels = _labels(place["candidates"])
        rows = tuple(((label, PlacePick(i).data),) for i, label in enumerate(labels))
        keep: tuple[Button, ...] = ((ctx.t("report.place.keep_text"), KEEP),)
        return Reply(
            text=ctx.t("report.place.choose", query=place["query"]),
            ask_location=True,
            buttons=(*rows, *(() if _needs_point(ctx) else (keep,)), cancel_row(ctx)),
        )
    if stage == "confirm_pick":
        candidate = place["candidates"][place["pick"]]
        lat, lon = candidate[1], candidate[2]
        return Reply(
            text=ctx.t("report.place.confirm_pick", address=_shown(candidate)),
            location=Location(lat, lon),
            buttons=yes_no,
        )
    if stage == "not_found" and _needs_point(ctx):
        return Reply(
            text=ctx.t("dispatch.place.not_found", query=place["query"]),
            ask_location=True,
            buttons=(cancel_row(ctx),),
        )
    if stage == "not_found":
        return Reply(
            text=ctx.t("report.place.not_found", query=place["query"]),
            ask_location=True,
            buttons=(((ctx.t("report.place.keep_text"), KEEP),), cancel_row(ctx)),
        )
    return Reply(text=ctx.t("report.location.ask"), ask_location=True, buttons=(cancel_row(ctx),))


def _shown(candidate: list[Any]) -> str:
    """A candidate `[address, lat, lon, area, shown]` as the resident reads it (older states lack `shown`)."""
    return str(candidate[4] if len(candidate) > 4 and candidate[4] else candidate[0])


def _labels(candidates: list[list[Any]]) -> list[str]:
    """Button labels: the short address, with its area where two candidates would otherwise look the same."""
    addresses = [_shown(c) for c in candidates]
    return [
        f"{address} ({c[3]})" if c[3] and addresses.count(address) > 1 else address
        for address, c in zip(addresses, candidates, strict=True)
    ]


# --- input -----------------------------------------------------------------------------------------------
def take(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    kind = input_kind(incoming)
    if kind == "geocoded":
        assert incoming.geocoded is not None
        return _answer(ctx, incoming.geocoded)
    if kind == "location":
        assert incoming.location is not None
        return _pin(ctx, incoming.location.lat, incoming.location.lon)
    if kind == "button":
        return _button(ctx, incoming.button)
    return _text(ctx, " ".join((incoming.text or "").split()))


def _pin(ctx: Ctx, lat: float, lon: float) -> list[Reply] | None:
    if not ctx.municipality.contains(lat, lon):
        ctx.slots.pop("place", None)
        raise Retry("report.location.outside", city=_city(ctx))
    if not ctx.geocoding:
        _settle(ctx, lat, lon, "", "pin")
        return None
    lookup = Lookup(_new_id(), "reverse", ctx.lang, lat=lat, lon=lon, city_language=ctx.city_language)
    _look(ctx, lookup, {"lat": lat, "lon": lon})
    return []


def _text(ctx: Ctx, address: str) -> list[Reply] | None:
    if len(address) < ADDRESS_MIN:
        raise Retry("report.location.address_too_short")
    if len(address) > ADDRESS_MAX:
        raise Retry("report.location.address_too_long", count=ADDRESS_MAX)
    place = _stage(ctx)
    if place.get("stage") in ("confirm_pin", "pin_address"):  # the right address for the resident's pin
        _settle(ctx, place["lat"], place["lon"], address, "pin")
        return None
    if not ctx.geocoding:
        if _needs_point(ctx):
            raise Retry("dispatch.place.no_geocoder")
        _settle(ctx, None, None, address, "typed")
        return None
    lookup = Lookup(_new_id(), "search", ctx.lang, query=address, city_language=ctx.city_language)
    _look(ctx, lookup, {"query": address})
    return []


def _button(ctx: Ctx, data: str | None) -> list[Reply] | None:
    place = _stage(ctx)
    stage = place.get("stage")
    match parse(data), stage:
        case PlaceAnswer("yes"), "confirm_pin":
            _settle(ctx, place["lat"], place["lon"], place["address"], "pin", place.get("shown", ""))
            return None
        case PlaceAnswer("yes"), "confirm_pick":
            candidate = place["candidates"][place["pick"]]
            _settle(ctx, candidate[1], candidate[2], candidate[0], "geocoded", _shown(candidate))
            return None
        case PlaceAnswer("no"), "confirm_pin":
            place["stage"] = "pin_address"
            return [ask(ctx)]
        case PlaceAnswer("no"), "confirm_pick":
            place["stage"] = "choose" if len(place["candidates"]) > 1 else "not_found"
            return [ask(ctx)]
        case PlaceAnswer("keep"), "pin_address":
            _settle(ctx, place["lat"], place["lon"], "", "pin")
            return None
        case PlaceAnswer("keep"), "choose" | "confirm_pick" | "not_found" if not _needs_point(ctx):
            _settle(ctx, None, None, place["query"], "typed")
            return None
        case PlacePick(index), "choose" if index < len(place["candidates"]):
            place["stage"], place["pick"] = "confirm_pick", index
            return [ask(ctx)]
    raise Retry("button.stale")


def _answer(ctx: Ctx, answer: Geocoded) -> list[Reply] | None:
    place = _stage(ctx)
    if place.get("stage") != "looking" or place.get("id") != answer.id:
        return []  # superseded by a newer pin or address, or the report moved on: nothing to say
    if answer.kind == "reverse":
        if answer.ok and answer.places and answer.places[0].address:
            found = answer.places[0]
            place.update(stage="confirm_pin", address=found.address, shown=found.label)
            return [ask(ctx)]
        _settle(ctx, place["lat"], place["lon"], "", "pin")  # no address known: the point is enough
        return None
    query = place["query"]
    if not answer.ok and _needs_point(ctx):
        ctx.slots.pop("place", None)
        raise Retry("dispatch.place.unverified", query=query)
    if not answer.ok:
        _settle(ctx, None, None, query, "typed_unverified")
        return [ctx.reply("report.place.unverified")]
    inside = [p for p in answer.places if ctx.municipality.contains(p.lat, p.lon)]
    if inside:
        place["candidates"] = [_candidate(p) for p in inside]
        if len(inside) == 1:
            place.update(stage="confirm_pick", pick=0)
        else:
            place["stage"] = "choose"
        return [ask(ctx)]
    if answer.places:
        ctx.slots.pop("place", None)  # said with the step's own question (the report's, or the dispatcher's)
        raise Retry("report.place.outside", query=query, city=_city(ctx))
    place["stage"] = "not_found"
    return [ask(ctx)]


def _candidate(place: Place) -> list[Any]:
    return [place.address, place.lat, place.lon, place.area, place.label]


def _look(ctx: Ctx, lookup: Lookup, fields: dict[str, Any]) -> None:
    ctx.slots["place"] = {"stage": "looking", "id": lookup.id, **fields}
    ctx.lookups.append(lookup)


def _new_id() -> str:
    return secrets.token_hex(6)


def feed(ctx: Ctx, steps: Sequence[Step]) -> list[Reply]:
    """An internal geocoder answer for the active dialog's `steps` (the report, or the dispatcher placing a
    ticket). Only a place step waiting for exactly this lookup handles it; anything else (the dialog was
    cancelled or moved on, a newer pin came) drops it silently."""
    answer = ctx.incoming.geocoded
    place = _stage(ctx) if ctx.state.get(DIALOG_KEY) else {}
    if answer is None or place.get("stage") != "looking" or place.get("id") != answer.id:
        return []
    step = current_step(ctx, steps)
    if step is None or "geocoded" not in step.accepts:
        return []
    return run_step(ctx, steps, ctx.incoming)[0]
