"""`SqlStaff`: staff identities, invites and wrong-code attempts (the `Staff` port)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from core.messages import ChatRef
from core.ports import Invite, NewStaff, StaffMember
from storage import pg_session
from storage.repository import Repository
from storage.rows import utc
from storage.tables import (
    outbox,
    staff,
    staff_code_attempts,
    staff_invites,
)

# Built once: a staff lookup runs in every ticket change (who gets the card), and building the statement and
# its cache key cost as much CPU as running it (issue 17).
ACTIVE_STAFF = select(staff).where(staff.c.active.is_(True)).order_by(staff.c.id)
DISPATCHERS = ACTIVE_STAFF.where(staff.c.role == "dispatcher")
STAFF_BY_ID = select(staff).where(staff.c.id == bindparam("id"))
STAFF_OF = (
    "SELECT id, channel, chat_id, user_id, organisation_code, role, name, language, removed_at FROM staff "
    "WHERE active AND organisation_code = {} ORDER BY id"
)
"""Who gets a ticket's card, on every change of a ticket: on SQLite through the raw cursor (SQLAlchemy's
execution cost several times SQLite's work), on PostgreSQL in one round trip with what the change held back
(its events; storage/pg_session.py)."""
SQLITE_STAFF_OF = STAFF_OF.format("?")
PG_STAFF_OF = STAFF_OF.format("%s")
ACTIVE_STAFF_BY_USER = select(staff).where(
    staff.c.channel == bindparam("channel"), staff.c.user_id == bindparam("user_id"), staff.c.active.is_(True)
)


def staff_ident(chat: ChatRef) -> str:
    """Staff are people: the platform user, or the chat where the platform has no separate user id."""
    return chat.user_id or chat.chat_id


def _at(value: datetime | str | None) -> datetime | None:
    """A timestamp as the raw cursor gives it: SQLite's text (UTC, as SQLAlchemy wrote it)."""
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _member(row: Any) -> StaffMember:
    return StaffMember(
        id=int(row.id),
        chat=ChatRef(row.channel, row.chat_id, row.user_id),
        organisation=row.organisation_code,
        role=row.role,
        name=row.name,
        language=row.language,
        removed_at=utc(row.removed_at),
    )


