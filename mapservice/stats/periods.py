"""Reporting periods: a week, month, quarter, year or custom range of local days, as a
half-open interval of aware instants ``[start_at, end_at)`` in the committee's time zone.

A period counted "as of" an instant (:meth:`Period.until`) ends there if that instant falls
before its last day is over: the figures of a month in progress are those of its days so far,
not of weeks that have not happened."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mapservice.core.opening import local_instant

KINDS = ("week", "month", "quarter", "year", "custom")
#: The longest custom period accepted (a little over two years).
MAX_DAYS = 800


@dataclass(frozen=True)
class Period:
    """Local days ``first_day``..``last_day`` inclusive in ``tz``."""

    kind: str
    first_day: date
    last_day: date
    tz: ZoneInfo
    #: Counting stops here (now, for a period in progress); None: the whole period.
    until_at: datetime | None = None

    @property
    def start_at(self) -> datetime:
        return local_instant(self.first_day, 0, self.tz)

    @property
    def calendar_end_at(self) -> datetime:
        """The end of the period's last day, whether or not it has come."""
        return local_instant(self.last_day, 1440, self.tz)

    @property
    def end_at(self) -> datetime:
        """Where counting ends: the period's end, or ``until_at`` if that comes first (the
        start for a period that has not begun: nothing is counted)."""
        end = self.calendar_end_at
        if self.until_at is None:
            return end
        return max(self.start_at, min(end, self.until_at))

    def until(self, at: datetime) -> Period:
        """This period counted as of ``at`` (an aware instant): only its part before ``at``."""
        return replace(self, until_at=at if self.until_at is None else min(at, self.until_at))

    @property
    def in_progress(self) -> bool:
        """Counting stops inside the period: its later part has not happened yet."""
        return self.start_at < self.end_at < self.calendar_end_at

    @property
    def not_started(self) -> bool:
        """Counting stops at or before the period's start: nothing of it has happened."""
        return self.end_at <= self.start_at

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.first_day:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.first_day.year} Q{(self.first_day.month - 1) // 3 + 1}"
        if self.kind == "year":
            return f"{self.first_day.year}"
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"

    def shifted(self, steps: int) -> Period:
        """The period of the same kind ``steps`` before (negative) or after this one."""
        if self.kind == "custom":
            delta = timedelta(days=self.days * steps)
            return Period("custom", self.first_day + delta, self.last_day + delta, self.tz)
        if self.kind == "week":
            return period_for("week", self.first_day + timedelta(weeks=steps), self.tz)
        months = {"month": 1, "quarter": 3, "year": 12}[self.kind] * steps
        y, m = divmod(self.first_day.month - 1 + months, 12)
        return period_for(self.kind, date(self.first_day.year + y, m + 1, 1), self.tz)

    def weeks(self) -> list[tuple[date, datetime, datetime]]:
        """The ISO weeks (Monday first) that meet the counted part of the period, each
        clipped to it: (Monday, start_at, end_at). A week that has not begun is left out."""
        monday = self.first_day - timedelta(days=self.first_day.weekday())
        end = self.end_at
        out: list[tuple[date, datetime, datetime]] = []
        while monday <= self.last_day:
            a = local_instant(max(monday, self.first_day), 0, self.tz)
            if a >= end:
                break
            b = local_instant(min(monday + timedelta(days=6), self.last_day), 1440, self.tz)
            out.append((monday, a, min(b, end)))
            monday += timedelta(weeks=1)
        return out


def period_for(kind: str, anchor: date, tz: ZoneInfo, *, last_day: date | None = None) -> Period:
    """The period of ``kind`` containing ``anchor`` (for ``custom``: ``anchor``..``last_day``).

    Raises ValueError for an unknown kind, a custom range ending before it starts, or one
    longer than :data:`MAX_DAYS`.
    """
    if kind == "week":
        first = anchor - timedelta(days=anchor.weekday())
        return Period(kind, first, first + timedelta(days=6), tz)
    if kind == "month":
        first = anchor.replace(day=1)
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return Period(kind, first, nxt - timedelta(days=1), tz)
    if kind == "quarter":
        first = date(anchor.year, 3 * ((anchor.month - 1) // 3) + 1, 1)
        nxt = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
        return Period(kind, first, nxt - timedelta(days=1), tz)
    if kind == "year":
        return Period(kind, date(anchor.year, 1, 1), date(anchor.year, 12, 31), tz)
    if kind == "custom":
        end = last_day or anchor
        if end < anchor:
            raise ValueError("the period ends before it starts")
        if (end - anchor).days + 1 > MAX_DAYS:
            raise ValueError(f"a custom period is at most {MAX_DAYS} days")
        return Period(kind, anchor, end, tz)
    raise ValueError(f"unknown period kind {kind!r}")
