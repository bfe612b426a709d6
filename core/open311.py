"""Open311 GeoReport v2 in the domain's terms: API keys, the open/closed view of the lifecycle, the public
notes, and filing a partner system's request through the same `file_ticket` as the bot's review step.

The HTTP door (web/open311/) parses and answers; everything it decides about tickets is here."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import replace
from datetime import datetime
from typing import cast

from core.change import Tx
from core.domain.tickets import Action, Status, TicketEvent, is_open
from core.labels import reason_text
from core.messages import ChatRef
from core.municipality import Category, Municipality
from core.ports import ApiKey, Open311UnitOfWork, Submission, UnitOfWork
from core.reporting import Filed, Report, file_ticket
from core.texts import t

CHANNEL = "open311"
"""Tickets filed through Open311 have the author `open311:<key name>` (channel `open311`, chat = key name)."""
KEY_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
KEY_PREFIX = "o311_"


class KeyExists(ValueError):
    pass


def hash_key(key: str) -> str:
    """Keys are 256 random bits, so a plain sha256 is as good as a slow hash and costs nothing per request."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(uow: UnitOfWork, name: str, *, can_write: bool, rate_per_minute: int, now: datetime) -> str:
    """A new key under `name`, returned once in clear; only its hash is stored. KeyExists when the name is
    taken (names are never reused, so old tickets' channel keeps meaning one partner)."""
    if not KEY_NAME.fullmatch(name):
        raise ValueError(
            f"key name {name!r}: 1–40 of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(name=name, can_write=can_write, rate_per_minute=rate_per_minute, created_at=now)
    if not cast(Open311UnitOfWork, uow).open311.add_key(record, hash_key(key)):
        raise KeyExists(name)
    return key


def find_key(uow: UnitOfWork, key: str) -> ApiKey | None:
    """The active key, or None (unknown or revoked)."""
    if not key or len(key) > 200:
        return None
    found = cast(Open311UnitOfWork, uow).open311.key_by_hash(hash_key(key))
    return found if found is not None and found.revoked_at is None else None


def open_or_closed(status: Status) -> str:
    return "open" if is_open(status) else "closed"


STATUS_OF = {
    "open": frozenset(s for s in Status if is_open(s)),
    "closed": frozenset(s for s in Status if not is_open(s)),
}


def service_code(category: str, subcategory: str | None) -> str:
    return subcategory or category


def services(m: Municipality) -> list[tuple[Category, Category]]:
    """(group, service) pairs: every subcategory, and a category without any is a service of its own."""
    return [(top, sub) for top in m.top_categories() for sub in (m.subcategories(top.code) or [top])]


def service_of(m: Municipality, code: str) -> tuple[str, str | None] | None:
    """(category, subcategory) of a service code; None when it is not one (a category with subcategories
    is a group, not a service)."""
    category = m.category(code)
    if category is None or (category.parent is None and m.subcategories(code)):
        return None
    return (category.parent, category.code) if category.parent else (category.code, None)


def public_note(lang: str, event: TicketEvent | None) -> str:
    """What a partner may read of a ticket's latest note: the reject reason, or the staff's comment meant
    for the resident (also the resolution's)."""
    if event is None:
        return ""
    if event.action == Action.REJECT:
        return reason_text(lang, event.data)
    return event.comment


def update_description(lang: str, event: TicketEvent) -> str:
    """`servicerequestupdates`' description: what happened, with the public note when there is one. A
    resident's own words when reopening or rating are theirs, not the city's: not repeated."""
    label = t(lang, f"action.{event.action.value}")
    note = public_note(lang, event) if event.action in (Action.COMMENT, Action.RESOLVE, Action.REJECT) else ""
    return f"{label}: {note}" if note else label


def submit(tx: Tx, report: Report, submission: Submission) -> Filed:
    """File the partner's request exactly like a resident's report (routing, deadline, staff card), and keep
    what it brought besides in its own row, in the same transaction."""
    filed = file_ticket(tx, report)
    cast(Open311UnitOfWork, tx.store).open311.record(replace(submission, number=filed.number), tx.now)
    return filed


def author(key: ApiKey) -> ChatRef:
    return ChatRef(CHANNEL, key.name, "")