class SqlStaff(Repository):
    def create_invite(self, invite: Invite, code_hash: str) -> None:
        self.conn.execute(
            insert(staff_invites),
            {
                "code_hash": code_hash,
                "organisation_code": invite.organisation,
                "role": invite.role,
                "created_at": invite.created_at,
                "expires_at": invite.expires_at,
            },
        )

    def find_invite(self, code_hash: str) -> Invite | None:
        query = select(staff_invites).where(staff_invites.c.code_hash == code_hash)
        if not self.is_sqlite:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            return None
        return Invite(
            organisation=row.organisation_code,
            role=row.role,
            created_at=utc(row.created_at),  # type: ignore[arg-type]
            expires_at=utc(row.expires_at),  # type: ignore[arg-type]
            used_at=utc(row.used_at),
        )

    def use_invite(self, code_hash: str, by: str, at: datetime) -> bool:
        used = self.conn.execute(
            update(staff_invites)
            .where(staff_invites.c.code_hash == code_hash, staff_invites.c.used_at.is_(None))
            .values(used_at=at, used_by=by)
            .returning(staff_invites.c.code_hash)
        ).first()
        return used is not None

    def code_failures(self, chat: ChatRef, since: datetime) -> Sequence[datetime]:
        a = staff_code_attempts
        rows = self.conn.execute(
            select(a.c.at)
            .where(a.c.channel == chat.channel, a.c.chat_id == chat.chat_id, a.c.at > since)
            .order_by(a.c.at)
        )
        return [utc(at) for (at,) in rows]  # type: ignore[misc]

    def record_code_failure(self, chat: ChatRef, at: datetime, forget_before: datetime) -> None:
        self.conn.execute(delete(staff_code_attempts).where(staff_code_attempts.c.at < forget_before))
        self.conn.execute(
            insert(staff_code_attempts), {"channel": chat.channel, "chat_id": chat.chat_id, "at": at}
        )

    def bind(self, member: NewStaff) -> StaffMember:
        ident = staff_ident(member.chat)
        values = {
            "chat_id": member.chat.chat_id,
            "organisation_code": member.organisation,
            "role": member.role,
            "name": member.name,
            "language": member.language,
            "active": True,
            "joined_at": member.at,
            "removed_at": None,  # invited again after a removal
        }
        where = (staff.c.channel == member.chat.channel, staff.c.user_id == ident)
        existing = self.conn.execute(select(staff.c.id).where(*where)).scalar()
        if existing is None:
            self.conn.execute(insert(staff), {"channel": member.chat.channel, "user_id": ident, **values})
        else:
            self.conn.execute(update(staff).where(*where).values(values))
        row = self.conn.execute(select(staff).where(*where)).first()
        return _member(row)

    def get(self, chat: ChatRef) -> StaffMember | None:
        row = self.conn.execute(
            ACTIVE_STAFF_BY_USER, {"channel": chat.channel, "user_id": staff_ident(chat)}
        ).first()
        return _member(row) if row is not None else None

    def by_id(self, staff_id: int) -> StaffMember | None:
        row = self.conn.execute(STAFF_BY_ID, {"id": staff_id}).first()
        return _member(row) if row is not None else None

    def of(self, organisation: str) -> Sequence[StaffMember]:
        if self.is_sqlite:
            rows = self.raw.execute(SQLITE_STAFF_OF, (organisation,)).fetchall()
        else:
            rows = pg_session.query(self.conn, PG_STAFF_OF, (organisation,)).fetchall()
        return [
            StaffMember(
                number, ChatRef(channel, chat_id, user_id), org, role, name, language, _at(removed_at)
            )
            for number, channel, chat_id, user_id, org, role, name, language, removed_at in rows
        ]

    def dispatchers(self) -> Sequence[StaffMember]:
        return [_member(r) for r in self.conn.execute(DISPATCHERS)]

    def all(self, *, removed: bool = False) -> Sequence[StaffMember]:
        """Active staff; with `removed`, also those whose access was ended."""
        query = select(staff).order_by(staff.c.id)
        if not removed:
            query = query.where(staff.c.active.is_(True))
        return [_member(r) for r in self.conn.execute(query)]

    def find(self, person: str) -> list[StaffMember]:
        """`otklik staff remove PERSON`: a numeric staff id, or `channel:id` with the platform's user or
        chat id (as `staff list` shows it). Removed people too; active ones first."""
        if person.isascii() and person.isdigit() and len(person) <= 18:
            member = self.by_id(int(person))
            return [member] if member is not None else []
        channel, _, ident = person.partition(":")
        if not channel or not ident:
            return []
        rows = self.conn.execute(
            select(staff)
            .where(
                staff.c.channel == channel,
                (staff.c.user_id == ident) | (staff.c.chat_id == ident),
            )
            .order_by(staff.c.active.desc(), staff.c.id)
        )
        return [_member(r) for r in rows]

    def remove(self, staff_id: int, at: datetime) -> int:
        row = self.conn.execute(
            update(staff)
            .where(staff.c.id == staff_id, staff.c.active.is_(True))
            .values(active=False, removed_at=at)
            .returning(staff.c.channel, staff.c.chat_id)
        ).first()
        if row is None:
            return 0
        pending = self.conn.execute(
            select(outbox.c.id, outbox.c.payload).where(
                outbox.c.channel == row.channel,
                outbox.c.chat_id == row.chat_id,
                outbox.c.status == "pending",
            )
        ).all()
        as_staff = [r.id for r in pending if (r.payload.get("extra") or {}).get("staff") == str(staff_id)]
        if as_staff:  # what they would have been told as residents (their own reports) still goes out
            self.conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(as_staff))
                .values(status="dropped", last_error="staff access removed")
            )
        return len(as_staff)

    def set_language(self, staff_id: int, language: str) -> None:
        self.conn.execute(update(staff).where(staff.c.id == staff_id).values(language=language))
