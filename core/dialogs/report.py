"""The new-report dialog as a table of steps: category → subcategory → place → description → photos →
review."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.buttons import (
    Category,
    PhotosDone,
    ReviewEdit,
    ReviewSubmit,
    Subcategory,
    SubcategoryBack,
    parse,
)
from core.context import Ctx, Retry
from core.dialogs import nearby, place
from core.dialogs.dialog import Dialog, cancel_row
from core.dialogs.photos import keep_photos, pressed_done
from core.dialogs.steps import Step
from core.messages import Incoming, Reply
from core.photo_limits import MAX_PHOTOS
from core.reporting import submit_report

DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 2000


# --- category ---------------------------------------------------------------------------------------------
def ask_category(ctx: Ctx) -> Reply:
    cats = ctx.municipality.top_categories()
    rows = tuple(((c.name(ctx.lang), Category(c.code).data),) for c in cats)
    return ctx.reply("report.category.ask", buttons=(*rows, cancel_row(ctx)))


def take_category(ctx: Ctx, incoming: Incoming) -> None:
    match parse(incoming.button):
        case Category(code):
            category = ctx.municipality.category(code)
            if category is not None and category.parent is None:
                ctx.slots["category"] = code
                ctx.slots.pop("subcategory", None)
                return
    raise Retry("button.stale")
    ctx.slots.pop("subcategory", None)


# --- subcategory ------------------------------------------------------------------------------------------
def has_subcategories(ctx: Ctx) -> bool:
    return bool(ctx.municipality.subcategories(ctx.slots.get("category", "")))


def ask_subcategory(ctx: Ctx) -> Reply:
    parent = ctx.municipality.category(ctx.slots["category"])
    assert parent is not None
    subs = ctx.municipality.subcategories(parent.code)
    rows = tuple(((c.name(ctx.lang), Subcategory(c.code).data),) for c in subs)
    back = ((ctx.t("report.back"), SubcategoryBack().data),)
    return ctx.reply("report.subcategory.ask", buttons=(*rows, back), category=parent.name(ctx.lang))


def take_subcategory(ctx: Ctx, incoming: Incoming) -> None:
    match parse(incoming.button):
        case SubcategoryBack():
            ctx.slots.pop("category", None)
            return
        case Subcategory(code):
            sub = ctx.municipality.category(code)
            if sub is not None and sub.parent == ctx.slots.get("category"):
                ctx.slots["subcategory"] = code
                return
    raise Retry("button.stale")


# --- place and "me too": core/dialogs/place.py, core/dialogs/nearby.py ---------------------------------


# --- description ------------------------------------------------------------------------------------------
def ask_description(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("report.description.ask", min=DESCRIPTION_MIN, count=DESCRIPTION_MAX),
        buttons=(cancel_row(ctx),),
    )


def _description_problem(text: str) -> tuple[str, dict[str, int]] | None:
    if len(text) < DESCRIPTION_MIN:
        return "report.description.too_short", {"count": DESCRIPTION_MIN}
    if len(text) > DESCRIPTION_MAX:
        return "report.description.too_long", {"count": len(text), "max": DESCRIPTION_MAX}
    return None


def take_description(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    """Text, or photos sent early: they are kept for the photo step, and a caption is the description."""
    text = (incoming.text or "").strip()
    if incoming.photos:
        return _photos_at_description(ctx, incoming, text)
    if (problem := _description_problem(text)) is not None:
        raise Retry(problem[0], **problem[1])
    ctx.slots["description"] = text
    return None


def _photos_at_description(ctx: Ctx, incoming: Incoming, caption: str) -> list[Reply]:
    _added, news = keep_photos(ctx, incoming, MAX_PHOTOS)
    problem = _description_problem(caption) if caption else None
    if caption and problem is None:
        ctx.slots["description"] = caption
        return [Reply(text="\n".join([ctx.t("report.description.from_caption"), *news]))]
    count = len(ctx.slots.get("photos", ()))
    lines = [*news, ctx.t("report.description.photo_kept", count=count, max=MAX_PHOTOS)]
    if problem is not None:
        lines.append(ctx.t(problem[0], **problem[1]))
    return [Reply(text="\n".join(lines)), ask_description(ctx)]


# --- photos -----------------------------------------------------------------------------------------------
def ask_photos(ctx: Ctx, news: Sequence[str] = ()) -> Reply:
    """The photo prompt; `news` says what the last input did (added, already there, did not fit)."""
    count = len(ctx.slots.get("photos", ()))
    done = (ctx.t("report.photos.done"), PhotosDone().data)
    prefix = "".join(f"{line}\n" for line in news)
    if count >= MAX_PHOTOS:
        return Reply(
            text=ctx.t("report.photos.full", news=prefix, count=count, max=MAX_PHOTOS),
            buttons=((done,), cancel_row(ctx)),
        )
    if count:
        return Reply(
            text=ctx.t("report.photos.ask_more", news=prefix, count=count, max=MAX_PHOTOS),
            buttons=((done,), cancel_row(ctx)),
        )
    return Reply(
        text="".join([prefix, ctx.t("report.photos.ask", max=MAX_PHOTOS)]),
        buttons=(((ctx.t("report.photos.skip"), PhotosDone().data),), cancel_row(ctx)),
    )


def take_photos(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    if pressed_done(ctx, incoming, PhotosDone):
        return None
    _added, news = keep_photos(ctx, incoming, MAX_PHOTOS)
    return [ask_photos(ctx, news)]


# --- review -----------------------------------------------------------------------------------------------
def describe_place(ctx: Ctx, location: dict[str, Any] | None) -> str:
    if not location:
        return "—"
    if location.get("shown") or location.get("address"):  # the resident's language when it differs
        return str(location.get("shown") or location["address"])
    return ctx.t("report.review.point", lat=f"{location['lat']:.5f}", lon=f"{location['lon']:.5f}")


def category_label(ctx: Ctx, category: str, subcategory: str | None) -> str:
    parts = [ctx.municipality.category(code) for code in (category, subcategory) if code]
    return " → ".join(c.name(ctx.lang) for c in parts if c is not None)


def ask_review(ctx: Ctx) -> Reply:
    s = ctx.slots
    photos = len(s.get("photos", ()))
    text = ctx.t(
        "report.review.ask",
        category=category_label(ctx, s["category"], s.get("subcategory")),
        place=describe_place(ctx, s.get("location")),
        description=s.get("description", ""),
        photos=photos or ctx.t("report.review.no_photos"),
    )
    edit = lambda part: (ctx.t(f"report.review.edit_{part}"), ReviewEdit(part).data)  # noqa: E731
    return Reply(
        text=text,
        buttons=(
            ((ctx.t("report.review.submit"), ReviewSubmit().data),),
            (edit("category"), edit("location")),
            (edit("description"), edit("photos")),
            cancel_row(ctx),
        ),
    )


EDITS = {
    "category": ("category", "subcategory", *nearby.SLOTS),
    "location": ("location", "place", *nearby.SLOTS),
    "description": ("description",),
    "photos": ("photos", "photos_done"),
}


def take_review(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    match parse(incoming.button):
        case ReviewSubmit():
            return [submit_report(ctx)]
        case ReviewEdit(part) if part in EDITS:
            for slot in EDITS[part]:
                ctx.slots.pop(slot, None)
            return None
    raise Retry("button.stale")


STEPS: tuple[Step, ...] = (
    Step("category", ask_category, frozenset({"button"}), take_category, "report.category.retry",
         buttons=(Category,)),
    Step("subcategory", ask_subcategory, frozenset({"button"}), take_subcategory, "report.subcategory.retry",
         applies=has_subcategories, buttons=(Subcategory, SubcategoryBack)),
    Step("location", place.ask, frozenset({"location", "text", "button", "geocoded"}), place.take,
         "report.location.retry", buttons=place.BUTTONS),
    Step("nearby_checked", nearby.ask, frozenset({"button"}), nearby.take, "report.nearby.retry",
         applies=nearby.applies, buttons=nearby.BUTTONS),
    Step("description", ask_description, frozenset({"text", "photos"}), take_description,
         "report.description.retry"),
    Step("photos_done", ask_photos, frozenset({"photos", "button"}), take_photos, "report.photos.retry",
         buttons=(PhotosDone,)),
    Step("confirmed", ask_review, frozenset({"button"}), take_review, "report.review.retry",
         buttons=(ReviewSubmit, ReviewEdit)),
)  # fmt: skip

REPORT = Dialog(
    "report",
    STEPS,
    resume="report.resume",
    cancelled="cancel.done",
    then_menu=True,
    command="new",
    personal=True,
)
"""A resident's new report; its review step submits it, or "me too" ends it (core/dialogs/nearby.py)."""
