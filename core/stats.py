"""City statistics (`otklik stats` and the web's dashboard), from aggregates the database computes.

Definitions (per organisation too, by the organisation a ticket is with now):
- first response: the earliest `take`, `comment`, `resolve` or `reject` by a staff member, from creation;
- resolution: the earliest `resolve`, from creation;
- resolved within deadline: of tickets resolved at least once and having a deadline, the share whose first
  resolution came by the deadline;
- rating: the mean of residents' ratings (`rate` events, the last valid one per ticket);
- reopen rate: of tickets resolved at least once, the share that residents reopened;
- overdue: tickets still waiting (new, assigned, in progress, reopened) past their deadline at `now`.
Durations are in hours; percentiles interpolate linearly between ranks (PostgreSQL's `percentile_cont`).

The storage (storage/web_store.py `SqlTicketSearch.stats`) reduces 100k tickets to a few hundred numbers in
SQL; this module only turns those numbers into the document both doors show, so the dashboard and
`otklik stats` cannot disagree. tests/stats_reference.py keeps the row-by-row definition the SQL is checked
against.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

RESPONSES = frozenset({"take", "comment", "resolve", "reject"})
NO_ORGANISATION = "—"
ALL = "*"
"""The group of every ticket, beside the organisations' groups, in `Figures.response`/`resolution`."""


@dataclass(frozen=True, slots=True)
class Counts:
    """Additive counts of one (organisation, status, category) group of tickets."""

    organisation: str
    status: str
    category: str
    total: int
    resolved: int
    with_deadline: int
    on_time: int
    reopened: int
    overdue: int


@dataclass(frozen=True, slots=True)
class Hours:
    count: int
    median: float | None
    p90: float | None


@dataclass(slots=True)
class Figures:
    """What the database answers for a filter: counts by group, ratings, percentiles and weekly series."""

    counts: list[Counts] = field(default_factory=list)
    ratings: dict[str, tuple[int, int]] = field(default_factory=dict)
    """organisation → (how many rated tickets, the sum of their ratings)."""
    response: dict[str, Hours] = field(default_factory=dict)
    """organisation (or ALL) → first-response hours."""
    resolution: dict[str, Hours] = field(default_factory=dict)
    weekly: dict[tuple[str, str], int] = field(default_factory=dict)
    """(Monday of the local week, ISO; category) → tickets created that week."""
    weekly_resolution: dict[str, float] = field(default_factory=dict)
    """Monday (ISO) → median resolution hours of the tickets created that week."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Of sorted `values`: linear interpolation between ranks, exactly as `percentile_cont` computes it."""
    if not values:
        return None
    k = (len(values) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


def hours_of(values: list[float]) -> Hours:
    """From unsorted values (SQLite's path: one narrow column, sorted here)."""
    values.sort()
    return Hours(len(values), percentile(values, 0.5), percentile(values, 0.9))


def _hours(h: Hours | None) -> dict[str, Any]:
    def r(x: float | None) -> float | None:
        return round(x, 2) if x is not None else None

    if h is None:
        return {"count": 0, "median": None, "p90": None}
    return {"count": h.count, "median": r(h.median), "p90": r(h.p90)}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _metrics(
    rows: list[Counts], rating: tuple[int, int], response: Hours | None, resolution: Hours | None
) -> dict[str, Any]:
    resolved = sum(c.resolved for c in rows)
    with_deadline = sum(c.with_deadline for c in rows)
    rated, total = rating
    return {
        "first_response_hours": _hours(response),
        "resolution_hours": _hours(resolution),
        "resolved_within_deadline": {
            "share": _share(sum(c.on_time for c in rows), with_deadline),
            "of": with_deadline,
        },
        "rating": {"count": rated, "mean": round(total / rated, 2) if rated else None},
        "reopen_rate": {"share": _share(sum(c.reopened for c in rows), resolved), "of": resolved},
        "overdue": sum(c.overdue for c in rows),
    }


def document(f: Figures) -> dict[str, Any]:
    """The statistics document (`otklik stats --json`, the dashboard's figures)."""
    by_status: dict[str, int] = defaultdict(int)
    by_category: dict[str, int] = defaultdict(int)
    by_org: dict[str, list[Counts]] = defaultdict(list)
    for c in f.counts:
        by_status[c.status] += c.total
        by_category[c.category] += c.total
        by_org[c.organisation].append(c)
    all_ratings = (sum(n for n, _ in f.ratings.values()), sum(s for _, s in f.ratings.values()))
    return {
        "total": sum(c.total for c in f.counts),
        "by_status": dict(sorted(by_status.items())),
        "by_category": dict(sorted(by_category.items())),
        "by_organisation": {org: sum(c.total for c in rows) for org, rows in sorted(by_org.items())},
        **_metrics(f.counts, all_ratings, f.response.get(ALL), f.resolution.get(ALL)),
        "organisations": {
            org: {
                "total": sum(c.total for c in rows),
                **_metrics(rows, f.ratings.get(org, (0, 0)), f.response.get(org), f.resolution.get(org)),
            }
            for org, rows in sorted(by_org.items())
        },
    }
