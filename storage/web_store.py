"""The city's web over SQL: sign-in links and sessions (`WebLogins`), and the filtered ticket reads of the
map, the list, the exports and the dashboard (`TicketSearch`). Organisation scoping arrives as a filter and
is applied here, in the query, like every other condition."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from core.domain.policy import WAITING
from core.domain.tickets import Status
from core.ports import TicketFilter, TicketPoint, WebLink
from core.stats import RESPONSES
from storage.repository import Repository
from storage.rows import utc
from storage.tables import TicketEventRow, TicketRow, WebLinkRow, WebSessionRow

links_t = WebLinkRow.__table__
sessions_t = WebSessionRow.__table__
tickets_t = TicketRow.__table__
events_t = TicketEventRow.__table__

STATS_ACTIONS = (*RESPONSES, "reopen", "rate")
"""The events core/stats.py reads (first response, resolution, reopen, rating): the others are not loaded."""
POINT_COLUMNS = (
    tickets_t.c.number,
    tickets_t.c.status,
    tickets_t.c.category_code,
    tickets_t.c.subcategory_code,
    tickets_t.c.lat,
    tickets_t.c.lon,
    tickets_t.c.address,
    tickets_t.c.organisation_code,
    tickets_t.c.created_at,
    tickets_t.c.deadline,
    tickets_t.c.resolved_at,
    tickets_t.c.rating,
)


class SqlWebLogins(Repository):
    def create_link(self, token_hash: str, staff_id: int, at: datetime, expires_at: datetime) -> None:
        self.conn.execute(
            links_t.insert().values(
                token_hash=token_hash, staff_id=staff_id, created_at=at, expires_at=expires_at
            )
        )

    def find_link(self, token_hash: str) -> WebLink | None:
        row = self.conn.execute(
            select(links_t.c.staff_id, links_t.c.expires_at, links_t.c.used_at).where(
                links_t.c.token_hash == token_hash
            )
        ).first()
        if row is None:
            return None
        return WebLink(row.staff_id, utc(row.expires_at), utc(row.used_at))  # type: ignore[arg-type]

    def use_link(self, token_hash: str, at: datetime) -> bool:
        done = self.conn.execute(
            update(links_t)
            .where(links_t.c.token_hash == token_hash, links_t.c.used_at.is_(None))
            .values(used_at=at)
        )
        return done.rowcount == 1

    def open_session(self, token_hash: str, staff_id: int, at: datetime, expires_at: datetime) -> None:
        self.conn.execute(
            sessions_t.insert().values(
                token_hash=token_hash, staff_id=staff_id, created_at=at, expires_at=expires_at
            )
        )

    def session_staff(self, token_hash: str, now: datetime) -> int | None:
        return self.conn.execute(
            select(sessions_t.c.staff_id).where(
                sessions_t.c.token_hash == token_hash,
                sessions_t.c.ended_at.is_(None),
                sessions_t.c.expires_at > now,
            )
        ).scalar()

    def end_session(self, token_hash: str, at: datetime) -> None:
        self.conn.execute(
            update(sessions_t)
            .where(sessions_t.c.token_hash == token_hash, sessions_t.c.ended_at.is_(None))
            .values(ended_at=at)
        )

    def prune(self, before: datetime) -> int:
        links = self.conn.execute(delete(links_t).where(links_t.c.expires_at < before)).rowcount
        ended = (sessions_t.c.expires_at < before) | (sessions_t.c.ended_at < before)
        return links + self.conn.execute(delete(sessions_t).where(ended)).rowcount


def conditions(where: TicketFilter) -> list[Any]:
    c = tickets_t.c
    found: list[Any] = []
    if where.statuses:
        found.append(c.status.in_(where.statuses))
    if where.categories:
        found.append(or_(c.category_code.in_(where.categories), c.subcategory_code.in_(where.categories)))
    if where.organisations:
        found.append(c.organisation_code.in_(where.organisations))
    if where.created_from is not None:
        found.append(c.created_at >= where.created_from)
    if where.created_to is not None:
        found.append(c.created_at < where.created_to)
    if where.overdue_at is not None:
        found += [c.status.in_([s.value for s in WAITING]), c.deadline < where.overdue_at]
    if where.bbox is not None:
        b = where.bbox
        found += [c.lat.between(b.south, b.north), c.lon.between(b.west, b.east)]
    return found


def _point(r: Any) -> TicketPoint:
    return TicketPoint(
        number=r.number,
        status=Status(r.status),
        category=r.category_code,
        subcategory=r.subcategory_code,
        lat=r.lat,
        lon=r.lon,
        address=r.address,
        organisation=r.organisation_code,
        created_at=utc(r.created_at),  # type: ignore[arg-type]
        deadline=utc(r.deadline),
        resolved_at=utc(r.resolved_at),
        rating=r.rating,
    )


class SqlTicketSearch(Repository):
    def find(self, where: TicketFilter, limit: int, before: int | None = None) -> Sequence[TicketPoint]:
        query = select(*POINT_COLUMNS).where(*conditions(where))
        if before is not None:
            query = query.where(tickets_t.c.number < before)
        rows = self.conn.execute(query.order_by(tickets_t.c.number.desc()).limit(limit))
        return [_point(r) for r in rows]

    def count(self, where: TicketFilter) -> int:
        return int(
            self.conn.execute(select(func.count()).select_from(tickets_t).where(*conditions(where))).scalar()
            or 0
        )

    def stats_rows(self, where: TicketFilter) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        chosen = select(tickets_t.c.number).where(*conditions(where))
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
                )
                .where(*conditions(where))
                .order_by(tickets_t.c.number)
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
                )
                .where(events_t.c.ticket_number.in_(chosen), events_t.c.action.in_(STATS_ACTIONS))
                .order_by(events_t.c.id)
            )
        ]
        return ticket_rows, event_rows
