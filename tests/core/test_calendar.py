"""Working days and deadlines: weekends, Russian holidays and transfers, the municipality's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.domain.calendar import add_working_days, deadline, is_working_day

IRKUTSK = "Asia/Irkutsk"  # UTC+8, no daylight saving


def irkutsk(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A local Irkutsk time, as the UTC instant the rest of the code passes around."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(IRKUTSK)).astimezone(UTC)


def end_of_irkutsk_day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 15, 59, 59, tzinfo=UTC)  # 23:59:59 at UTC+8


def test_across_a_weekend() -> None:
    created = irkutsk(2026, 10, 15)  # Thursday
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2026, 10, 16)  # Friday
    assert deadline(created, 3, IRKUTSK) == end_of_irkutsk_day(2026, 10, 20)  # Fri, Mon, Tue


def test_result_is_utc() -> None:
    result = deadline(irkutsk(2026, 10, 15), 1, IRKUTSK)
    assert result.tzinfo is UTC
    assert result.utcoffset() == timedelta(0)


def test_across_new_year_holidays_2027() -> None:
    # 31 Dec 2026 is a transferred day off, 1–8 Jan 2027 are holidays, 9–10 Jan a weekend.
    created = irkutsk(2026, 12, 30)  # Wednesday
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2027, 1, 11)
    assert deadline(created, 2, IRKUTSK) == end_of_irkutsk_day(2027, 1, 12)
    assert not any(is_working_day(date(2027, 1, d)) for d in range(1, 11))
    assert is_working_day(date(2027, 1, 11))


def test_defender_day_with_a_working_saturday_2027() -> None:
    # Decree: Saturday 20 Feb 2027 is worked, Monday 22 Feb is off instead; 23 Feb is the holiday.
    created = irkutsk(2027, 2, 19)  # Friday
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2027, 2, 20)
    assert deadline(created, 2, IRKUTSK) == end_of_irkutsk_day(2027, 2, 24)


def test_womens_day_2027() -> None:
    created = irkutsk(2027, 3, 5)  # Friday; 8 March 2027 is a Monday
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2027, 3, 9)


def test_may_holidays_2027_falling_on_weekends_move_to_mondays() -> None:
    # 1 May 2027 is a Saturday → 3 May off; 9 May a Sunday → 10 May off.
    assert deadline(irkutsk(2027, 4, 30), 1, IRKUTSK) == end_of_irkutsk_day(2027, 5, 4)
    assert deadline(irkutsk(2027, 4, 30), 5, IRKUTSK) == end_of_irkutsk_day(2027, 5, 11)
    assert deadline(irkutsk(2027, 5, 7), 1, IRKUTSK) == end_of_irkutsk_day(2027, 5, 11)


def test_may_holidays_2026() -> None:
    # 1 May 2026 is a Friday; 9 May a Saturday → 11 May off.
    assert deadline(irkutsk(2026, 4, 30), 1, IRKUTSK) == end_of_irkutsk_day(2026, 5, 4)
    assert deadline(irkutsk(2026, 5, 8), 1, IRKUTSK) == end_of_irkutsk_day(2026, 5, 12)


def test_friday_evening() -> None:
    created = irkutsk(2026, 10, 16, 20, 0)  # Friday 20:00 local
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2026, 10, 19)  # Monday
    late = irkutsk(2026, 10, 16, 23, 59)
    assert deadline(late, 1, IRKUTSK) == end_of_irkutsk_day(2026, 10, 19)


def test_creation_day_is_the_local_day() -> None:
    # 2026-12-04 20:00 UTC is Friday in UTC but already Saturday 04:00 in Irkutsk.
    created = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2026, 12, 7)  # Monday, local end of day
    assert deadline(created, 0, IRKUTSK) == end_of_irkutsk_day(2026, 12, 5)  # the local creation day
    # Sunday 20:00 UTC is Monday 04:00 in Irkutsk: Monday does not count, Tuesday is the first day.
    sunday_utc = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    assert deadline(sunday_utc, 1, IRKUTSK) == end_of_irkutsk_day(2026, 12, 8)
    # The same instant in Moscow is still Sunday 23:00: Monday is the first working day.
    assert deadline(sunday_utc, 1, "Europe/Moscow") == datetime(2026, 12, 7, 20, 59, 59, tzinfo=UTC)


def test_non_utc_input_is_accepted() -> None:
    created = datetime(2026, 10, 15, 10, 0, tzinfo=ZoneInfo(IRKUTSK))
    assert deadline(created, 1, IRKUTSK) == end_of_irkutsk_day(2026, 10, 16)


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(datetime(2026, 10, 15, 10, 0), 1, IRKUTSK)


def test_negative_sla_is_rejected() -> None:
    with pytest.raises(ValueError):
        deadline(irkutsk(2026, 10, 15), -1, IRKUTSK)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 10, 14), True),  # ordinary Wednesday
        (date(2026, 10, 17), False),  # ordinary Saturday
        (date(2026, 1, 9), False),  # Friday made a day off (transferred from 3 Jan)
        (date(2026, 2, 23), False),
        (date(2026, 3, 9), False),  # 8 March 2026 is a Sunday → Monday off
        (date(2026, 6, 12), False),
        (date(2026, 11, 4), False),
        (date(2027, 2, 20), True),  # Saturday made a working day
        (date(2024, 11, 2), True),  # Saturday made a working day
        (date(2027, 11, 5), False),  # Friday made a day off (transferred from 2 Jan)
        (datetime(2027, 2, 20, 12, 0), True),  # a datetime means its date
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_add_working_days() -> None:
    assert add_working_days(date(2026, 10, 16), 0) == date(2026, 10, 16)
    assert add_working_days(date(2026, 10, 16), 1) == date(2026, 10, 19)
    assert add_working_days(date(2026, 10, 17), 5) == date(2026, 10, 23)
