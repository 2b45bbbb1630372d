"""When a venue is open: weekly opening ranges in the committee's local time, minus closures.

All instants are timezone-aware; intervals are half-open ``[start, end)``. Weekly ranges are
wall-clock times in the venue's zone, so a range keeps its local time across a daylight-saving
change (09:00 stays 09:00); a wall-clock time that does not exist (the skipped hour) is moved
forward, one that exists twice takes its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from mapservice.core.hours import OpeningRange

Interval = tuple[datetime, datetime]


def local_instant(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The instant of ``minutes`` after local midnight on ``day`` (1440 = next midnight)."""
    day, minutes = day + timedelta(days=minutes // 1440), minutes % 1440
    naive = datetime.combine(day, time(minutes // 60, minutes % 60))
    aware = naive.replace(tzinfo=tz)  # fold=0: the first of two repeated wall-clock times
    normal = aware.astimezone(UTC).astimezone(tz)
    # A skipped wall-clock time comes back later (01:30 → 02:30): that is the instant we use.
    return normal if normal.replace(tzinfo=None) != naive else aware


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union of intervals; touching ones are joined."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(intervals: Sequence[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus the union of ``holes``."""
    result = list(intervals)
    for h_start, h_end in merge(holes):
        nxt: list[Interval] = []
        for start, end in result:
            if h_end <= start or end <= h_start:
                nxt.append((start, end))
                continue
            if start < h_start:
                nxt.append((start, h_start))
            if h_end < end:
                nxt.append((h_end, end))
        result = nxt
    return result


def open_intervals(
    ranges: Sequence[OpeningRange],
    closures: Iterable[Interval],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> list[Interval]:
    """The open intervals inside ``[start, end)``: weekly ranges on each local day, merged,
    clipped to the window, minus closures. Returned in UTC (format them with ``astimezone``)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("aware datetimes required")
    if end <= start:
        return []
    by_day: dict[int, list[OpeningRange]] = {}
    for r in ranges:
        by_day.setdefault(r.weekday, []).append(r)
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    pieces: list[Interval] = []
    # Work in UTC: Python compares and subtracts two datetimes of the same zone by their wall
    # clocks, which is wrong across a clock change (a 23- or 25-hour day).
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    while day <= last:
        for r in by_day.get(day.weekday(), []):
            a = local_instant(day, r.start_min, tz).astimezone(UTC)
            b = local_instant(day, r.end_min, tz).astimezone(UTC)
            a, b = max(a, start), min(b, end)
            if a < b:
                pieces.append((a, b))
        day += timedelta(days=1)
    return subtract(merge(pieces), [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in closures])


def day_open_intervals(
    ranges: Sequence[OpeningRange], closures: Iterable[Interval], day: date, tz: ZoneInfo
) -> list[Interval]:
    """The open intervals of one local day (midnight to midnight in ``tz``), in UTC."""
    return open_intervals(
        ranges, closures, local_instant(day, 0, tz), local_instant(day, 1440, tz), tz
    )


def is_open_throughout(
    ranges: Sequence[OpeningRange],
    closures: Iterable[Interval],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> bool:
    """True when the venue is open for the whole of ``[start, end)``."""
    got = open_intervals(ranges, closures, start, end, tz)
    return len(got) == 1 and got[0][0] <= start and got[0][1] >= end


@lru_cache(maxsize=4096)
def weekday_spans(ranges: tuple[OpeningRange, ...]) -> dict[int, tuple[tuple[int, int], ...]]:
    """Each weekday's opening ranges (minutes after midnight) merged, touching ones joined."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for r in ranges:
        by_day.setdefault(r.weekday, []).append((r.start_min, r.end_min))
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for day, spans in by_day.items():
        merged: list[tuple[int, int]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out[day] = tuple(merged)
    return out


_MINUTE = timedelta(minutes=1)


class LocalWindow(NamedTuple):
    """A window within one local day whose clock does not change that day: its weekday and
    its wall-clock start and end after local midnight."""

    weekday: int
    start: timedelta
    end: timedelta


@lru_cache(maxsize=1024)
def local_window(timezone: str, start: datetime, end: datetime) -> LocalWindow | None:
    """``[start, end)`` as a :class:`LocalWindow` in ``timezone``, or None when it is not one
    (it crosses midnight, or the clock changes that day). Kept for the last windows asked
    (a search asks it of each weekly pattern of its candidates, all in a zone or two)."""
    tz = ZoneInfo(timezone)
    ls, le = start.astimezone(tz), end.astimezone(tz)
    day = ls.date()
    midnight = datetime.combine(day, time(), tzinfo=tz)
    next_midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    offset = ls.utcoffset()
    if not (
        start < end
        and le <= next_midnight
        and midnight.utcoffset() == offset == le.utcoffset() == next_midnight.utcoffset()
    ):
        return None
    wall = midnight.replace(tzinfo=None)
    return LocalWindow(
        day.weekday(), ls.replace(tzinfo=None) - wall, le.replace(tzinfo=None) - wall
    )


def spans_cover(spans: dict[int, tuple[tuple[int, int], ...]], window: LocalWindow) -> bool:
    """Whether one of the window's weekday's merged spans (:func:`weekday_spans`) holds it:
    wall clock and instants differ by one offset that day, so this is
    :func:`is_open_throughout`'s answer for weekly hours alone."""
    return any(
        s * _MINUTE <= window.start and e * _MINUTE >= window.end
        for s, e in spans.get(window.weekday, ())
    )


def is_open_weekly(
    ranges: Sequence[OpeningRange],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    spans: dict[int, tuple[tuple[int, int], ...]] | None = None,
) -> bool:
    """:func:`is_open_throughout` without closures: a window within one local day whose clock
    does not change that day is decided on that weekday's merged ranges (``spans``, the
    ranges' :func:`weekday_spans` when the caller keeps them), any other in full."""
    window = local_window(tz.key, start, end) if tz.key else None
    if window is None:
        return is_open_throughout(ranges, (), start, end, tz)
    return spans_cover(spans if spans is not None else weekday_spans(tuple(ranges)), window)


def open_minutes(
    ranges: Sequence[OpeningRange],
    closures: Iterable[Interval],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> float:
    """Open time inside ``[start, end)`` in minutes (real elapsed time, so a 09:00–21:00 day
    with a clock change counts what the clock really ran)."""
    return sum(
        (b - a).total_seconds() / 60 for a, b in open_intervals(ranges, closures, start, end, tz)
    )


def opening_week(
    ranges: Sequence[OpeningRange],
    closures: Iterable[Interval],
    first_day: date,
    tz: ZoneInfo,
    days: int = 7,
) -> list[tuple[date, list[Interval]]]:
    """For each of ``days`` local days from ``first_day``: the open intervals of that day
    (weekly hours minus closures), as aware datetimes in ``tz``."""
    closures = list(closures)
    out: list[tuple[date, list[Interval]]] = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        opens = day_open_intervals(ranges, closures, day, tz)
        out.append((day, [(a.astimezone(tz), b.astimezone(tz)) for a, b in opens]))
    return out
