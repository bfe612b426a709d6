"""`SqlResidents` (the `Residents` port): consent records, the `/mydata` export, `/forget` and retention.

A resident's personal data is their chat identity (channel, chat id, user id) wherever it is stored; no
resident names or phone numbers are kept (the dialogs never store them). `anonymise_tickets` is the ONE
place that blanks a ticket's author — `/forget`, `otklik residents forget` and retention all go through it —
so a ticket stays for the city's statistics and for the work in progress, names nobody, and notifies nobody
(an empty author channel has no sender). Each action is logged in `privacy_log` without the identity.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from core.domain.tickets import CLOSED_STATUSES
from core.messages import ChatRef
from core.ports import Consent
from storage.photo_gc import delete_if_unreferenced
from storage.repository import Repository
from storage.rows import utc
from storage.tables import (
    console_inbox,
    dialogs,
    outbox,
    privacy_log,
    residents,
    staff,
    staff_code_attempts,
    supporters,
    ticket_events,
    ticket_photos,
    tickets,
)

ANONYMOUS_ACTOR = "resident"
"""What a ticket's history says of a resident who left (was `resident:CHANNEL:CHAT`)."""
_SHA = re.compile(r"[0-9a-f]{64}")
CONSOLE = "console"


def removed_name(organisation: str) -> str:
    """How a removed staff member appears once retention has passed: their organisation, not their name."""
    return f"staff of {organisation}"


def _iso(moment: datetime | None) -> str | None:
    return utc(moment).isoformat() if moment is not None else None  # type: ignore[union-attr]


