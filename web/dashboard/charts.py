"""The dashboard's series, from the same rows `otklik stats` computes over: reports per week by category,
and the median resolution time per week (by the week the ticket was created)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.stats import percentile


def week_of(moment: datetime, tz: ZoneInfo) -> date:
    day = moment.astimezone(tz).date()
    return day - timedelta(days=day.weekday())


def weekly(
    tickets: Sequence[Mapping[str, Any]], events: Iterable[Mapping[str, Any]], tz: ZoneInfo
) -> dict[str, Any]:
    resolved: dict[int, datetime] = {}
    for e in events:
        if e["action"] == "resolve" and e["number"] not in resolved:
            resolved[e["number"]] = e["at"]
    counts: Counter[tuple[date, str]] = Counter()
    hours: dict[date, list[float]] = defaultdict(list)
    for t in tickets:
        week = week_of(t["created_at"], tz)
        counts[(week, t["category"])] += 1
        if (done := resolved.get(t["number"])) is not None:
            hours[week].append((done - t["created_at"]).total_seconds() / 3600)
    weeks = sorted({w for w, _ in counts})
    if weeks:  # every week of the span, empty ones too, so the axis is time
        span = (weeks[-1] - weeks[0]).days // 7
        weeks = [weeks[0] + timedelta(days=7 * i) for i in range(min(span, 520) + 1)]
    categories = sorted({c for _, c in counts})
    return {
        "weeks": [w.isoformat() for w in weeks],
        "by_category": {c: [counts.get((w, c), 0) for w in weeks] for c in categories},
        "resolution_median": [
            round(m, 1) if (m := percentile(hours.get(w, []), 0.5)) is not None else None for w in weeks
        ],
    }
