"""The dashboard's series, from the same aggregates `otklik stats` uses: reports per week by category, and
the median resolution time per week (by the week the ticket was created), weeks being the city's local
weeks (Monday first) as the database grouped them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from core.stats import Figures


def weekly(figures: Figures) -> dict[str, Any]:
    counts = {(date.fromisoformat(w), c): n for (w, c), n in figures.weekly.items()}
    medians = {date.fromisoformat(w): m for w, m in figures.weekly_resolution.items()}
    weeks = sorted({w for w, _ in counts})
    if weeks:  # every week of the span, empty ones too, so the axis is time
        span = (weeks[-1] - weeks[0]).days // 7
        weeks = [weeks[0] + timedelta(days=7 * i) for i in range(min(span, 520) + 1)]
    categories = sorted({c for _, c in counts})
    return {
        "weeks": [w.isoformat() for w in weeks],
        "by_category": {c: [counts.get((w, c), 0) for w in weeks] for c in categories},
        "resolution_median": [round(m, 1) if (m := medians.get(w)) is not None else None for w in weeks],
    }
