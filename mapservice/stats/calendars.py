"""Open intervals of many venues at once, as numpy arrays of epoch seconds.

The same intervals as :func:`mapservice.core.opening.open_intervals` (weekly wall-clock ranges
on each local day, merged, clipped to the window, minus closures; daylight-saving aware), but
computed once per **calendar** instead of once per venue: venues with the same weekly ranges and
no closure share one calendar, each venue with a closure gets its own. A year of 10,000 venues
is a handful of calendars, built without a Python loop per day.

Local wall-clock times become instants the way :func:`mapservice.core.opening.local_instant`
does (fold 0): a time repeated by a clock change takes its first occurrence, a skipped one is
read with the offset before the change (01:30 in a skipped hour is 02:30). :class:`ZoneClock`
holds the zone's offsets over the window so that whole arrays convert at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

Ints = np.ndarray[Any, np.dtype[np.int64]]
DAY_S = 86400
#: 1970-01-01 was a Thursday (weekday 3, Monday = 0).
EPOCH_WEEKDAY = 3
_EPOCH_DAY = date(1970, 1, 1).toordinal()
#: Offsets are sampled this often before the exact instant of a change is searched for (no
#: zone changes its clock twice within 6 hours).
_SAMPLE_S = 6 * 3600


def _offset_at(tz: ZoneInfo, t: int) -> int:
    off = datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


@dataclass(frozen=True)
class ZoneClock:
    """A zone's UTC offsets between two instants: ``offsets[k]`` holds from ``changes[k-1]``
    (inclusive) to ``changes[k]`` (UTC epoch seconds)."""

    changes: Ints
    offsets: Ints

    @classmethod
    def build(cls, tz: ZoneInfo, lo: int, hi: int) -> ZoneClock:
        """The offsets of ``tz`` over UTC seconds ``[lo, hi]`` (widened by two days)."""
        lo, hi = lo - 2 * DAY_S, hi + 2 * DAY_S
        changes: list[int] = []
        offsets = [_offset_at(tz, lo)]
        t = lo
        while t < hi:
            nxt = min(t + _SAMPLE_S, hi)
            off = _offset_at(tz, nxt)
            if off != offsets[-1]:
                a, b = t, nxt  # offsets[-1] at a, off at b: find the first second of off
                while b - a > 1:
                    mid = (a + b) // 2
                    if _offset_at(tz, mid) == offsets[-1]:
                        a = mid
                    else:
                        b = mid
                changes.append(b)
                offsets.append(_offset_at(tz, b))
            t = nxt
        return cls(np.asarray(changes, dtype="int64"), np.asarray(offsets, dtype="int64"))

    def local(self, utc: Ints) -> Ints:
        """Wall-clock seconds (local time read as if it were UTC) of UTC instants."""
        return utc + self.offsets[np.searchsorted(self.changes, utc, side="right")]

    def instant(self, wall: Ints) -> Ints:
        """UTC instants of wall-clock seconds, fold 0 (as :func:`local_instant`): a change is
        reached, in wall-clock time, at the later of its two readings, so a repeated or
        skipped time is read with the offset before the change."""
        before, after = self.offsets[:-1], self.offsets[1:]
        walls = self.changes + np.maximum(before, after)
        return wall - self.offsets[np.searchsorted(walls, wall, side="right")]


@dataclass(frozen=True)
class OpenIntervals:
    """The open intervals of many venues, stored once per calendar.

    ``venue_ids[i]`` uses calendar ``calendar[i]``; the intervals ``[start, end)`` of calendar
    ``c`` are the rows where ``cal == c``, sorted by start and disjoint. Rows are sorted by
    (``cal``, ``start``)."""

    venue_ids: Ints
    calendar: Ints
    cal: Ints
    start: Ints
    end: Ints

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> OpenIntervals:
        """From one row per interval (``venue_id, start, end``; one venue's intervals disjoint):
        each venue its own calendar."""
        ordered = frame.sort_values(["venue_id", "start"], kind="stable")
        vids = ordered["venue_id"].to_numpy(dtype="int64")
        venues, code = np.unique(vids, return_inverse=True)
        return cls(
            venues.astype("int64"),
            np.arange(len(venues), dtype="int64"),
            code.astype("int64").reshape(-1),
            ordered["start"].to_numpy(dtype="int64"),
            ordered["end"].to_numpy(dtype="int64"),
        )

    @property
    def calendars(self) -> int:
        return int(self.calendar.max()) + 1 if len(self.calendar) else 0

    def seconds_by_calendar(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.bincount(self.cal, weights=self.end - self.start, minlength=self.calendars)

    def seconds_by_venue(self) -> pd.Series:
        """Open seconds of each venue (indexed by venue id; 0 for one never open)."""
        if not len(self.venue_ids):
            return pd.Series(dtype="int64")
        per_cal = self.seconds_by_calendar().round().astype("int64")
        return pd.Series(per_cal[self.calendar], index=self.venue_ids)

    def frame(self) -> pd.DataFrame:
        """One row per venue and interval (``venue_id, start, end``), in venue order."""
        counts = np.bincount(self.cal, minlength=self.calendars).astype("int64")
        first = np.cumsum(counts) - counts
        n = counts[self.calendar]
        rows = np.repeat(first[self.calendar], n) + _ranks(n)
        return pd.DataFrame(
            {
                "venue_id": np.repeat(self.venue_ids, n).astype("int64"),
                "start": self.start[rows].astype("int64"),
                "end": self.end[rows].astype("int64"),
            }
        )


def _ranks(counts: Ints) -> Ints:
    """0, 1, …, counts[0]-1, 0, 1, …, counts[1]-1, …"""
    total = int(counts.sum())
    return np.arange(total, dtype="int64") - np.repeat(np.cumsum(counts) - counts, counts)


def build_open_intervals(
    venue_ids: Sequence[int],
    ranges: Sequence[tuple[int, int, int, int]] | Ints,
    closures: Iterable[tuple[int, int, int]],
    first_day: date,
    last_day: date,
    t0: int,
    t1: int,
    tz: ZoneInfo,
) -> OpenIntervals:
    """The open intervals inside ``[t0, t1)`` of each venue: its weekly ranges ``(venue_id,
    weekday, start_min, end_min)`` on each local day ``first_day``..``last_day``, merged,
    clipped, minus its closures ``(venue_id, start, end)`` (epoch seconds). Ranges and
    closures of other venues are ignored.

    ``first_day``/``last_day`` are the local days of ``t0``/``t1`` (for a period: its first
    day and the day after its last); the day before the first is included too, as in
    :func:`~mapservice.core.opening.open_intervals`."""
    vids = np.asarray(list(venue_ids), dtype="int64")
    table = np.asarray(ranges, dtype="int64").reshape(-1, 4)
    table = table[np.isin(table[:, 0], vids)]
    table = table[np.lexsort((table[:, 3], table[:, 2], table[:, 1], table[:, 0]))]
    # Each venue's weekly hours as one bytes key: (weekday, start, end) packed in one integer
    # (minutes fit in 11 bits), sorted.
    packed = (table[:, 1] * 2048 + table[:, 2]) * 2048 + table[:, 3]
    owners, first, counts = np.unique(table[:, 0], return_index=True, return_counts=True)
    weekly = {
        v: packed[a : a + n]
        for v, a, n in zip(owners.tolist(), first.tolist(), counts.tolist(), strict=True)
    }
    holes: dict[int, list[tuple[int, int]]] = {}
    for vid, a, b in closures:
        holes.setdefault(int(vid), []).append((int(a), int(b)))
    # Calendars: one per distinct weekly pattern among venues without closures, one per venue
    # with closures.
    none = np.zeros(0, dtype="int64")
    keys: dict[object, int] = {}
    patterns: list[list[tuple[int, int, int]]] = []
    calendar = np.empty(len(vids), dtype="int64")
    own: dict[int, int] = {}  # calendar -> venue whose closures it carries
    for i, vid in enumerate(vids.tolist()):
        hours = weekly.get(vid, none)
        key: object = ("venue", vid) if vid in holes else hours.tobytes()
        if key not in keys:
            keys[key] = len(patterns)
            patterns.append([(p >> 22, (p >> 11) & 2047, p & 2047) for p in hours.tolist()])
            if vid in holes:
                own[keys[key]] = vid
        calendar[i] = keys[key]
    cal, start, end = _weekly(patterns, first_day, last_day, t0, t1, tz)
    if own:
        cal, start, end = _cut_closures(cal, start, end, len(patterns), own, holes)
    return OpenIntervals(vids, calendar, cal, start, end)


def _weekly(
    patterns: list[list[tuple[int, int, int]]],
    first_day: date,
    last_day: date,
    t0: int,
    t1: int,
    tz: ZoneInfo,
) -> tuple[Ints, Ints, Ints]:
    """Each pattern's ranges on every day, clipped to ``[t0, t1)`` and merged: (calendar,
    start, end) sorted by calendar then start."""
    empty = np.zeros(0, dtype="int64")
    flat = [(c, wd, lo, hi) for c, p in enumerate(patterns) for wd, lo, hi in p]
    if not flat or t1 <= t0:
        return empty, empty, empty
    r_cal, r_wd, r_lo, r_hi = (np.asarray(col, dtype="int64") for col in zip(*flat, strict=True))
    days = np.arange(first_day.toordinal() - 1 - _EPOCH_DAY, last_day.toordinal() + 1 - _EPOCH_DAY)
    weekday = (days + EPOCH_WEEKDAY) % 7
    by_wd = [days[weekday == w] for w in range(7)]
    width = max(len(d) for d in by_wd)
    table = np.full((7, width), -1, dtype="int64")
    for w, d in enumerate(by_wd):
        table[w, : len(d)] = d
    n = np.asarray([len(by_wd[w]) for w in range(7)], dtype="int64")[r_wd]
    which = np.repeat(np.arange(len(r_cal)), n)
    day = table[r_wd[which], _ranks(n)]
    zone = ZoneClock.build(tz, int(days[0]) * DAY_S, (int(days[-1]) + 2) * DAY_S)
    a = np.maximum(zone.instant(day * DAY_S + r_lo[which] * 60), t0)
    b = np.minimum(zone.instant(day * DAY_S + r_hi[which] * 60), t1)
    keep = a < b
    c, a, b = r_cal[which][keep], a[keep], b[keep]
    order = np.lexsort((b, a, c))
    c, a, b = c[order], a[order], b[order]
    # Merge (touching intervals join): a new interval starts where its start is past every
    # end before it in the same calendar. Keys keep calendars apart: c * span + offset.
    span = t1 - t0 + 1
    ka, kb = c * span + (a - t0), c * span + (b - t0)
    reach = np.maximum.accumulate(kb)
    new = np.ones(len(ka), dtype=bool)
    new[1:] = ka[1:] > reach[:-1]
    heads = np.flatnonzero(new)
    ends = np.maximum.reduceat(kb, heads) - c[heads] * span + t0
    return c[heads], a[heads], ends


def _cut_closures(
    cal: Ints,
    start: Ints,
    end: Ints,
    calendars: int,
    own: dict[int, int],
    holes: dict[int, list[tuple[int, int]]],
) -> tuple[Ints, Ints, Ints]:
    """Subtract each closure-carrying calendar's venue's closures (merged) from its intervals."""
    bounds = np.searchsorted(cal, np.arange(calendars + 1))
    parts_c, parts_a, parts_b = [], [], []
    done = 0
    for c in sorted(own):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        parts_c.append(cal[done:lo])
        parts_a.append(start[done:lo])
        parts_b.append(end[done:lo])
        a, b = start[lo:hi], end[lo:hi]
        for h0, h1 in _merge(holes[own[c]]):
            # Each interval leaves [a, min(b, h0)) before the hole and [max(a, h1), b) after
            # it (either may be empty); interleaved, they stay sorted.
            left_b, right_a = np.minimum(b, h0), np.maximum(a, h1)
            aa = np.stack([a, right_a], axis=1).reshape(-1)
            bb = np.stack([left_b, b], axis=1).reshape(-1)
            keep = aa < bb
            a, b = aa[keep], bb[keep]
        parts_c.append(np.full(len(a), c, dtype="int64"))
        parts_a.append(a)
        parts_b.append(b)
        done = hi
    parts_c.append(cal[done:])
    parts_a.append(start[done:])
    parts_b.append(end[done:])
    return np.concatenate(parts_c), np.concatenate(parts_a), np.concatenate(parts_b)


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of intervals; touching ones are joined (as ``core.opening.merge``)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
