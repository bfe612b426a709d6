"""Working days and ticket deadlines (DESIGN.md §5: SLAs are counted in working days).

A working day is Monday–Friday unless it is a Russian public holiday or a day off transferred by government
decree, plus the Saturdays/Sundays that a decree made working days. The `holidays` package knows all three
for Russia (holidays, observed/transferred days off, `weekend_workdays`); its data ends where published
decrees end, after which only the fixed public holidays are known.

A deadline is the end of a day in the municipality's own time zone: residents and staff read "until
Tuesday" as local Tuesday, and a report sent on Friday night in Irkutsk may already be Saturday there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

COUNTRY = "RU"
END_OF_DAY = time(23, 59, 59)


@lru_cache(maxsize=64)
def _year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(days off on weekdays or weekends, weekend days made working) declared for `year`; building the
    `holidays` calendar is slow enough to do once per year."""
    calendar = holidays.country_holidays(COUNTRY, years=year)
    return frozenset(calendar), frozenset(calendar.weekend_workdays)


def is_working_day(day: date) -> bool:
    """Whether organisations work on this (local) date."""
    if isinstance(day, datetime):  # a datetime is a date too; its date part is meant
        day = day.date()
    if day.weekday() >= 5:
        # A decree for one year may move work onto a weekend of the neighbouring year; look at all three.
        return any(day in _year(year)[1] for year in (day.year - 1, day.year, day.year + 1))
    return day not in _year(day.year)[0]


@lru_cache(maxsize=1024)
def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day after `start` (`start` itself never counts; 0 → `start`). Kept: every ticket
    filed on one day asks for the same few (one per SLA), and walking the calendar day by day is most of the
    cost of filing one in Python (issue 17)."""
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


def deadline(created_at: datetime, sla_days: int, timezone: str) -> datetime:
    """When a ticket created at `created_at` becomes overdue: 23:59:59 local time of the `sla_days`-th working
    day after the local creation day, returned in UTC. The creation day never counts, so a report filed at
    23:50 gets the same time as one filed at 00:10 the same day."""
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise ValueError("created_at must be timezone-aware")
    if sla_days < 0:
        raise ValueError(f"sla_days must not be negative, got {sla_days}")
    zone = ZoneInfo(timezone)
    local_day = created_at.astimezone(zone).date()
    due_day = add_working_days(local_day, sla_days)
    return datetime.combine(due_day, END_OF_DAY, tzinfo=zone).astimezone(UTC)
