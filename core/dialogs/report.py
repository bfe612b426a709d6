"""The new-report dialog as a table of steps: category → subcategory → place → description → photos →
review."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.context import Ctx, Retry
from core.dialogs import nearby, place
from core.dialogs.form import Step
from core.dialogs.tasks import keep_photos
from core.messages import Button, Incoming, Reply
from core.reporting import submit_report

DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 2000
MAX_PHOTOS = 5
CANCEL = "report:cancel"


def _cancel_row(ctx: Ctx) -> tuple[Button, ...]:
    return ((ctx.t("report.cancel"), CANCEL),)


# --- category ---------------------------------------------------------------------------------------------
def ask_category(ctx: Ctx) -> Reply:
    cats = ctx.municipality.top_categories()
    rows = tuple(((c.name(ctx.lang), f"cat:{c.code}"),) for c in cats)
    return ctx.reply("report.category.ask", buttons=(*rows, _cancel_row(ctx)))


def take_category(ctx: Ctx, incoming: Incoming) -> None:
    code = (incoming.button or "").removeprefix("cat:")
    category = ctx.municipality.category(code)
    if category is None or category.parent is not None:
        raise Retry("button.stale")
    ctx.slots["category"] = code
    ctx.slots.pop("subcategory", None)


# --- subcategory ------------------------------------------------------------------------------------------
def has_subcategories(ctx: Ctx) -> bool:
    return bool(ctx.municipality.subcategories(ctx.slots.get("category", "")))


def ask_subcategory(ctx: Ctx) -> Reply:
    parent = ctx.municipality.category(ctx.slots["category"])
    assert parent is not None
    subs = ctx.municipality.subcategories(parent.code)
    rows = tuple(((c.name(ctx.lang), f"sub:{c.code}"),) for c in subs)
    back = ((ctx.t("report.back"), "sub:back"),)
    return ctx.reply("report.subcategory.ask", buttons=(*rows, back), category=parent.name(ctx.lang))


def take_subcategory(ctx: Ctx, incoming: Incoming) -> None:
    code = (incoming.button or "").removeprefix("sub:")
    if code == "back":
        ctx.slots.pop("category", None)
        return
    sub = ctx.municipality.category(code)
    if sub is None or sub.parent != ctx.slots.get("category"):
        raise Retry("button.stale")
    ctx.slots["subcategory"] = code


# --- place and "me too": core/dialogs/place.py, core/dialogs/nearby.py (issue 6) ------------------------


# --- description ------------------------------------------------------------------------------------------
def ask_description(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("report.description.ask", min=DESCRIPTION_MIN, count=DESCRIPTION_MAX),
        buttons=(_cancel_row(ctx),),
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
    done = (ctx.t("report.photos.done"), "photos:done")
    prefix = "".join(f"{line}\n" for line in news)
    if count >= MAX_PHOTOS:
        return Reply(
            text=ctx.t("report.photos.full", news=prefix, count=count, max=MAX_PHOTOS),
            buttons=((done,), _cancel_row(ctx)),
        )
    if count:
        return Reply(
            text=ctx.t("report.photos.ask_more", news=prefix, count=count, max=MAX_PHOTOS),
            buttons=((done,), _cancel_row(ctx)),
        )
    return Reply(
        text="".join([prefix, ctx.t("report.photos.ask", max=MAX_PHOTOS)]),
        buttons=(((ctx.t("report.photos.skip"), "photos:done"),), _cancel_row(ctx)),
    )


def take_photos(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    if incoming.button is not None:
        if incoming.button != "photos:done":
            raise Retry("button.stale")
        ctx.slots["photos_done"] = True
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
    edit = lambda field: (ctx.t(f"report.review.edit_{field}"), f"review:edit:{field}")  # noqa: E731
    return Reply(
        text=text,
        buttons=(
            ((ctx.t("report.review.submit"), "review:submit"),),
            (edit("category"), edit("location")),
            (edit("description"), edit("photos")),
            _cancel_row(ctx),
        ),
    )


EDITS = {
    "category": ("category", "subcategory", *nearby.SLOTS),
    "location": ("location", "place", *nearby.SLOTS),
    "description": ("description",),
    "photos": ("photos", "photos_done"),
}


def take_review(ctx: Ctx, incoming: Incoming) -> list[Reply] | None:
    data = incoming.button or ""
    if data == "review:submit":
        return [submit_report(ctx)]
    field = data.removeprefix("review:edit:")
    if field not in EDITS:
        raise Retry("button.stale")
    for slot in EDITS[field]:
        ctx.slots.pop(slot, None)
    return None


STEPS: tuple[Step, ...] = (
    Step("category", ask_category, frozenset({"button"}), take_category, "report.category.retry",
         button_prefix="cat:"),
    Step("subcategory", ask_subcategory, frozenset({"button"}), take_subcategory, "report.subcategory.retry",
         applies=has_subcategories, button_prefix="sub:"),
    Step("location", place.ask, frozenset({"location", "text", "button", "geocoded"}), place.take,
         "report.location.retry", button_prefix=place.PREFIX),
    Step("nearby_checked", nearby.ask, frozenset({"button"}), nearby.take, "report.nearby.retry",
         applies=nearby.applies, button_prefix=nearby.PREFIX),
    Step("description", ask_description, frozenset({"text", "photos"}), take_description,
         "report.description.retry"),
    Step("photos_done", ask_photos, frozenset({"photos", "button"}), take_photos, "report.photos.retry",
         button_prefix="photos:"),
    Step("confirmed", ask_review, frozenset({"button"}), take_review, "report.review.retry",
         button_prefix="review:"),
)  # fmt: skip
