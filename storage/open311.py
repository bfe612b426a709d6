"""`SqlOpen311` (the `Open311Store` port): API keys, what Open311 POSTs brought, and the public reads of
tickets and their changes. A page of `search` is four statements whatever its size: the tickets, then their
first photos, latest public notes and submitted links for those numbers only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, and_, func, insert, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError

from core.domain.tickets import Action, Status, TicketEvent
from core.ports import ApiKey, PublicTicket, PublicUpdate, RequestQuery, Submission
from storage.repository import Repository
from storage.rows import utc
from storage.tables import (
    open311_keys,
    open311_submissions,
    ticket_events,
    ticket_photos,
    tickets,
)

NOTE_ACTIONS = (Action.COMMENT.value, Action.RESOLVE.value, Action.REJECT.value)
"""Events whose text is meant for the resident, so public: staff comments, resolution comments, reasons."""
UPDATE_ACTIONS = tuple(a.value for a in Action if a not in (Action.OVERDUE, Action.PLACE))
"""What `servicerequestupdates` lists: every lifecycle change and public note (not internal flags)."""
PERSON_FIELDS = ("email", "first_name", "last_name", "phone", "device_id", "account_id")


def _key(r: Any) -> ApiKey:
    return ApiKey(
        name=r.name,
        can_write=bool(r.can_write),
        rate_per_minute=int(r.rate_per_minute),
        created_at=utc(r.created_at),  # type: ignore[arg-type]
        revoked_at=utc(r.revoked_at),
    )


def _event(r: Any) -> TicketEvent:
    return TicketEvent(
        action=Action(r.action),
        at=utc(r.at),  # type: ignore[arg-type]
        actor="",  # who did it is not public
        from_status=Status(r.from_status) if r.from_status else None,
        to_status=Status(r.to_status),
        comment=r.comment,
        photos=tuple(getattr(r, "photos", None) or ()),
        data=dict(r.data or {}),
    )


class SqlOpen311(Repository):
    # --- keys -------------------------------------------------------------------------------------------
    def add_key(self, key: ApiKey, key_hash: str) -> bool:
        if (
            self.conn.execute(select(open311_keys.c.name).where(open311_keys.c.name == key.name)).first()
            is not None
        ):
            return False
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(open311_keys).values(
                        name=key.name,
                        key_hash=key_hash,
                        can_write=key.can_write,
                        rate_per_minute=key.rate_per_minute,
                        created_at=key.created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = self.conn.execute(select(open311_keys).where(open311_keys.c.key_hash == key_hash)).first()
        return _key(row) if row is not None else None

    def keys(self) -> Sequence[ApiKey]:
        return [
            _key(r)
            for r in self.conn.execute(
                select(open311_keys).order_by(open311_keys.c.created_at, open311_keys.c.name)
            )
        ]

    def revoke_key(self, name: str, at: datetime) -> bool:
        done = self.conn.execute(
            update(open311_keys)
            .where(open311_keys.c.name == name, open311_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(open311_keys.c.name)
        ).first()
        return done is not None

    # --- submissions ------------------------------------------------------------------------------------
    def record(self, submission: Submission, at: datetime) -> None:
        self.conn.execute(
            insert(open311_submissions).values(
                ticket_number=submission.number,
                key_name=submission.key_name,
                media_url=submission.media_url,
                created_at=at,
                **{name: getattr(submission, name) for name in PERSON_FIELDS},
            )
        )

    def submission(self, number: int) -> Submission | None:
        r = self.conn.execute(
            select(open311_submissions).where(open311_submissions.c.ticket_number == number)
        ).first()
        if r is None:
            return None
        return Submission(
            number=r.ticket_number,
            key_name=r.key_name,
            media_url=r.media_url,
            **{name: getattr(r, name) for name in PERSON_FIELDS},
        )

    def forget_person(self, numbers: Sequence[int] = (), *, filed_before: datetime | None = None) -> int:
        if not numbers and filed_before is None:
            return 0
        s = open311_submissions.c
        which = s.ticket_number.in_(list(numbers)) if numbers else s.created_at < filed_before
        blank = dict.fromkeys(PERSON_FIELDS, "")
        return self.conn.execute(update(open311_submissions).where(which).values(**blank)).rowcount

    # --- public reads -----------------------------------------------------------------------------------
    def search(self, query: RequestQuery) -> Sequence[PublicTicket]:
        t = tickets.c
        moment = self._moment
        columns = (
            t.number, t.status, t.category_code, t.subcategory_code, t.description, t.organisation_code,
            moment(t.created_at), moment(t.updated_at), moment(t.deadline), t.address, t.lat, t.lon,
        )  # fmt: skip
        stmt = select(*columns)
        if query.numbers:
            stmt = stmt.where(t.number.in_(list(query.numbers)))
        else:
            if query.service_codes:
                codes = list(query.service_codes)
                # a subcategory code is a service; a category code selects its whole group
                stmt = stmt.where(or_(t.subcategory_code.in_(codes), t.category_code.in_(codes)))
            if query.start is not None:
                stmt = stmt.where(t.created_at >= query.start)
            if query.end is not None:
                stmt = stmt.where(t.created_at <= query.end)
            if query.statuses:
                stmt = stmt.where(t.status.in_(sorted(s.value for s in query.statuses)))
        newest_first = (t.created_at.desc(), t.number.desc())  # the index on created_at gives this order
        page = stmt.order_by(*newest_first).limit(query.limit).offset(query.offset)
        rows = list(self.conn.execute(page))
        if not rows:
            return []
        # The page again as a subquery rather than a list of 1,000 bound numbers: SQLAlchemy renders an
        # expanding IN anew on every call (≈ 5-10 ms a list), SQLite re-runs the page's index scan in ≈ 1 ms.
        numbers = select(page.subquery().c.number)
        first_photo = self._first_photos(numbers)
        notes = self._latest_notes(numbers)
        links = dict(
            self.conn.execute(
                select(open311_submissions.c.ticket_number, open311_submissions.c.media_url).where(
                    open311_submissions.c.ticket_number.in_(numbers)
                )
            ).all()
        )
        read = self._read_moment
        return [
            PublicTicket(
                number=r[0],
                status=Status(r[1]),
                category=r[2],
                subcategory=r[3],
                description=r[4],
                organisation=r[5],
                created_at=read(r[6]),  # type: ignore[arg-type]
                updated_at=read(r[7]),  # type: ignore[arg-type]
                deadline=read(r[8]),
                address=r[9],
                lat=r[10],
                lon=r[11],
                photo=first_photo.get(r[0]),
                media_url=links.get(r[0]) or "",
                note=notes.get(r[0]),
            )
            for r in rows
        ]

    def _moment(self, column: Any) -> Any:
        """On SQLite, a timestamp column read as its text: SQLAlchemy's SQLite DateTime parser costs ≈ 10 µs a
        value, `datetime.fromisoformat` a tenth of that — three per request, a thousand requests a page."""
        return type_coerce(column, String) if self.is_sqlite else column

    def _read_moment(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return utc(value)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def _first_photos(self, numbers: Any) -> dict[int, str]:
        first = (
            select(ticket_photos.c.ticket_number, func.min(ticket_photos.c.position).label("position"))
            .where(ticket_photos.c.ticket_number.in_(numbers), ticket_photos.c.kind == "report")
            .group_by(ticket_photos.c.ticket_number)
            .subquery()
        )
        rows = self.conn.execute(
            select(ticket_photos.c.ticket_number, ticket_photos.c.sha256).join(
                first,
                and_(
                    first.c.ticket_number == ticket_photos.c.ticket_number,
                    first.c.position == ticket_photos.c.position,
                ),
            )
        )
        return {r.ticket_number: r.sha256 for r in rows}

    def _latest_notes(self, numbers: Any) -> dict[int, TicketEvent]:
        latest = (
            select(func.max(ticket_events.c.id))
            .where(ticket_events.c.ticket_number.in_(numbers), ticket_events.c.action.in_(NOTE_ACTIONS))
            .group_by(ticket_events.c.ticket_number)
        )
        e = ticket_events.c
        rows = self.conn.execute(
            select(e.ticket_number, e.action, e.at, e.from_status, e.to_status, e.comment, e.data).where(
                e.id.in_(latest)
            )
        )
        return {r.ticket_number: _event(r) for r in rows}

    def updates(self, start: datetime, end: datetime, limit: int, offset: int) -> Sequence[PublicUpdate]:
        rows = self.conn.execute(
            select(ticket_events)
            .where(
                ticket_events.c.at >= start,
                ticket_events.c.at <= end,
                ticket_events.c.action.in_(UPDATE_ACTIONS),
            )
            .order_by(ticket_events.c.at, ticket_events.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [PublicUpdate(r.id, r.ticket_number, _event(r), Status(r.to_status)) for r in rows]
