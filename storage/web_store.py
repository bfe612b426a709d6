"""The city's web over SQL: sign-in links and sessions (`WebLogins`), and the filtered ticket reads of the
map, the list, the exports and the dashboard (`TicketSearch`). Organisation scoping arrives as a filter and
is applied here, in the query, like every other condition."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
    update,
)

from core.domain.policy import WAITING
from core.ports import TicketFilter, TicketPoint, WebLink
from core.stats import ALL, NO_ORGANISATION, RESPONSES, Counts, Figures, Hours, hours_of, percentile
from storage.repository import Repository
from storage.rows import ticket_columns, utc
from storage.tables import (
    ticket_events,
    tickets,
    web_links,
    web_sessions,
)

POINT_COLUMNS = (
    tickets.c.number,
    tickets.c.status,
    tickets.c.category_code,
    tickets.c.subcategory_code,
    tickets.c.lat,
    tickets.c.lon,
    tickets.c.address,
    tickets.c.organisation_code,
    tickets.c.created_at,
    tickets.c.deadline,
    tickets.c.resolved_at,
    tickets.c.rating,
)


class SqlWebLogins(Repository):
    def create_link(self, token_hash: str, staff_id: int, at: datetime, expires_at: datetime) -> None:
        self.conn.execute(
            web_links.insert().values(
                token_hash=token_hash, staff_id=staff_id, created_at=at, expires_at=expires_at
            )
        )

    def find_link(self, token_hash: str) -> WebLink | None:
        row = self.conn.execute(
            select(web_links.c.staff_id, web_links.c.expires_at, web_links.c.used_at).where(
                web_links.c.token_hash == token_hash
            )
        ).first()
        if row is None:
            return None
        return WebLink(row.staff_id, utc(row.expires_at), utc(row.used_at))  # type: ignore[arg-type]

    def use_link(self, token_hash: str, at: datetime) -> bool:
        done = self.conn.execute(
            update(web_links)
            .where(web_links.c.token_hash == token_hash, web_links.c.used_at.is_(None))
            .values(used_at=at)
        )
        return done.rowcount == 1

    def open_session(self, token_hash: str, staff_id: int, at: datetime, expires_at: datetime) -> None:
        self.conn.execute(
            web_sessions.insert().values(
                token_hash=token_hash, staff_id=staff_id, created_at=at, expires_at=expires_at
            )
        )

    def session_staff(self, token_hash: str, now: datetime) -> int | None:
        return self.conn.execute(
            select(web_sessions.c.staff_id).where(
                web_sessions.c.token_hash == token_hash,
                web_sessions.c.ended_at.is_(None),
                web_sessions.c.expires_at > now,
            )
        ).scalar()

    def end_session(self, token_hash: str, at: datetime) -> None:
        self.conn.execute(
            update(web_sessions)
            .where(web_sessions.c.token_hash == token_hash, web_sessions.c.ended_at.is_(None))
            .values(ended_at=at)
        )

    def prune(self, before: datetime) -> int:
        links = self.conn.execute(delete(web_links).where(web_links.c.expires_at < before)).rowcount
        ended = (web_sessions.c.expires_at < before) | (web_sessions.c.ended_at < before)
        return links + self.conn.execute(delete(web_sessions).where(ended)).rowcount


def conditions(where: TicketFilter) -> list[Any]:
    c = tickets.c
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
        **ticket_columns(r), lat=r.lat, lon=r.lon, resolved_at=utc(r.resolved_at), rating=r.rating
    )


class SqlTicketSearch(Repository):
    def find(self, where: TicketFilter, limit: int, before: int | None = None) -> Sequence[TicketPoint]:
        query = select(*POINT_COLUMNS).where(*conditions(where))
        if before is not None:
            query = query.where(tickets.c.number < before)
        rows = self.conn.execute(query.order_by(tickets.c.number.desc()).limit(limit))
        return [_point(r) for r in rows]

    def markers(self, where: TicketFilter, now: datetime, limit: int) -> list[Any]:
        """The map's narrow read: only what a marker shows, the overdue mark computed in SQL, the cap in
        SQL (LIMIT), the bbox through the (lat, lon) index."""
        c = tickets.c
        overdue = _flag(and_(c.status.in_(WAITING_VALUES), c.deadline.is_not(None), c.deadline < now))
        query = (
            select(
                c.number,
                c.status,
                func.coalesce(c.subcategory_code, c.category_code),
                c.lat,
                c.lon,
                c.address,
                c.organisation_code,
                overdue,
            )
            .where(*conditions(where))
            .order_by(c.number.desc())
            .limit(limit)
        )
        return list(self.conn.execute(query).all())

    def count(self, where: TicketFilter) -> int:
        return int(
            self.conn.execute(select(func.count()).select_from(tickets).where(*conditions(where))).scalar()
            or 0
        )

    def stats(self, where: TicketFilter, now: datetime, timezone: str) -> Figures:
        """The statistics of the filtered tickets. The database reduces each ticket's history to a few
        columns in one grouped pass over the events that matter; PostgreSQL then aggregates everything
        (GROUP BY, `percentile_cont` over grouping sets), while on SQLite, whose GROUP BY sorts, one narrow
        per-ticket stream is counted here in a single pass (measured faster: bench/web.py)."""
        per = _per_ticket(where, self.is_sqlite, timezone)
        figures = Figures(ratings=self._ratings(where))
        c = per.c
        resolved = c.resolved.is_not(None)
        timed = and_(resolved, c.deadline.is_not(None))
        flags = (
            _flag(timed),
            _flag(and_(timed, c.resolved <= c.deadline)),
            _flag(and_(resolved, c.reopened == 1)),
            _flag(and_(c.status.in_(WAITING_VALUES), c.deadline.is_not(None), c.deadline < now)),
        )
        if self.is_sqlite:
            hours = _hours_sqlite(c.created_at, c.responded), _hours_sqlite(c.created_at, c.resolved)
            narrow = select(c.org, c.status, c.category, c.week, *hours, *flags)
            _count_here(self.conn.execute(narrow), figures)
            return figures
        self._aggregate_postgres(per, flags, figures)
        return figures

    def _ratings(self, where: TicketFilter) -> dict[str, tuple[int, int]]:
        """The last valid rating of each rated ticket (a forged "12" stored before ratings were checked
        counts for nothing), summed by organisation."""
        e = ticket_events.c
        score = e.data["rating"].as_string()
        valid = and_(func.length(score) <= 10, func.ltrim(score, "0").in_(["1", "2", "3", "4", "5"]))
        chosen = select(tickets.c.number).where(*conditions(where))
        last = (
            select(func.max(e.id).label("id"))
            .where(e.action == "rate", e.ticket_number.in_(chosen), valid, *_since(where))
            .group_by(e.ticket_number)
            .subquery("last_rating")
        )
        org = func.coalesce(tickets.c.organisation_code, NO_ORGANISATION)
        rows = self.conn.execute(
            select(org, func.count(), func.sum(cast(func.ltrim(score, "0"), Integer)))
            .select_from(
                last.join(ticket_events, ticket_events.c.id == last.c.id).join(
                    tickets, tickets.c.number == ticket_events.c.ticket_number
                )
            )
            .group_by(org)
        )
        return {o: (int(n), int(total)) for o, n, total in rows}

    def _aggregate_postgres(self, per: Any, flags: tuple[Any, ...], figures: Figures) -> None:
        """One statement, so the per-ticket history is computed once (a CTE read twice is materialised):
        the counts by GROUPING SETS (organisation, status, category) and (week, category), UNION ALL the
        percentiles (`percentile_cont`, which skips tickets without a value) by organisation, by week and for
        the city — percentiles only where they are shown, since each group sorts its values."""
        c = per.c
        response, resolution = _hours_pg(c.created_at, c.responded), _hours_pg(c.created_at, c.resolved)
        none_int, none_float = cast(None, BigInteger), cast(None, Float)
        counts = select(
            literal("c"),
            func.grouping(c.org, c.week),
            c.org,
            c.status,
            c.category,
            c.week,
            func.count(),
            func.count(c.resolved),
            *(func.sum(f) for f in flags),
            *(none_int, none_float, none_float) * 2,
        ).group_by(func.grouping_sets(tuple_(c.org, c.status, c.category), tuple_(c.week, c.category)))
        percentiles = select(
            literal("p"),
            func.grouping(c.org, c.week),
            c.org,
            cast(None, String),
            cast(None, String),
            c.week,
            *(none_int,) * 6,
            func.count(response),
            func.percentile_cont(0.5).within_group(response),
            func.percentile_cont(0.9).within_group(response),
            func.count(resolution),
            func.percentile_cont(0.5).within_group(resolution),
            func.percentile_cont(0.9).within_group(resolution),
        ).group_by(func.grouping_sets(c.org, c.week, literal_column("()")))
        rows = self.conn.execute(union_all(counts, percentiles))
        # grouping(org, week): 0b01 week left out, 0b10 organisation left out, 0b11 both.
        for kind, bits, org, status, category, week, total, done, *sums, n1, m1, p1, n2, m2, p2 in rows:
            if kind == "c" and bits == 0b01:
                figures.counts.append(Counts(org, status, category, total, done, *(int(x) for x in sums)))
            elif kind == "c":
                figures.weekly[(str(week), category)] = total
            elif bits == 0b10:
                if m2 is not None:
                    figures.weekly_resolution[str(week)] = m2
            else:
                group = org if bits == 0b01 else ALL
                if n1:
                    figures.response[group] = Hours(n1, m1, p1)
                if n2:
                    figures.resolution[group] = Hours(n2, m2, p2)


def _count_here(rows: Any, figures: Figures) -> None:
    """SQLite's path: one pass over (organisation, status, category, week, response hours, resolution
    hours, and the four 0/1 flags) per ticket; durations sorted here for the percentiles."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    response: dict[str, list[float]] = defaultdict(list)
    resolution: dict[str, list[float]] = defaultdict(list)
    by_week: dict[str, list[float]] = defaultdict(list)
    weekly: dict[tuple[str, str], int] = defaultdict(int)
    every_response, every_resolution = response[ALL], resolution[ALL]
    for org, status, category, week, responded, resolved, timed, on_time, reopened, overdue in rows:
        group = groups.get((org, status, category))
        if group is None:
            group = groups[(org, status, category)] = [0, 0, 0, 0, 0, 0]
        group[0] += 1
        group[2] += timed
        group[3] += on_time
        group[4] += reopened
        group[5] += overdue
        weekly[(week, category)] += 1
        if responded is not None:
            response[org].append(responded)
            every_response.append(responded)
        if resolved is not None:
            group[1] += 1
            resolution[org].append(resolved)
            every_resolution.append(resolved)
            by_week[week].append(resolved)
    figures.counts = [Counts(*key, *values) for key, values in groups.items()]
    figures.weekly = dict(weekly)
    figures.response = {g: hours_of(v) for g, v in response.items() if v}
    figures.resolution = {g: hours_of(v) for g, v in resolution.items() if v}
    figures.weekly_resolution = {w: percentile(sorted(v), 0.5) for w, v in by_week.items()}  # type: ignore[misc]


