"""Staff actions on the web, through the bot's own functions (core/dialogs/staff.py and dispatch.py): the
same authorisation, the same lifecycle change, the same outbox messages to the resident, the same answers.

The web fills in what the bot's dialog would have asked step by step (the comment, the photos, the
reason) and runs the dialog's finishing function in one transaction, on a throw-away dialog state: the
person's conversation with the bot is neither read nor changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp.web_request import FileField

from bots.app import App
from bots.photos import ingest_photo
from core.context import Ctx, Refusal, Retry
from core.dialogs import dispatch, staff
from core.domain.tickets import Status
from core.messages import Incoming
from core.photo_limits import MAX_PHOTOS
from core.ports import StaffMember, UnitOfWork
from core.texts import t

KINDS = frozenset({"take", "comment", "resolve", "reject", "route", "place"})
FIELD_MAX = 2000


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip()[: FIELD_MAX + 1] if isinstance(value, str) else ""


async def run(
    app: App, member: StaffMember, kind: str, number: int, form: Mapping[str, Any]
) -> tuple[list[str], bool]:
    """The answer's texts (in the person's language) and whether the action was done."""
    lang = member.language
    photos: list[str] = []
    if kind == "resolve":
        files = [f for f in form.getall("photos", []) if isinstance(f, FileField)]  # type: ignore[attr-defined]
        files = [f for f in files if f.filename]
        if not files:
            return [t(lang, "web.act.photo_required")], False
        if len(files) > MAX_PHOTOS:
            return [t(lang, "web.act.resolve_photos", max=MAX_PHOTOS)], False
        for f in files:
            stored = await ingest_photo(app.db, app.photos, f.file.read())
            if isinstance(stored, str):
                return [t(lang, "web.act.photo_bad", name=f.filename[:80])], False
            photos.append(stored.sha256)
    engine = app.engine

    def job(store: UnitOfWork) -> tuple[list[str], bool]:
        ctx = Ctx(
            store,
            engine.municipality,
            {"lang": lang},
            member.chat,
            Incoming(member.chat, ""),
            engine.clock(),
            city_language=engine.default_language,
            web_url=engine.web_url,
        )
        try:
            replies = _act(ctx, kind, number, form, photos)
        except Refusal as refusal:
            return [r.text for r in refusal.replies[:1]], False
        except Retry as retry:
            return [ctx.t(retry.key, **retry.params)], False
        return [r.text for r in replies[:1]], True

    return await app.db.run(job)


def _act(ctx: Ctx, kind: str, number: int, form: Mapping[str, Any], photos: list[str]) -> list[Any]:
    ctx.state["slots"] = {"ticket": number}
    slots = ctx.slots
    match kind:
        case "take":
            return staff.take(ctx, number)
        case "comment":
            staff.take_comment(ctx, Incoming(ctx.chat, "", text=_text(form, "text")))
            if not slots["text"]:
                raise Retry("staff.comment.retry")
            return staff.finish_comment(ctx)
        case "resolve":
            comment = _text(form, "comment")
            if comment:
                staff.take_comment(ctx, Incoming(ctx.chat, "", text=comment))
            slots.update(photos=photos, comment=slots.pop("text", ""))
            return staff.finish_resolve(ctx)
        case "reject":
            ticket = ctx.store.tickets.get(number, with_events=False)
            slots["waiting"] = ticket is not None and ticket.status == Status.NEW
            reason = _text(form, "reason")
            if reason not in staff.reasons(ctx):
                raise Retry("staff.reject.retry")
            slots["reason"] = reason
            if reason == "duplicate":
                staff.take_duplicate(ctx, Incoming(ctx.chat, "", text=_text(form, "duplicate_of")))
            return staff.finish_reject(ctx)
        case "route":
            return dispatch.route(ctx, number, _text(form, "organisation"))
        case "place":
            lat, lon = _coordinate(_text(form, "lat"), 90), _coordinate(_text(form, "lon"), 180)
            if lat is None or lon is None or not ctx.municipality.contains(lat, lon):
                raise Retry("dispatch.place.retry")
            address = _text(form, "address")[:300]
            slots["location"] = {"lat": lat, "lon": lon, "address": address, "source": "pin"}
            return dispatch.finish_place(ctx)
    raise Retry("button.stale")


def _coordinate(text: str, limit: float) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if -limit <= value <= limit else None
