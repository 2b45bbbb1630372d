"""The calendar the service works in: dates and instants read from people (URLs, forms, API
bodies) are refused outside :data:`MIN_YEAR`–:data:`MAX_YEAR`, so that a week view, a period
or a window computed from them (a day before 0001-01-01, a week after 9999-12-31) never
overflows Python's calendar. Out of range raises :class:`ValueError`, as a malformed value does:
every reader already answers that with its field's message."""

from __future__ import annotations

from datetime import date, datetime

MIN_YEAR = 1900
MAX_YEAR = 2199


class OutOfCalendar(ValueError):
    """A well-formed date or time outside the years the service works in."""


def _check(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise OutOfCalendar(f"year {year} is outside {MIN_YEAR}-{MAX_YEAR}")


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` within the calendar."""
    day = date.fromisoformat(text)
    _check(day.year)
    return day


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date and time (naive or with an offset) within the calendar."""
    instant = datetime.fromisoformat(text)
    _check(instant.year)
    return instant


def in_calendar(value: date | datetime) -> bool:
    return MIN_YEAR <= value.year <= MAX_YEAR
