"""Signing in to the city's web through the bot: no passwords to leak.

A staff member, dispatcher or admin sends `/web` to the bot (or an admin runs `otklik web link PERSON`) and
gets a link with a random token, valid `LINK_TTL` and once. Opening it (a button on the page, so that a
messenger's link preview cannot use it up) opens a browser session of `SESSION_TTL`. Only sha256 of either
token is stored: a copy of the database signs nobody in. A session ends on sign-out, at its expiry, or as
soon as the person's staff access ends (`otklik staff remove`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.ports import StaffMember, UnitOfWork

log = logging.getLogger(__name__)

LINK_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
TOKEN_BYTES = 32
TOKEN_LENGTH = 43
"""`secrets.token_urlsafe(32)`: 43 characters of the URL-safe base64 alphabet."""
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
LOGIN_PATH = "/web/login/"


@dataclass(frozen=True, slots=True)
class NewLink:
    url: str
    expires_at: datetime


def well_formed(token: str) -> bool:
    """Checked before any lookup: anything else is refused without touching the database."""
    return len(token) == TOKEN_LENGTH and set(token) <= TOKEN_CHARS


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_url(base: str, token: str) -> str:
    return base.rstrip("/") + LOGIN_PATH + token


def new_link(
    store: UnitOfWork, member: StaffMember, base_url: str, now: datetime, ttl: timedelta = LINK_TTL
) -> NewLink:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.web_logins.create_link(token_hash(token), member.id, now, now + ttl)
    log.info("web sign-in link made for staff %d (valid until %s)", member.id, (now + ttl).isoformat())
    return NewLink(login_url(base_url, token), now + ttl)


def check_link(store: UnitOfWork, token: str, now: datetime) -> StaffMember | str:
    """The person the link signs in, or the text key of why not (`web.link.*`); nothing is changed."""
    if not well_formed(token):
        return "web.link.invalid"
    link = store.web_logins.find_link(token_hash(token))
    if link is None:
        return "web.link.invalid"
    if link.used_at is not None:
        return "web.link.used"
    if link.expires_at <= now:
        return "web.link.expired"
    member = store.staff.by_id(link.staff_id)
    if member is None or member.removed_at is not None:
        return "web.link.not_staff"
    return member


def redeem(
    store: UnitOfWork, token: str, now: datetime, ttl: timedelta = SESSION_TTL
) -> tuple[StaffMember, str] | str:
    """Use the link: the person and a new session token, or the text key of the refusal."""
    found = check_link(store, token, now)
    if isinstance(found, str):
        return found
    if not store.web_logins.use_link(token_hash(token), now):
        return "web.link.used"
    session = secrets.token_urlsafe(TOKEN_BYTES)
    store.web_logins.open_session(token_hash(session), found.id, now, now + ttl)
    log.info("web session opened for staff %d", found.id)
    return found, session


def session_member(store: UnitOfWork, session: str, now: datetime) -> StaffMember | None:
    """The staff member of a live session; None when it ended, expired or their access was removed."""
    if not well_formed(session):
        return None
    staff_id = store.web_logins.session_staff(token_hash(session), now)
    if staff_id is None:
        return None
    member = store.staff.by_id(staff_id)
    return member if member is not None and member.removed_at is None else None


def sign_out(store: UnitOfWork, session: str, now: datetime) -> None:
    if well_formed(session):
        store.web_logins.end_session(token_hash(session), now)
