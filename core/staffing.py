"""Staff identities: one-time invite codes (`otklik staff invite`) redeemed with `/staff CODE`.

A code is 8 characters from an alphabet without look-alikes (0/O, 1/I), shown as `ABCD-EFGH`; case, spaces
and dashes do not matter when it is typed back. Only its sha256 is stored. A code expires, and works once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.messages import ChatRef
from core.municipality import Municipality
from core.ports import Invite, NewStaff, StaffMember, Store

ROLES = ("staff", "dispatcher")
INVITE_TTL = timedelta(hours=72)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


class InviteError(ValueError):
    """The invite cannot be made (unknown organisation, role that does not fit)."""


@dataclass(frozen=True, slots=True)
class NewInvite:
    code: str
    organisation: str
    role: str
    expires_at: datetime


def normalise_code(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def default_role(municipality: Municipality, organisation: str) -> str:
    org = municipality.organisation(organisation)
    return "dispatcher" if org is not None and org.kind == "dispatch" else "staff"


def create_invite(
    store: Store,
    municipality: Municipality,
    organisation: str,
    role: str | None,
    now: datetime,
    ttl: timedelta = INVITE_TTL,
) -> NewInvite:
    org = municipality.organisation(organisation)
    if org is None:
        known = ", ".join(o.code for o in municipality.organisations)
        raise InviteError(f"no organisation {organisation!r}; known: {known}")
    role = role or default_role(municipality, organisation)
    if role not in ROLES:
        raise InviteError(f"role must be one of {', '.join(ROLES)}")
    if org.kind == "dispatch" and role != "dispatcher":
        raise InviteError(f"{organisation} is the dispatch service: its people are dispatchers")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    code = f"{raw[:4]}-{raw[4:]}"
    invite = Invite(organisation=organisation, role=role, created_at=now, expires_at=now + ttl)
    store.create_invite(invite, code_hash(code))
    return NewInvite(code, organisation, role, invite.expires_at)


def redeem(
    store: Store,
    municipality: Municipality,
    code: str,
    chat: ChatRef,
    name: str,
    language: str,
    now: datetime,
) -> StaffMember | str:
    """The new staff member, or the text key that explains the refusal."""
    if not normalise_code(code):
        return "staff.invite.usage"
    digest = code_hash(code)
    invite = store.find_invite(digest)
    if invite is None or municipality.organisation(invite.organisation) is None:
        return "staff.invite.invalid"
    if invite.used_at is not None:
        return "staff.invite.used"
    if invite.expires_at <= now:
        return "staff.invite.expired"
    if not store.use_invite(digest, chat.key, now):
        return "staff.invite.used"
    return store.bind_staff(
        NewStaff(
            chat=chat,
            organisation=invite.organisation,
            role=invite.role,
            name=name or chat.user_id or chat.chat_id,
            language=language,
            at=now,
        )
    )
