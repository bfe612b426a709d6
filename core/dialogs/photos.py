"""Collecting photos in a dialog step (the report, resolving a ticket, reopening it), up to
`core.photo_limits.MAX_PHOTOS`, and saying exactly what happened to each batch."""

from __future__ import annotations

from core.buttons import ButtonData, parse
from core.context import Ctx, Retry
from core.messages import Incoming, Reply
from core.photo_limits import MAX_PHOTOS


def keep_photos(ctx: Ctx, incoming: Incoming, limit: int = MAX_PHOTOS) -> tuple[int, list[str]]:
    """Collect the input's photos into `slots["photos"]` up to `limit`, and say exactly what happened to
    them: how many were added, which were already there (same sha256), which did not fit.
    Returns the number added and those sentences."""
    photos: list[str] = ctx.slots.setdefault("photos", [])
    new: list[str] = []
    duplicates = 0
    for photo in incoming.photos:
        if photo.sha256 in photos or photo.sha256 in new:
            duplicates += 1
        else:
            new.append(photo.sha256)
    room = max(0, limit - len(photos))
    photos.extend(new[:room])
    added, dropped = min(room, len(new)), max(0, len(new) - room)
    news = []
    if added:
        news.append(ctx.t("report.photos.added", count=added))
    if duplicates:
        news.append(ctx.t("report.photos.duplicate", count=duplicates))
    if dropped:
        news.append(ctx.t("report.photos.limit", count=dropped, max=limit))
    return added, news


def add_photos(ctx: Ctx, incoming: Incoming, limit: int = MAX_PHOTOS) -> list[Reply]:
    """Collect photos up to `limit`; says so when some were repeats or did not fit (the prompt that follows
    gives the new count)."""
    added, news = keep_photos(ctx, incoming, limit)
    trouble = news[1:] if added else news
    return [Reply(text="\n".join(trouble))] if trouble else []


def pressed_done(ctx: Ctx, incoming: Incoming, done: type[ButtonData], required: str = "") -> bool:
    """Whether the input is the photo step's *Done* button `done`, which ends the step
    (`slots["photos_done"]`); any other button is stale. With `required` (a text key), *Done* before any
    photo is refused with that text."""
    if incoming.button is None:
        return False
    if not isinstance(parse(incoming.button), done):
        raise Retry("button.stale")
    if required and not ctx.slots.get("photos"):
        raise Retry(required)
    ctx.slots["photos_done"] = True
    return True
