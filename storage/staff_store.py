"""The staff side of the `Store` port (issue 3): staff identities, invites, ticket changes, queues, timers,
and outbox rows. A mixin of `storage.store.SqlStore`, so it runs on the same connection and transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update

from core.domain.policy import WAITING
from core.domain.tickets import Status, Ticket
from core.messages import ChatRef, Reply
from core.ports import Invite, NewStaff, StaffMember, TicketSummary
from storage.outbox import encode_reply
from storage.rows import SUPPORTERS, ticket_summary, utc
from storage.tables import (
    OutboxRow,
    StaffCodeAttemptRow,
    StaffInviteRow,
    StaffRow,
    TicketEventRow,
    TicketPhotoRow,
    TicketRow,
)

staff_t = StaffRow.__table__
invites_t = StaffInviteRow.__table__
code_attempts_t = StaffCodeAttemptRow.__table__
outbox_t = OutboxRow.__table__
tickets_t = TicketRow.__table__
photos_t = TicketPhotoRow.__table__
events_t = TicketEventRow.__table__


TICKET_COLUMNS = {
    "status": "status",
    "updated_at": "updated_at",
    "organisation": "organisation_code",
    "taken_by": "taken_by",
    "resolved_at": "resolved_at",
    "rating": "rating",
    "overdue_notified": "overdue_notified",
    "lat": "lat",
    "lon": "lon",
    "address": "address",
    "location_source": "location_source",
}


def staff_ident(chat: ChatRef) -> str:
    """Staff are people: the platform user, or the chat where the platform has no separate user id."""
    return chat.user_id or chat.chat_id


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


class StaffStore:
    conn: Any
    is_sqlite: bool

    # --- outbox ------------------------------------------------------------------------------------------
    def enqueue(self, reply: Reply, at: datetime) -> None:
        """An outbox row for `reply.chat`, committed (or rolled back) with the change that caused it."""
        if reply.chat is None:
            raise ValueError("an outbox message needs a recipient (Reply.chat)")
        self.conn.execute(
            insert(outbox_t),
            {
                "channel": reply.chat.channel,
                "chat_id": reply.chat.chat_id,
                "user_id": reply.chat.user_id,
                "payload": encode_reply(reply),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
                "last_error": "",
            },
        )

    # --- invites and staff -------------------------------------------------------------------------------
    def create_invite(self, invite: Invite, code_hash: str) -> None:
        self.conn.execute(
            insert(invites_t),
            {
                "code_hash": code_hash,
                "organisation_code": invite.organisation,
                "role": invite.role,
                "created_at": invite.created_at,
                "expires_at": invite.expires_at,
            },
        )

    def find_invite(self, code_hash: str) -> Invite | None:
        query = select(invites_t).where(invites_t.c.code_hash == code_hash)
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
            update(invites_t)
            .where(invites_t.c.code_hash == code_hash, invites_t.c.used_at.is_(None))
            .values(used_at=at, used_by=by)
            .returning(invites_t.c.code_hash)
        ).first()
        return used is not None

    def staff_code_failures(self, chat: ChatRef, since: datetime) -> Sequence[datetime]:
        a = code_attempts_t
        rows = self.conn.execute(
            select(a.c.at)
            .where(a.c.channel == chat.channel, a.c.chat_id == chat.chat_id, a.c.at > since)
            .order_by(a.c.at)
        )
        return [utc(at) for (at,) in rows]  # type: ignore[misc]

    def record_staff_code_failure(self, chat: ChatRef, at: datetime, forget_before: datetime) -> None:
        self.conn.execute(delete(code_attempts_t).where(code_attempts_t.c.at < forget_before))
        self.conn.execute(
            insert(code_attempts_t), {"channel": chat.channel, "chat_id": chat.chat_id, "at": at}
        )

    def bind_staff(self, member: NewStaff) -> StaffMember:
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
        where = (staff_t.c.channel == member.chat.channel, staff_t.c.user_id == ident)
        existing = self.conn.execute(select(staff_t.c.id).where(*where)).scalar()
        if existing is None:
            self.conn.execute(insert(staff_t), {"channel": member.chat.channel, "user_id": ident, **values})
        else:
            self.conn.execute(update(staff_t).where(*where).values(values))
        row = self.conn.execute(select(staff_t).where(*where)).first()
        return _member(row)

    def get_staff(self, chat: ChatRef) -> StaffMember | None:
        row = self.conn.execute(
            select(staff_t).where(
                staff_t.c.channel == chat.channel,
                staff_t.c.user_id == staff_ident(chat),
                staff_t.c.active.is_(True),
            )
        ).first()
        return _member(row) if row is not None else None

    def staff_by_id(self, staff_id: int) -> StaffMember | None:
        row = self.conn.execute(select(staff_t).where(staff_t.c.id == staff_id)).first()
        return _member(row) if row is not None else None

    def staff_of(self, organisation: str) -> Sequence[StaffMember]:
        rows = self.conn.execute(
            select(staff_t)
            .where(staff_t.c.organisation_code == organisation, staff_t.c.active.is_(True))
            .order_by(staff_t.c.id)
        )
        return [_member(r) for r in rows]

    def dispatchers(self) -> Sequence[StaffMember]:
        rows = self.conn.execute(
            select(staff_t)
            .where(staff_t.c.role == "dispatcher", staff_t.c.active.is_(True))
            .order_by(staff_t.c.id)
        )
        return [_member(r) for r in rows]

    def all_staff(self, *, removed: bool = False) -> Sequence[StaffMember]:
        """Active staff; with `removed`, also those whose access was ended."""
        query = select(staff_t).order_by(staff_t.c.id)
        if not removed:
            query = query.where(staff_t.c.active.is_(True))
        return [_member(r) for r in self.conn.execute(query)]

    def find_staff(self, person: str) -> list[StaffMember]:
        """`otklik staff remove PERSON`: a numeric staff id, or `channel:id` with the platform's user or
        chat id (as `staff list` shows it). Removed people too; active ones first."""
        if person.isascii() and person.isdigit() and len(person) <= 18:
            member = self.staff_by_id(int(person))
            return [member] if member is not None else []
        channel, _, ident = person.partition(":")
        if not channel or not ident:
            return []
        rows = self.conn.execute(
            select(staff_t)
            .where(
                staff_t.c.channel == channel,
                (staff_t.c.user_id == ident) | (staff_t.c.chat_id == ident),
            )
            .order_by(staff_t.c.active.desc(), staff_t.c.id)
        )
        return [_member(r) for r in rows]

    def remove_staff(self, staff_id: int, at: datetime) -> int:
        row = self.conn.execute(
            update(staff_t)
            .where(staff_t.c.id == staff_id, staff_t.c.active.is_(True))
            .values(active=False, removed_at=at)
            .returning(staff_t.c.channel, staff_t.c.chat_id)
        ).first()
        if row is None:
            return 0
        pending = self.conn.execute(
            select(outbox_t.c.id, outbox_t.c.payload).where(
                outbox_t.c.channel == row.channel,
                outbox_t.c.chat_id == row.chat_id,
                outbox_t.c.status == "pending",
            )
        ).all()
        as_staff = [r.id for r in pending if (r.payload.get("extra") or {}).get("staff") == str(staff_id)]
        if as_staff:  # what they would have been told as residents (their own reports) still goes out
            self.conn.execute(
                update(outbox_t)
                .where(outbox_t.c.id.in_(as_staff))
                .values(status="dropped", last_error="staff access removed")
            )
        return len(as_staff)

    def tickets_held_by(self, staff_id: int) -> list[int]:
        """Tickets in progress that this person took: their colleagues can still resolve or reject them."""
        return list(
            self.conn.execute(
                select(tickets_t.c.number)
                .where(tickets_t.c.taken_by == staff_id, tickets_t.c.status == Status.IN_PROGRESS.value)
                .order_by(tickets_t.c.number)
            ).scalars()
        )

    def set_staff_language(self, staff_id: int, language: str) -> None:
        self.conn.execute(update(staff_t).where(staff_t.c.id == staff_id).values(language=language))

    # --- ticket changes ----------------------------------------------------------------------------------
    def lock_ticket(self, number: int) -> Ticket | None:
        if not self.is_sqlite:  # SQLite: the single writer already serialises every transaction
            locked = self.conn.execute(
                select(tickets_t.c.number).where(tickets_t.c.number == number).with_for_update()
            ).first()
            if locked is None:
                return None
        return self.get_ticket(number)  # type: ignore[attr-defined, no-any-return]

    def update_ticket(self, number: int, expected: Status, changes: Mapping[str, Any]) -> bool:
        values = {TICKET_COLUMNS[key]: value for key, value in changes.items()}
        if isinstance(values.get("status"), Status):
            values["status"] = values["status"].value
        done = self.conn.execute(
            update(tickets_t)
            .where(tickets_t.c.number == number, tickets_t.c.status == expected.value)
            .values(values)
            .returning(tickets_t.c.number)
        ).first()
        return done is not None

    def add_ticket_photos(self, number: int, photos: Sequence[str], kind: str) -> None:
        if not photos:
            return
        last = self.conn.execute(
            select(func.max(photos_t.c.position)).where(photos_t.c.ticket_number == number)
        ).scalar()
        start = -1 if last is None else int(last)
        self.conn.execute(
            insert(photos_t),
            [
                {"ticket_number": number, "position": start + 1 + i, "sha256": sha, "kind": kind}
                for i, sha in enumerate(photos)
            ],
        )

    def ticket_photos_of_kind(self, number: int, kind: str) -> tuple[str, ...]:
        return tuple(
            self.conn.execute(
                select(photos_t.c.sha256)
                .where(photos_t.c.ticket_number == number, photos_t.c.kind == kind)
                .order_by(photos_t.c.position)
            ).scalars()
        )

    # --- queues and timers -------------------------------------------------------------------------------
    def queue(self, organisations: Sequence[str], now: datetime, limit: int) -> Sequence[TicketSummary]:
        deadline = tickets_t.c.deadline
        overdue = case((deadline < now, 0), else_=1)
        rows = self.conn.execute(
            select(tickets_t, SUPPORTERS)
            .where(
                tickets_t.c.organisation_code.in_(list(organisations)),
                tickets_t.c.status.in_(sorted(s.value for s in WAITING)),
            )
            .order_by(overdue, SUPPORTERS.desc(), deadline.is_(None), deadline, tickets_t.c.number)
            .limit(limit)
        )
        return [ticket_summary(r) for r in rows]

    def tickets_to_autoclose(self, resolved_before: datetime, limit: int) -> Sequence[int]:
        return list(
            self.conn.execute(
                select(tickets_t.c.number)
                .where(
                    tickets_t.c.status == Status.RESOLVED.value, tickets_t.c.resolved_at <= resolved_before
                )
                .order_by(tickets_t.c.number)
                .limit(limit)
            ).scalars()
        )

    def tickets_newly_overdue(self, now: datetime, limit: int) -> Sequence[int]:
        return list(
            self.conn.execute(
                select(tickets_t.c.number)
                .where(
                    tickets_t.c.status.in_(sorted(s.value for s in WAITING)),
                    tickets_t.c.deadline < now,
                    tickets_t.c.overdue_notified.is_(False),
                )
                .order_by(tickets_t.c.number)
                .limit(limit)
            ).scalars()
        )

    # --- statistics --------------------------------------------------------------------------------------
    def stats_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every ticket (the fields statistics need) and every event, for `core.stats`."""
        ticket_rows = [
            {
                "number": r.number,
                "status": r.status,
                "category": r.category_code,
                "organisation": r.organisation_code,
                "created_at": utc(r.created_at),
                "deadline": utc(r.deadline),
                "rating": r.rating,
            }
            for r in self.conn.execute(
                select(
                    tickets_t.c.number,
                    tickets_t.c.status,
                    tickets_t.c.category_code,
                    tickets_t.c.organisation_code,
                    tickets_t.c.created_at,
                    tickets_t.c.deadline,
                    tickets_t.c.rating,
                ).order_by(tickets_t.c.number)
            )
        ]
        event_rows = [
            {
                "number": r.ticket_number,
                "action": r.action,
                "at": utc(r.at),
                "actor": r.actor,
                "data": dict(r.data or {}),
            }
            for r in self.conn.execute(
                select(
                    events_t.c.ticket_number,
                    events_t.c.action,
                    events_t.c.at,
                    events_t.c.actor,
                    events_t.c.data,
                ).order_by(events_t.c.id)
            )
        ]
        return ticket_rows, event_rows
