"""Opening hours in local wall-clock time, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mapservice.core.hours import parse_hours
from mapservice.core.opening import is_open_throughout, local_instant, open_minutes

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    "day, minutes, utc_hour",
    [
        (date(2025, 3, 29), 9 * 60, 9),  # GMT
        (date(2025, 3, 30), 9 * 60, 8),  # BST: 09:00 local stays 09:00 local
        (date(2025, 10, 26), 9 * 60, 9),  # back to GMT
    ],
)
def test_wall_clock_is_kept(day, minutes, utc_hour):
    assert local_instant(day, minutes, LONDON).astimezone(UTC).hour == utc_hour


def test_skipped_and_repeated_hours():
    skipped = local_instant(date(2025, 3, 30), 90, LONDON)  # 01:30 does not exist
    assert (skipped.hour, skipped.minute) == (2, 30)
    repeated = local_instant(date(2025, 10, 26), 90, LONDON)  # 01:30 happens twice: the first
    assert repeated.astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)


def test_a_day_lasts_what_the_clock_really_ran():
    always = parse_hours("Mon-Sun 00:00-24:00")
    spring = open_minutes(
        always,
        [],
        local_instant(date(2025, 3, 30), 0, LONDON),
        local_instant(date(2025, 3, 31), 0, LONDON),
        LONDON,
    )
    autumn = open_minutes(
        always,
        [],
        local_instant(date(2025, 10, 26), 0, LONDON),
        local_instant(date(2025, 10, 27), 0, LONDON),
        LONDON,
    )
    assert (spring, autumn) == (23 * 60, 25 * 60)


def test_open_across_midnight_and_closures():
    tz = ZoneInfo("Asia/Shanghai")
    hours = parse_hours("Fri 18:00-24:00; Sat 00:00-02:00")
    start, end = datetime(2026, 11, 27, 23, tzinfo=tz), datetime(2026, 11, 28, 1, tzinfo=tz)
    assert is_open_throughout(hours, [], start, end, tz)
    closure = [(datetime(2026, 11, 28, 0, 30, tzinfo=tz), datetime(2026, 11, 28, 0, 45, tzinfo=tz))]
    assert not is_open_throughout(hours, closure, start, end, tz)
