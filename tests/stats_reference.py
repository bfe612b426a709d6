"""The reference definition of the city's statistics, row by row in Python: core/stats.py and the SQL of
storage/web_store.py must give exactly these figures (tests/storage/test_stats_sql.py checks it).

Definitions (per organisation too, by the organisation a ticket is with now):
- first response: the first `take`, `comment`, `resolve` or `reject` by a staff member, from creation;
- resolution: the first `resolve`, from creation;
- resolved within deadline: of tickets resolved at least once and having a deadline, the share whose first
  resolution came by the deadline;
- rating: the mean of residents' ratings (`rate` events, the last per ticket);
- reopen rate: of tickets resolved at least once, the share that residents reopened;
- overdue: tickets still waiting (new, assigned, in progress, reopened) past their deadline at `now`.
Durations are in hours; percentiles interpolate linearly between ranks.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from core.domain.policy import overdue as is_past_deadline
from core.parsing import parse_id

RESPONSES = frozenset({"take", "comment", "resolve", "reject"})


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(xs) - 1)
    return xs[low] + (xs[high] - xs[low]) * (k - low)


def _hours(values: Sequence[float]) -> dict[str, Any]:
    def r(x: float | None) -> float | None:
        return round(x, 2) if x is not None else None

    return {"count": len(values), "median": r(percentile(values, 0.5)), "p90": r(percentile(values, 0.9))}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _metrics(
    tickets: Iterable[Mapping[str, Any]], history: Mapping[int, list[Mapping[str, Any]]], now: datetime
) -> dict[str, Any]:
    response: list[float] = []
    resolution: list[float] = []
    on_time = with_deadline = resolved = reopened = overdue = 0
    ratings: list[int] = []
    for ticket in tickets:
        created: datetime = ticket["created_at"]
        deadline: datetime | None = ticket["deadline"]
        events = history.get(ticket["number"], [])
        first_response = next(
            (e["at"] for e in events if e["action"] in RESPONSES and str(e["actor"]).startswith("staff:")),
            None,
        )
        if first_response is not None:
            response.append((first_response - created).total_seconds() / 3600)
        first_resolve = next((e["at"] for e in events if e["action"] == "resolve"), None)
        if first_resolve is not None:
            resolved += 1
            resolution.append((first_resolve - created).total_seconds() / 3600)
            if deadline is not None:
                with_deadline += 1
                on_time += first_resolve <= deadline
            reopened += any(e["action"] == "reopen" for e in events)
        rated = (str(e["data"].get("rating", "")) for e in events if e["action"] == "rate")
        scores = [s for s in map(_score, rated) if s is not None]
        if scores:
            ratings.append(scores[-1])
        overdue += is_past_deadline(ticket["status"], deadline, now)
    return {
        "first_response_hours": _hours(response),
        "resolution_hours": _hours(resolution),
        "resolved_within_deadline": {"share": _share(on_time, with_deadline), "of": with_deadline},
        "rating": {"count": len(ratings), "mean": round(sum(ratings) / len(ratings), 2) if ratings else None},
        "reopen_rate": {"share": _share(reopened, resolved), "of": resolved},
        "overdue": overdue,
    }


def compute(
    tickets: Sequence[Mapping[str, Any]], events: Iterable[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    history: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        history[event["number"]].append(event)
    by_org: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for ticket in tickets:
        by_org[ticket["organisation"] or "—"].append(ticket)
    return {
        "total": len(tickets),
        "by_status": dict(sorted(Counter(t["status"] for t in tickets).items())),
        "by_category": dict(sorted(Counter(t["category"] for t in tickets).items())),
        "by_organisation": {org: len(rows) for org, rows in sorted(by_org.items())},
        **_metrics(tickets, history, now),
        "organisations": {
            org: {"total": len(rows), **_metrics(rows, history, now)} for org, rows in sorted(by_org.items())
        },
    }


def _score(text: str) -> int | None:
    """A stored rating; one outside 1–5 (a forged rating button) counts for nothing."""
    return parse_id(text, maximum=5)


def rows(store: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every ticket (the fields statistics need) and every event, read plainly, for `compute`."""
    from sqlalchemy import select

    from storage.rows import utc
    from storage.tables import ticket_events
    from storage.tables import tickets as ticket_rows

    t, e = ticket_rows.c, ticket_events.c
    tickets = [
        {
            "number": r.number,
            "status": r.status,
            "category": r.category_code,
            "organisation": r.organisation_code,
            "created_at": utc(r.created_at),
            "deadline": utc(r.deadline),
        }
        for r in store.conn.execute(
            select(t.number, t.status, t.category_code, t.organisation_code, t.created_at, t.deadline)
        )
    ]
    events = [
        {
            "number": r.ticket_number,
            "action": r.action,
            "at": utc(r.at),
            "actor": r.actor,
            "data": r.data or {},
        }
        for r in store.conn.execute(select(e.ticket_number, e.action, e.at, e.actor, e.data).order_by(e.id))
    ]
    return tickets, events


def weekly(
    tickets: Sequence[Mapping[str, Any]], events: Iterable[Mapping[str, Any]], tz: Any
) -> dict[str, Any]:
    """The dashboard's weekly series, row by row: tickets per local week (Monday first) by category, and the
    median resolution hours of each week's tickets."""
    from datetime import timedelta

    def week_of(moment: datetime) -> Any:
        day = moment.astimezone(tz).date()
        return day - timedelta(days=day.weekday())

    resolved: dict[int, datetime] = {}
    for e in events:
        if e["action"] == "resolve" and e["number"] not in resolved:
            resolved[e["number"]] = e["at"]
    counts: Counter[tuple[Any, str]] = Counter()
    hours: dict[Any, list[float]] = defaultdict(list)
    for t in tickets:
        week = week_of(t["created_at"])
        counts[(week, t["category"])] += 1
        if (done := resolved.get(t["number"])) is not None:
            hours[week].append((done - t["created_at"]).total_seconds() / 3600)
    # Every week from the first to the last, counted by walking the calendar (the spans here are short).
    weeks = []
    if counts:
        week, last = min(w for w, _ in counts), max(w for w, _ in counts)
        while week <= last:
            weeks.append(week)
            week += timedelta(weeks=1)
    by_category: dict[str, list[int]] = {}
    for category in sorted({c for _, c in counts}):
        by_category[category] = [counts[(w, category)] for w in weeks]
    medians = [percentile(hours[w], 0.5) if hours.get(w) else None for w in weeks]
    return {
        "weeks": [str(w) for w in weeks],
        "by_category": by_category,
        "resolution_median": [None if m is None else round(m, 1) for m in medians],
    }
