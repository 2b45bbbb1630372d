"""The measures of ``docs/stats.md``, computed on DataFrames without a loop per booking.

Times are integer seconds since the Unix epoch (UTC). Inputs:

``venues``
    one row per venue: ``venue_id, name, unit_id, unit_name, type, street_id, street_name,
    capacity_units, lon, lat, phone``.
``open_iv``
    the venue's open intervals inside the period (weekly hours minus closures, merged, one
    venue's intervals disjoint): ``venue_id, start, end``.
``bookings``
    every booking of those venues that meets the period or starts in it: ``venue_id,
    group_unit_id (NaN for a group of no unit), start, end, units, status, created``.

The key step is :class:`OpenClock`: for each venue, the open seconds elapsed since the
period's start as a step-linear function of time. A booking's open overlap is then
``F(end) - F(start)`` for all bookings at once, by binary search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from mapservice.stats.calendars import DAY_S, EPOCH_WEEKDAY, OpenIntervals, ZoneClock

BOOKED = ("confirmed", "completed")
REALIZED = ("completed",)
#: Grouping keys: the column holding the key and the one holding its display name.
GROUPS: dict[str, tuple[str, str]] = {
    "venue": ("venue_id", "name"),
    "unit": ("unit_id", "unit_name"),
    "type": ("type", "type"),
    "street": ("street_key", "street_name"),
}

VENUE_COLUMNS = [
    "venue_id",
    "name",
    "unit_id",
    "unit_name",
    "type",
    "street_id",
    "street_name",
    "capacity_units",
    "lon",
    "lat",
    "phone",
]
BOOKING_COLUMNS = [
    "venue_id",
    "group_unit_id",
    "start",
    "end",
    "units",
    "status",
    "created",
]


def empty_venues() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in VENUE_COLUMNS})


def empty_bookings() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="int64") for c in BOOKING_COLUMNS})
    frame["group_unit_id"] = frame["group_unit_id"].astype("float64")
    frame["status"] = frame["status"].astype("object")
    return frame


class OpenClock:
    """Open seconds of each venue since ``t0``, inside ``[t0, t1)``, as a function of time.

    Venues that share a calendar (same weekly hours, no closure) share its intervals."""

    def __init__(self, open_iv: OpenIntervals | pd.DataFrame, t0: int, t1: int) -> None:
        iv = open_iv if isinstance(open_iv, OpenIntervals) else OpenIntervals.from_frame(open_iv)
        self.t0, self.t1 = int(t0), int(t1)
        self.span = self.t1 - self.t0 + 1
        starts = np.clip(iv.start, self.t0, self.t1)
        ends = np.clip(iv.end, self.t0, self.t1)
        self.venues = pd.Index(iv.venue_ids)
        self.calendar = iv.calendar
        self.code = iv.cal
        self.start = starts
        self.length = np.maximum(ends - starts, 0)
        self.key = self.code * self.span + (starts - self.t0)
        # Open seconds of the same calendar before each interval.
        cum = np.cumsum(self.length)
        first = np.searchsorted(self.code, self.code)  # the calendar's first row
        self.before = cum - self.length - (cum - self.length)[first]
        self._dense: np.ndarray[Any, np.dtype[np.int64]] | None = None
        ids = iv.venue_ids
        if len(ids) and ids.min() >= 0 and ids.max() < 4 * len(ids) + 1024:
            self._dense = np.full(int(ids.max()) + 1, -1, dtype="int64")
            self._dense[ids] = iv.calendar

    def calendars_of(self, venue_ids: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Each venue's calendar (-1 for a venue not known)."""
        vids = np.asarray(venue_ids, dtype="int64")
        if self._dense is not None:
            inside = (vids >= 0) & (vids < len(self._dense))
            return np.where(inside, self._dense[np.where(inside, vids, 0)], -1)
        if not len(self.calendar):
            return np.full(len(vids), -1, dtype="int64")
        code = self.venues.get_indexer(pd.Index(vids))
        return np.where(code >= 0, self.calendar[np.maximum(code, 0)], -1).astype("int64")

    def at(self, venue_ids: Any, t: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """F(t): open seconds of each venue in ``[t0, min(t, t1))``."""
        return self._at(self.calendars_of(venue_ids), t)

    def _at(self, code: Any, t: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        tt = np.clip(np.asarray(t, dtype="int64"), self.t0, self.t1)
        if len(self.key) == 0:
            return np.zeros(len(tt), dtype="int64")
        key = np.where(code >= 0, code, 0) * self.span + (tt - self.t0)
        i = np.searchsorted(self.key, key, side="right") - 1
        ok = (code >= 0) & (i >= 0)
        i = np.where(ok, i, 0)
        ok &= self.code[i] == code
        value = self.before[i] + np.clip(tt - self.start[i], 0, self.length[i])
        return np.where(ok, value, 0).astype("int64")

    def between(self, venue_ids: Any, a: Any, b: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Open seconds inside ``[a, b)`` (0 when ``b <= a``)."""
        code = self.calendars_of(venue_ids)
        return np.maximum(self._at(code, b) - self._at(code, a), 0)


def open_seconds_by_venue(open_iv: OpenIntervals | pd.DataFrame) -> pd.Series:
    if isinstance(open_iv, OpenIntervals):
        return open_iv.seconds_by_venue()
    return (open_iv["end"] - open_iv["start"]).groupby(open_iv["venue_id"]).sum()


def _booked_pieces(
    bookings: pd.DataFrame, clock: OpenClock, a: int | None = None, b: int | None = None
) -> pd.DataFrame:
    """Booked (confirmed/completed) bookings with ``open_s``: the seconds inside the window
    (the period, or ``[a, b)``) and inside opening hours, and ``cap_s`` = that × units."""
    live = bookings[bookings["status"].isin(BOOKED)].copy()
    s, e = live["start"].to_numpy(dtype="int64"), live["end"].to_numpy(dtype="int64")
    if a is not None and b is not None:
        s, e = np.clip(s, a, b), np.clip(e, a, b)
    live["open_s"] = clock.between(live["venue_id"].to_numpy(), s, e)
    live["cap_s"] = live["open_s"] * live["units"].astype("int64")
    return live


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, 0 where den is 0 (or either is missing), never above 1."""
    if not num.index.equals(den.index):  # aligned by label, as pandas divides
        num, den = num.align(den)
    n = num.to_numpy(dtype="float64", na_value=np.nan)
    d = den.to_numpy(dtype="float64", na_value=np.nan)
    out = np.divide(n, d, out=np.zeros(len(n)), where=d > 0)
    out[np.isnan(out)] = 0.0
    return pd.Series(np.clip(out, 0.0, 1.0), index=num.index, name=num.name)


@dataclass
class Figures:
    """Everything the tables and charts are cut from, computed once per period and scope."""

    t0: int
    t1: int
    clock: OpenClock
    #: one row per venue (see :func:`compute`)
    venues: pd.DataFrame
    #: confirmed/completed bookings with ``open_s``, ``cap_s``, ``shared``, ``realized``
    booked: pd.DataFrame
    #: every loaded booking (all statuses)
    bookings: pd.DataFrame
    #: the lead times of the held bookings that start in ``[t0, t1)`` (``venue_id``,
    #: ``lead_days``), when read apart (None: from ``bookings``; :func:`held_leads`)
    leads: pd.DataFrame | None = None


def compute(
    venues: pd.DataFrame,
    open_iv: OpenIntervals | pd.DataFrame,
    bookings: pd.DataFrame,
    t0: int,
    t1: int,
) -> Figures:
    """The venue table: open, booked, realized and shared capacity-hours, the rates and the
    booking counts of ``docs/stats.md``, one row per venue (indexed by venue id)."""
    clock = OpenClock(open_iv, t0, t1)
    table = venues.copy().set_index("venue_id", drop=False)
    table.index.name = None
    table["street_key"] = table["street_id"].fillna(-1).astype("int64")
    cap = table["capacity_units"].astype("int64")
    open_s = open_seconds_by_venue(open_iv).reindex(table.index, fill_value=0)
    table["open_hours"] = open_s.astype("float64") / 3600
    table["open_cap_hours"] = table["open_hours"] * cap
    live = _booked_pieces(bookings, clock)
    owner = table["unit_id"].reindex(live["venue_id"]).to_numpy()
    live["owner_unit_id"] = owner
    live["shared"] = ~(live["group_unit_id"].to_numpy() == owner)
    live["realized"] = live["status"].isin(REALIZED)
    cap_s = live["cap_s"].to_numpy(dtype="int64")
    sums = (
        pd.DataFrame(
            {
                "booked": cap_s,
                "realized": np.where(live["realized"].to_numpy(dtype=bool), cap_s, 0),
                "shared": np.where(live["shared"].to_numpy(dtype=bool), cap_s, 0),
            }
        )
        .groupby(live["venue_id"].to_numpy())
        .sum()
        .reindex(table.index, fill_value=0)
    )
    table["booked_cap_hours"] = sums["booked"] / 3600
    table["realized_cap_hours"] = sums["realized"] / 3600
    table["shared_cap_hours"] = sums["shared"] / 3600
    counts = event_counts(bookings, t0, t1, "venue_id", table.index)
    table = pd.concat([table, counts], axis=1)
    return Figures(t0, t1, clock, add_rates(table), live, bookings)


def event_counts(
    bookings: pd.DataFrame, t0: int, t1: int, key: str | pd.Series, index: pd.Index
) -> pd.DataFrame:
    """Per ``key`` (a column of ``bookings``, or a key for each booking) over the bookings that
    start in ``[t0, t1)``: how many, cancelled, completed, no-show, and the median lead time in
    days (of confirmed, completed and no-show bookings)."""
    start = bookings["start"].to_numpy(dtype="int64")
    inside = (start >= t0) & (start < t1)
    started = bookings[inside]
    keys = started[key] if isinstance(key, str) else key[inside]
    status = started["status"]
    frame = pd.DataFrame(
        {
            "k": keys,
            "bookings": 1,
            "cancelled": (status == "cancelled").astype("int64"),
            "completed": (status == "completed").astype("int64"),
            "no_show": (status == "no_show").astype("int64"),
        }
    )
    counts = frame.groupby("k")[["bookings", "cancelled", "completed", "no_show"]].sum()
    held = status.isin(("confirmed", "completed", "no_show"))
    lead = (started["start"] - started["created"]) / 86400
    lead_days = lead[held].groupby(keys[held]).median()
    out = counts.reindex(index, fill_value=0).astype("int64")
    out["lead_days"] = lead_days.reindex(index).astype("float64")
    return out


def add_rates(table: pd.DataFrame) -> pd.DataFrame:
    table["utilization"] = _ratio(table["booked_cap_hours"], table["open_cap_hours"])
    table["realized_utilization"] = _ratio(table["realized_cap_hours"], table["open_cap_hours"])
    table["sharing_rate"] = _ratio(table["shared_cap_hours"], table["booked_cap_hours"])
    table["no_show_rate"] = _ratio(table["no_show"], table["completed"] + table["no_show"])
    table["cancellation_rate"] = _ratio(table["cancelled"], table["bookings"])
    return table


SUMMED = [
    "open_hours",
    "open_cap_hours",
    "booked_cap_hours",
    "realized_cap_hours",
    "shared_cap_hours",
    "bookings",
    "cancelled",
    "completed",
    "no_show",
]


def grouped(fig: Figures, by: str) -> pd.DataFrame:
    """The venue table summed by ``venue``, ``unit``, ``type`` or ``street`` (ratios of sums,
    not means of ratios), with ``key``, ``name`` and ``venues`` (how many venues)."""
    vt = fig.venues
    if by == "venue":
        return vt.assign(key=vt["venue_id"], venues=1)
    key, name = GROUPS[by]
    return _group_on(fig, vt[key], vt[name])


def _group_on(fig: Figures, key: pd.Series, name: pd.Series) -> pd.DataFrame:
    vt = fig.venues
    sums = vt.groupby(key)[SUMMED].sum()
    sums["venues"] = vt.groupby(key).size()
    sums["name"] = name.groupby(key).first()
    sums["key"] = sums.index
    leads = held_leads(fig)
    # Each lead's group as an integer code through its venue (a venue table's worth of keys
    # factorized, not one key object per booking: for a city's year, 450,000 strings hashed
    # took 40 MB at the dashboard's peak).
    codes = pd.Series(sums.index.get_indexer(key), index=key.index)
    lead_codes = codes.reindex(leads["venue_id"], fill_value=-1).to_numpy()
    sums["lead_days"] = medians_by(lead_codes, leads["lead_days"].to_numpy(), len(sums))
    return add_rates(sums)


def medians_by(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """The median of ``values`` for each code ``0 .. groups - 1`` (NaN where it has none;
    codes < 0 and NaN values are left out), as pandas' groupby median: the middle value, or
    the mean of the two middle ones. One sort of the values by (code, value), no hashing."""
    # No copies of what all counts, and 32-bit codes: a city's year is 450,000 values.
    codes, values = np.asarray(codes), np.asarray(values, dtype="float64")
    keep = (codes >= 0) & (codes < groups) & ~np.isnan(values)
    if not keep.all():
        codes, values = codes[keep], values[keep]
    del keep
    codes = codes.astype("int32" if groups < 2**31 else "int64", copy=False)
    ordered = values[np.lexsort((values, codes))]
    counts = np.bincount(codes, minlength=groups)
    starts = np.cumsum(counts) - counts
    out = np.full(groups, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    out[has] = (ordered[low] + ordered[high]) / 2
    return out


def totals(fig: Figures) -> dict[str, float]:
    """The whole scope's figures (ratios of sums): :func:`grouped` with one group, the lead
    time's median taken over all the scope's bookings at once."""
    vt = fig.venues
    columns = [*SUMMED, "utilization", "realized_utilization", "sharing_rate", "no_show_rate"]
    columns += ["cancellation_rate", "lead_days", "venues"]
    if vt.empty:
        return {c: 0.0 for c in columns}
    table = vt[SUMMED].sum().to_frame().T
    table["venues"] = len(vt)
    leads = held_leads(fig)
    lead = leads["lead_days"][np.isin(leads["venue_id"].to_numpy(), vt.index.to_numpy())]
    table["lead_days"] = float(lead.median()) if len(lead) else np.nan
    row = add_rates(table).iloc[0]
    return {c: float(row[c]) if pd.notna(row[c]) else 0.0 for c in columns}


def held_leads(fig: Figures) -> pd.DataFrame:
    """The lead time in days (``lead_days``) of each booking that starts in ``[t0, t1)`` and
    was held (confirmed, completed or no-show), with its ``venue_id``, as
    :func:`event_counts` takes its median: ``fig.leads`` when they were read apart, else
    from ``fig.bookings``."""
    if fig.leads is not None:
        return fig.leads
    bookings = fig.bookings
    start = bookings["start"].to_numpy(dtype="int64")
    started = bookings[(start >= fig.t0) & (start < fig.t1)]
    held = started[started["status"].isin(("confirmed", "completed", "no_show"))]
    return pd.DataFrame(
        {
            "venue_id": held["venue_id"].to_numpy(),
            "lead_days": ((held["start"] - held["created"]) / 86400).to_numpy(dtype="float64"),
        }
    )


def weekly_trend(fig: Figures, weeks: list[tuple[Any, int, int]]) -> pd.DataFrame:
    """Utilization and realized utilization of the whole scope per week (``weeks``: label,
    start, end). A loop per week, vectorized over venues and bookings within it."""
    cap = fig.venues["capacity_units"].astype("int64")
    vids = cap.index.to_numpy()
    live = fig.booked
    units = live["units"].to_numpy(dtype="int64")
    done = live["realized"].to_numpy(dtype="bool")
    rows = []
    for label, a, b in weeks:
        aa, bb = np.full(len(vids), a), np.full(len(vids), b)
        open_cap = float((fig.clock.between(vids, aa, bb) * cap.to_numpy()).sum())
        s = np.clip(live["start"].to_numpy(dtype="int64"), a, b)
        e = np.clip(live["end"].to_numpy(dtype="int64"), a, b)
        cap_s = fig.clock.between(live["venue_id"].to_numpy(), s, e) * units
        rows.append(
            {
                "week": label,
                "open_cap_hours": open_cap / 3600,
                "booked_cap_hours": float(cap_s.sum()) / 3600,
                "realized_cap_hours": float(cap_s[done].sum()) / 3600,
            }
        )
    columns = ["week", "open_cap_hours", "booked_cap_hours", "realized_cap_hours"]
    out = pd.DataFrame(rows, columns=columns)
    out["utilization"] = _ratio(out["booked_cap_hours"], out["open_cap_hours"])
    out["realized_utilization"] = _ratio(out["realized_cap_hours"], out["open_cap_hours"])
    return out


def heatmap(fig: Figures, tz: ZoneInfo) -> pd.DataFrame:
    """Booked capacity-hours by local weekday (rows 0 = Monday … 6) and hour of day (columns
    0…23): confirmed and completed bookings clipped to the period. Each booking is cut at
    the (UTC) clock hours it spans and each piece counted at the local weekday and hour where
    it starts (bookings last hours, not days, so the expansion stays small)."""
    live = fig.booked
    s = np.clip(live["start"].to_numpy(dtype="int64"), fig.t0, fig.t1)
    e = np.clip(live["end"].to_numpy(dtype="int64"), fig.t0, fig.t1)
    units = live["units"].to_numpy(dtype="int64")
    keep = e > s
    s, e, units = s[keep], e[keep], units[keep]
    zone = ZoneClock.build(tz, fig.t0, fig.t1)
    hour = s // 3600 * 3600  # the UTC clock hour each booking's k-th piece starts in
    cap_s = np.zeros(7 * 24)
    while len(s):  # k-th pieces of every booking that has one: a few rounds, not a row loop
        piece = np.minimum(e, hour + 3600) - np.maximum(s, hour)
        local = zone.local(hour)
        slot = (local // DAY_S + EPOCH_WEEKDAY) % 7 * 24 + local % DAY_S // 3600
        cap_s += np.bincount(slot, weights=piece * units, minlength=7 * 24)  # exact: integers
        hour += 3600
        more = e > hour
        s, e, units, hour = s[more], e[more], units[more], hour[more]
    return pd.DataFrame(
        (cap_s / 3600).reshape(7, 24),
        index=pd.RangeIndex(7, name="weekday"),
        columns=pd.RangeIndex(24, name="hour"),
        dtype="float64",
    )


def unit_sharing(fig: Figures) -> pd.DataFrame:
    """Per unit: capacity-hours its venues gave to other units' groups (``shared_cap_hours``),
    its sharing rate, and the capacity-hours its own groups used at other units' venues
    (``used_elsewhere_cap_hours``, among the venues in scope)."""
    vt = fig.venues
    out = vt.groupby("unit_id").agg(
        name=("unit_name", "first"),
        venues=("venue_id", "size"),
        booked_cap_hours=("booked_cap_hours", "sum"),
        shared_cap_hours=("shared_cap_hours", "sum"),
    )
    live = fig.booked
    away = live[live["shared"] & live["group_unit_id"].notna()]
    used = away.groupby(away["group_unit_id"].astype("int64"))["cap_s"].sum() / 3600
    out["used_elsewhere_cap_hours"] = used.reindex(out.index, fill_value=0.0)
    out["sharing_rate"] = _ratio(out["shared_cap_hours"], out["booked_cap_hours"])
    out["key"] = out.index
    return out.sort_values(["shared_cap_hours", "sharing_rate"], ascending=False)