WAITING_VALUES = sorted(s.value for s in WAITING)
EPOCH_MONDAY = 345600
"""1970-01-05, the first Monday after the Unix epoch, in seconds: weeks are counted from it."""
WEEK = 7 * 86400


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _since(where: TicketFilter) -> list[Any]:
    """A ticket's events come after its creation: for a period, only the period's events are read (an index
    range on `at`), not every event of the city's history (PostgreSQL otherwise scans them all)."""
    return [ticket_events.c.at >= where.created_from] if where.created_from is not None else []


def _per_ticket(where: TicketFilter, sqlite: bool, timezone: str) -> Any:
    """One row per filtered ticket with what the statistics need of its history: the first staff response,
    the first resolution and whether it was reopened, from one grouped pass over those events only."""
    e = ticket_events.c
    chosen = select(tickets.c.number).where(*conditions(where))
    by_staff = func.substr(e.actor, 1, 6) == "staff:"
    history = (
        select(
            e.ticket_number,
            func.min(case((and_(e.action.in_(sorted(RESPONSES)), by_staff), e.at))).label("responded"),
            func.min(case((e.action == "resolve", e.at))).label("resolved"),
            func.max(case((e.action == "reopen", 1), else_=0)).label("reopened"),
        )
        .where(e.action.in_([*sorted(RESPONSES), "reopen"]), e.ticket_number.in_(chosen), *_since(where))
        .group_by(e.ticket_number)
        .subquery("history")
    )
    t = tickets.c
    return (
        select(
            func.coalesce(t.organisation_code, NO_ORGANISATION).label("org"),
            t.status,
            t.category_code.label("category"),
            t.created_at,
            t.deadline,
            _week(t.created_at, sqlite, timezone).label("week"),
            history.c.responded,
            history.c.resolved,
            func.coalesce(history.c.reopened, 0).label("reopened"),
        )
        .select_from(tickets.outerjoin(history, history.c.ticket_number == t.number))
        .where(*conditions(where))
        .cte("per")
    )


