"""Reporting periods: a week, month, quarter, year or custom range of local days, as a
half-open interval of aware instants ``[start_at, end_at)`` in the committee's time zone."""

from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def start_at(self) -> datetime:
        return local_instant(self.first_day, 0, self.tz)

    @property
    def end_at(self) -> datetime:
        return local_instant(self.last_day, 1440, self.tz)

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
        """The ISO weeks (Monday first) that meet the period, each clipped to it:
        (Monday, start_at, end_at)."""
        monday = self.first_day - timedelta(days=self.first_day.weekday())
        out: list[tuple[date, datetime, datetime]] = []
        while monday <= self.last_day:
            a = max(monday, self.first_day)
            b = min(monday + timedelta(days=6), self.last_day)
            out.append((monday, local_instant(a, 0, self.tz), local_instant(b, 1440, self.tz)))
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
