"""Staff identities: one-time invite codes (`otklik staff invite`) redeemed with `/staff CODE`.

A code is 8 characters from an alphabet without look-alikes (0/O, 1/I), shown as `ABCD-EFGH`; case, spaces
and dashes do not matter when it is typed back. Only its sha256 is stored. A code expires, and works once.

Codes cannot be guessed at leisure: after MAX_CODE_FAILURES wrong codes within CODE_FAILURE_WINDOW a chat
is told when it may try again, and its code is not even looked up until then. The tries are counted in the
database (a restart does not reset them; every process sees them) and each one is logged at WARNING with
the channel and a hash of the chat id — never the code.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.messages import ChatRef
from core.municipality import Municipality
from core.ports import Invite, NewStaff, StaffMember, UnitOfWork

log = logging.getLogger(__name__)

ROLES = ("staff", "dispatcher", "admin")
"""An admin sees and acts on the whole city (in the bot, as a dispatcher does; on the web, everything)."""
INVITE_TTL = timedelta(hours=72)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MAX_CODE_FAILURES = 5
CODE_FAILURE_WINDOW = timedelta(hours=1)


class InviteError(ValueError):
    """The invite cannot be made (unknown organisation, role that does not fit)."""


@dataclass(frozen=True, slots=True)
class TooManyTries:
    """`/staff CODE` refused unchecked: too many wrong codes from this chat; it may try again `after`."""

    after: datetime


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
    store: UnitOfWork,
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
    if org.kind == "dispatch" and role == "staff":
        raise InviteError(f"{organisation} is the dispatch service: its people are dispatchers")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    code = f"{raw[:4]}-{raw[4:]}"
    invite = Invite(organisation=organisation, role=role, created_at=now, expires_at=now + ttl)
    store.staff.create_invite(invite, code_hash(code))
    return NewInvite(code, organisation, role, invite.expires_at)


def redeem(
    store: UnitOfWork,
    municipality: Municipality,
    code: str,
    chat: ChatRef,
    name: str,
    language: str,
    now: datetime,
) -> StaffMember | str | TooManyTries:
    """The new staff member, the text key that explains the refusal, or TooManyTries."""
    if not normalise_code(code):
        return "staff.invite.usage"
    failures = store.staff.code_failures(chat, now - CODE_FAILURE_WINDOW)
    if len(failures) >= MAX_CODE_FAILURES:
        # Tries count while younger than the window: the chat may try again once all but
        # MAX_CODE_FAILURES - 1 of them have aged out.
        after = failures[-MAX_CODE_FAILURES] + CODE_FAILURE_WINDOW
        log.warning(
            "/staff code refused unchecked: %d wrong codes in the last hour from %s chat %s (until %s)",
            len(failures),
            chat.channel,
            chat_hash(chat),
            after.isoformat(timespec="seconds"),
        )
        return TooManyTries(after)
    invite = _use(store, municipality, code, chat, now)
    if isinstance(invite, str):
        refusal = invite
        store.staff.record_code_failure(chat, now, forget_before=now - CODE_FAILURE_WINDOW)
        log.warning(
            "wrong /staff code (%s) from %s chat %s: %d of %d tries this hour",
            refusal.rsplit(".", 1)[-1],
            chat.channel,
            chat_hash(chat),
            len(failures) + 1,
            MAX_CODE_FAILURES,
        )
        return refusal
    return store.staff.bind(
        NewStaff(
            chat=chat,
            organisation=invite.organisation,
            role=invite.role,
            name=name or chat.user_id or chat.chat_id,
            language=language,
            at=now,
        )
    )


def _use(
    store: UnitOfWork, municipality: Municipality, code: str, chat: ChatRef, now: datetime
) -> Invite | str:
    """Use the invite with this code: the invite, or the text key of the refusal."""
    digest = code_hash(code)
    invite = store.staff.find_invite(digest)
    if invite is None or municipality.organisation(invite.organisation) is None:
        return "staff.invite.invalid"
    if invite.used_at is not None:
        return "staff.invite.used"
    if invite.expires_at <= now:
        return "staff.invite.expired"
    if not store.staff.use_invite(digest, chat.key, now):
        return "staff.invite.used"
    return invite


def chat_hash(chat: ChatRef) -> str:
    """A short stable hash of the chat id for logs: tries from one chat can be told apart, the id not read."""
    return hashlib.sha256(chat.key.encode()).hexdigest()[:12]