class SqlResidents(Repository):
    removed_photos: list[str]
    """Draft photos whose rows the last `forget` deleted: the caller removes their files after the commit
    (the CLI does it at once; otherwise the photo collector sweeps files without a row)."""

    def __init__(self, uow: Any) -> None:
        super().__init__(uow)
        self.removed_photos = []

    # --- consent -----------------------------------------------------------------------------------------
    def consent(self, chat: ChatRef) -> Consent | None:
        row = self.conn.execute(
            select(residents.c.consent, residents.c.consent_version, residents.c.consent_at).where(
                residents.c.channel == chat.channel, residents.c.chat_id == chat.chat_id
            )
        ).first()
        return Consent(bool(row.consent), row.consent_version, utc(row.consent_at)) if row else None  # type: ignore[arg-type]

    def record_consent(self, chat: ChatRef, agreed: bool, version: str, at: datetime) -> None:
        values = {"user_id": chat.user_id, "consent": agreed, "consent_version": version, "consent_at": at}
        where = (residents.c.channel == chat.channel, residents.c.chat_id == chat.chat_id)
        if not self.conn.execute(update(residents).where(*where).values(**values)).rowcount:
            self.conn.execute(
                insert(residents).values(channel=chat.channel, chat_id=chat.chat_id, created_at=at, **values)
            )

    # --- what is kept ------------------------------------------------------------------------------------
    def about(self, chat: ChatRef) -> dict[str, Any]:
        c = self.conn
        state_raw = c.execute(
            select(dialogs.c.state, dialogs.c.user_id, dialogs.c.updated_at).where(
                dialogs.c.channel == chat.channel, dialogs.c.chat_id == chat.chat_id
            )
        ).first()
        state = json.loads(state_raw.state) if state_raw and state_raw.state else {}
        consent = self.consent(chat)
        own = c.execute(
            select(tickets)
            .where(tickets.c.author_channel == chat.channel, tickets.c.author_chat_id == chat.chat_id)
            .order_by(tickets.c.number)
        ).all()
        numbers = [t.number for t in own]
        photos: dict[int, list[dict[str, Any]]] = {}
        for p in c.execute(
            select(ticket_photos)
            .where(ticket_photos.c.ticket_number.in_(numbers))
            .order_by(ticket_photos.c.ticket_number, ticket_photos.c.position)
        ):
            photos.setdefault(p.ticket_number, []).append(
                {"sha256": p.sha256, "kind": p.kind, "hidden": bool(p.hidden)}
            )
        history: dict[int, list[dict[str, Any]]] = {}
        for e in c.execute(
            select(ticket_events)
            .where(ticket_events.c.ticket_number.in_(numbers))
            .order_by(ticket_events.c.id)
        ):
            history.setdefault(e.ticket_number, []).append(
                {"action": e.action, "at": _iso(e.at), "status": e.to_status, "comment": e.comment}
            )
        supported = c.execute(
            select(supporters.c.ticket_number, supporters.c.language, supporters.c.created_at)
            .where(supporters.c.channel == chat.channel, supporters.c.chat_id == chat.chat_id)
            .order_by(supporters.c.ticket_number)
        ).all()
        waiting = c.execute(
            select(outbox.c.id).where(
                outbox.c.channel == chat.channel,
                outbox.c.chat_id == chat.chat_id,
                outbox.c.status == "pending",
            )
        ).all()
        member = c.execute(
            select(staff.c.organisation_code, staff.c.role, staff.c.name, staff.c.active).where(
                staff.c.channel == chat.channel, staff.c.user_id == (chat.user_id or chat.chat_id)
            )
        ).first()
        return {
            "chats": [
                {
                    "channel": chat.channel,
                    "chat_id": chat.chat_id,
                    "user_id": (state_raw.user_id if state_raw else "") or chat.user_id,
                    "last_message_at": _iso(state_raw.updated_at) if state_raw else None,
                }
            ],
            "language": state.get("lang"),
            "draft": state.get("slots") or None,
            "consent": (
                {"agreed": consent.agreed, "version": consent.version, "at": _iso(consent.at)}
                if consent
                else None
            ),
            "tickets": [
                {
                    "number": t.number,
                    "status": t.status,
                    "category": t.subcategory_code or t.category_code,
                    "created_at": _iso(t.created_at),
                    "address": t.address,
                    "lat": t.lat,
                    "lon": t.lon,
                    "description": t.description,
                    "rating": t.rating,
                    "photos": photos.get(t.number, []),
                    "history": history.get(t.number, []),
                }
                for t in own
            ],
            "supported_tickets": [
                {"number": s.ticket_number, "language": s.language, "since": _iso(s.created_at)}
                for s in supported
            ],
            "messages_waiting": len(waiting),
            "staff": (
                {"organisation": member.organisation_code, "role": member.role, "name": member.name}
                if member and member.active
                else None
            ),
        }

    # --- forgetting --------------------------------------------------------------------------------------
    def forget(self, chat: ChatRef, at: datetime, source: str) -> int:
        if self.is_sqlite:  # deleted rows are overwritten in the file, not left in free pages
            self.raw.execute("PRAGMA secure_delete = ON")
        try:
            return self._forget(chat, at, source)
        finally:
            if self.is_sqlite:
                self.raw.execute("PRAGMA secure_delete = OFF")

    def _forget(self, chat: ChatRef, at: datetime, source: str) -> int:
        c = self.conn
        where_dialog = (dialogs.c.channel == chat.channel, dialogs.c.chat_id == chat.chat_id)
        drafts = set()
        for state in c.execute(select(dialogs.c.state).where(*where_dialog)).scalars():
            drafts.update(_SHA.findall(state or ""))
        c.execute(delete(dialogs).where(*where_dialog))
        c.execute(
            delete(residents).where(residents.c.channel == chat.channel, residents.c.chat_id == chat.chat_id)
        )
        c.execute(
            delete(supporters).where(
                supporters.c.channel == chat.channel, supporters.c.chat_id == chat.chat_id
            )
        )
        c.execute(delete(outbox).where(outbox.c.channel == chat.channel, outbox.c.chat_id == chat.chat_id))
        c.execute(
            delete(staff_code_attempts).where(
                staff_code_attempts.c.channel == chat.channel, staff_code_attempts.c.chat_id == chat.chat_id
            )
        )
        if chat.channel == CONSOLE:
            c.execute(delete(console_inbox).where(console_inbox.c.chat_id == chat.chat_id))
        numbers = list(
            c.execute(
                select(tickets.c.number).where(
                    tickets.c.author_channel == chat.channel, tickets.c.author_chat_id == chat.chat_id
                )
            ).scalars()
        )
        self.anonymise_tickets(numbers)
        # Events the chat left on tickets it did not author ("me too", a verdict): the actor names it.
        c.execute(
            update(ticket_events)
            .where(ticket_events.c.actor == f"resident:{chat.key}")
            .values(actor=ANONYMOUS_ACTOR)
        )
        self.removed_photos = delete_if_unreferenced(self.uow, sorted(drafts))
        self.log("forget", source, chat.channel, len(numbers), at)
        return len(numbers)

    def anonymise_tickets(self, numbers: Sequence[int]) -> None:
        """The one way a ticket stops naming its author: blank author identity, anonymous history actor.
        The ticket keeps everything else (it still counts in `stats` and staff keep working on it); it
        notifies nobody afterwards, and staff see "resident left"."""
        if not numbers:
            return
        c = self.conn
        c.execute(
            update(tickets)
            .where(tickets.c.number.in_(numbers))
            .values(author_channel="", author_chat_id="", author_user_id="")
        )
        c.execute(
            update(ticket_events)
            .where(ticket_events.c.ticket_number.in_(numbers), ticket_events.c.actor.like("resident:%"))
            .values(actor=ANONYMOUS_ACTOR)
        )
        self.uow.open311.forget_person(numbers)  # a partner's resident: the person fields of a POST

    def anonymise_closed(self, before: datetime, at: datetime, limit: int) -> list[int]:
        c = self.conn
        numbers = list(
            c.execute(
                select(tickets.c.number)
                .where(
                    tickets.c.status.in_([s.value for s in CLOSED_STATUSES]),
                    tickets.c.updated_at < before,
                    tickets.c.author_channel != "",
                )
                .order_by(tickets.c.number)
                .limit(limit)
            ).scalars()
        )
        if not numbers:
            return []
        self.anonymise_tickets(numbers)
        c.execute(delete(supporters).where(supporters.c.ticket_number.in_(numbers)))
        self.log("retention", "timer", "", len(numbers), at)
        return numbers

    def prune_idle(self, before: datetime, at: datetime) -> int:
        c = self.conn
        c.execute(delete(outbox).where(outbox.c.status != "pending", outbox.c.created_at < before))
        c.execute(
            delete(console_inbox).where(
                console_inbox.c.read_at.is_not(None), console_inbox.c.created_at < before
            )
        )
        named = (
            select(tickets.c.number)
            .where(
                tickets.c.author_channel == dialogs.c.channel, tickets.c.author_chat_id == dialogs.c.chat_id
            )
            .exists()
        )
        supporting = (
            select(supporters.c.ticket_number)
            .where(supporters.c.channel == dialogs.c.channel, supporters.c.chat_id == dialogs.c.chat_id)
            .exists()
        )
        idle = c.execute(
            select(dialogs.c.channel, dialogs.c.chat_id).where(
                dialogs.c.updated_at < before, ~named, ~supporting
            )
        ).all()
        for chat in idle:
            where = (residents.c.channel == chat.channel, residents.c.chat_id == chat.chat_id)
            c.execute(delete(residents).where(*where))
            c.execute(
                delete(dialogs).where(dialogs.c.channel == chat.channel, dialogs.c.chat_id == chat.chat_id)
            )
        if idle:
            self.log("retention_idle", "timer", "", 0, at)
        return len(idle)

    def forget_removed_staff(self, before: datetime, at: datetime) -> int:
        c = self.conn
        gone = c.execute(
            select(staff.c.id, staff.c.organisation_code).where(
                staff.c.active.is_(False), staff.c.removed_at < before, ~staff.c.chat_id.like("removed-%")
            )
        ).all()
        for member in gone:
            label = removed_name(member.organisation_code)
            c.execute(
                update(staff)
                .where(staff.c.id == member.id)
                .values(name=label, chat_id=f"removed-{member.id}", user_id=f"removed-{member.id}")
            )
            for event in c.execute(
                select(ticket_events.c.id, ticket_events.c.data).where(
                    ticket_events.c.actor == f"staff:{member.id}"
                )
            ).all():
                data = dict(event.data or {})
                if "name" in data:
                    data["name"] = label
                    c.execute(update(ticket_events).where(ticket_events.c.id == event.id).values(data=data))
        if gone:
            self.log("staff_retention", "timer", "", 0, at)
        return len(gone)

    # --- photos ------------------------------------------------------------------------------------------
    def hide_photo(self, number: int, position: int, at: datetime, source: str) -> bool:
        positions = list(
            self.conn.execute(
                select(ticket_photos.c.position)
                .where(ticket_photos.c.ticket_number == number)
                .order_by(ticket_photos.c.position)
            ).scalars()
        )
        if not 1 <= position <= len(positions):
            return False
        sha = self.conn.execute(
            update(ticket_photos)
            .where(
                ticket_photos.c.ticket_number == number, ticket_photos.c.position == positions[position - 1]
            )
            .values(hidden=True)
            .returning(ticket_photos.c.sha256)
        ).scalar_one()
        self._unsend(sha)
        self.log("photo_hidden", source, "", 1, at)
        return True

    def _unsend(self, sha: str) -> None:
        """Take a hidden photo out of messages still waiting for residents (staff messages keep it)."""
        for row in self.conn.execute(
            select(outbox.c.id, outbox.c.payload).where(outbox.c.status == "pending")
        ):
            payload = dict(row.payload or {})
            if sha not in (payload.get("photos") or []) or (payload.get("extra") or {}).get("staff"):
                continue
            payload["photos"] = [p for p in payload["photos"] if p != sha]
            self.conn.execute(update(outbox).where(outbox.c.id == row.id).values(payload=payload))

    def log(self, action: str, source: str, channel: str, count: int, at: datetime) -> None:
        self.conn.execute(
            insert(privacy_log).values(action=action, source=source, channel=channel, tickets=count, at=at)
        )