def _week(created: Any, sqlite: bool, timezone: str) -> Any:
    """The Monday (ISO date) of the city's local week a moment falls in."""
    if not sqlite:
        local = func.timezone(timezone, created)
        return func.to_char(func.date_trunc("week", local), "YYYY-MM-DD")
    # SQLite knows no time zones: the zone's UTC offsets, newest first, as a CASE over the stored UTC text.
    shifts = _offsets(timezone)
    offset: Any = literal_column(str(shifts[0][1]))
    if len(shifts) > 1:
        offset = case(*((created >= literal(since), literal_column(str(off))) for since, off in shifts[:-1]),
                      else_=literal_column(str(shifts[-1][1])))  # fmt: skip
    seconds = cast(func.strftime("%s", created), Integer) + offset - EPOCH_MONDAY
    monday = (seconds // WEEK) * WEEK + EPOCH_MONDAY
    return func.date(monday, "unixepoch")


@lru_cache(maxsize=8)
def _offsets(timezone: str) -> list[tuple[str, int]]:
    """(UTC moment the offset starts, as SQLite stores moments; offset in seconds), newest first, from 1990
    to 2050; the last one holds for everything earlier."""
    tz = ZoneInfo(timezone)

    def off(at: datetime) -> int:
        return int(at.astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]

    day = datetime(1990, 1, 1, tzinfo=UTC)
    found: list[tuple[str, int]] = []
    current = off(day)
    while day.year < 2050:
        following = day + timedelta(days=1)
        if off(following) != current:
            low, high = day, following  # the change lies in (low, high]: to the second
            while (high - low).total_seconds() > 1:
                middle = low + (high - low) / 2
                low, high = (middle, high) if off(middle) == current else (low, middle)
            high = high.replace(microsecond=0)
            if off(high) == current:
                high += timedelta(seconds=1)
            found.append((high.strftime("%Y-%m-%d %H:%M:%S.%f"), off(high)))  # as SQLite stores them
            current = off(high)
        day = following
    shifts = [(since, o) for since, o in reversed(found)]
    return [*shifts, ("", off(datetime(1990, 1, 1, tzinfo=UTC)))]


def _micros(moment: Any) -> Any:
    """A stored SQLite moment in whole microseconds since the epoch (exact, unlike julianday's float)."""
    return cast(func.strftime("%s", moment), Integer) * 1_000_000 + cast(func.substr(moment, 21), Integer)


def _hours_sqlite(start: Any, end: Any) -> Any:
    """`(end - start).total_seconds() / 3600` exactly as Python computes it (microseconds / 1e6, / 3600)."""
    return (_micros(end) - _micros(start)) / literal_column("1000000.0") / literal_column("3600.0")


def _hours_pg(start: Any, end: Any) -> Any:
    return cast(func.extract("epoch", end - start), Float) / literal_column("3600")
