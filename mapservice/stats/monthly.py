"""The figures of a period of whole local days from the month level (``venue_month_usage``,
``venue_month_days``), the daily rows only for the days of partial months at the period's
edges (or the whole month less the days outside when fewer): the cost grows with venues ×
(months + a few days), not with bookings.

The same figures as :mod:`mapservice.stats.daily` (and so as :mod:`mapservice.stats.measures`
from the rows; tested equal): the venue table, the totals, the heatmap, sharing by unit and
the weekly trend; the median lead time, which no sum gives, is not among them (NaN). Stale
days are recounted first (:func:`mapservice.stats.aggregates.refresh`, which recounts their
months too, in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    LargeBinary,
    cast,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from mapservice.core.opening import local_instant
from mapservice.models.stats import (
    COUNT_COLUMNS,
    HOUR_COLUMNS,
    venue_day_usage,
    venue_month_days,
    venue_month_usage,
    venue_year_usage,
)
from mapservice.stats import measures as m
from mapservice.stats.aggregates import (
    DAY_RECORD,
    HEAT_RECORD,
    SHARED_RECORD,
    day_date,
    day_month,
    local_day,
    month_days,
    refresh,
)
from mapservice.stats.daily import TREND_COLUMNS, DailyFigures, venue_and_unit_tables
from mapservice.stats.frames import (
    Scope,
    fetch_binary,
    int_columns,
    load_bookings,
    load_open_intervals,
    load_venues,
    week_windows,
)
from mapservice.stats.periods import Period

d = venue_day_usage.c
mo = venue_month_usage.c
md = venue_month_days.c
yr = venue_year_usage.c
SUMS = ("booked_s", "realized_s", *COUNT_COLUMNS)


#: Whether a level's rows hold any in a range of its time column (first, last; inclusive).
Holds = Callable[[int, int], bool]
#: A container (a month of days, a year of months): its key, first and last item.
Span = tuple[int, int, int]


def _split(
    lo: int, hi: int, spans: list[Span], holds: Holds | None
) -> tuple[tuple[int, int] | None, list[tuple[int, int, int]]]:
    """Items ``lo``..``hi`` as containers read whole (first key, last key; None: none) and
    item ranges (first, last, sign) read from the level below: every container the items
    cover whole, and one they cover partly either by its items inside (+1) or as the whole
    container less the items outside (-1), whichever reads less.

    The cost is counted in items, the container's own row as one: the old rule (fewer items
    outside than inside) when nothing is known of the rows. With ``holds`` (does the level
    below hold rows in a range?) a range holding none costs nothing and is not read, and a
    container with nothing inside the period is not read at all — a period's edge where
    no booking lies (past the last one booked, before the first) is then one container
    row, where it was its days. Which side is read never changes a figure (tested)."""
    keys: list[int] = []
    ranges: list[tuple[int, int, int]] = []

    def cost(a: int, b: int) -> int:
        if a > b or (holds is not None and not holds(a, b)):
            return 0
        return b - a + 1

    for key, first, last in spans:
        a, b = max(first, lo), min(last, hi)
        if a == first and b == last:
            keys.append(key)
            continue
        inside = cost(a, b)
        if inside == 0:
            continue  # nothing of it inside the period: nothing to read
        outside = [(x, y) for x, y in ((first, a - 1), (b + 1, last)) if cost(x, y)]
        rest = sum(y - x + 1 for x, y in outside)
        if rest + (1 if holds is not None else 0) < inside:
            keys.append(key)
            ranges += [(x, y, -1) for x, y in outside]
        else:
            ranges.append((a, b, 1))
    return ((keys[0], keys[-1]) if keys else None), ranges


def split(
    d0: int, d1: int, holds: Holds | None = None
) -> tuple[tuple[int, int] | None, list[tuple[int, int, int]]]:
    """Days ``d0``..``d1`` as months read from the month level (first, last; None: none) and
    day ranges read from the daily rows (first day, last day, sign) (:func:`_split`;
    ``holds``: whether the daily rows hold any in a range of days)."""
    m0, m1 = (int(x) for x in day_month([d0, d1]))
    spans = [(month, *month_days(month)) for month in range(m0, m1 + 1)]
    return _split(d0, d1, spans, holds)


def split_years(
    m0: int, m1: int, holds: Holds | None = None
) -> tuple[tuple[int, int] | None, list[tuple[int, int, int]]]:
    """Months ``m0``..``m1`` (since 1970-01) as calendar years read from the year level
    (first, last; None: none) and month ranges read from the month level (first, last,
    sign), as :func:`split` splits days into months (``holds``: whether the month level
    holds any rows in a range of months)."""
    spans = [(year + 1970, year * 12, year * 12 + 11) for year in range(m0 // 12, m1 // 12 + 1)]
    return _split(m0, m1, spans, holds)


def _holds(session: Session, column: Any) -> Holds:
    """Whether ``column``'s table holds any row in a range of it: one seek of its index
    (migration 0026), asked once per range."""
    seen: dict[tuple[int, int], bool] = {}

    def holds(a: int, b: int) -> bool:
        if (a, b) not in seen:
            seen[a, b] = bool(
                session.scalar(select(literal(1)).where(column.between(a, b)).limit(1))
            )
        return seen[a, b]

    return holds


def _in_days(ranges: list[tuple[int, int, int]], sign: int) -> ColumnElement[bool] | None:
    """Days of the ``ranges`` of ``sign`` (None: none)."""
    days = [d.day.between(a, b) for a, b, s in ranges if s == sign]
    return or_(*days) if days else None


#: The columns of the daily rows the edge days are read with (:func:`_edge_days`).
EDGE_KEYS = ("venue_id", "group_unit_id", *SUMS)
EDGE_COLUMNS = ("venue_id", "day", "group_unit_id", *SUMS, *HOUR_COLUMNS)


def _edge_days(
    session: Session, ids: str, edges: list[tuple[int, int, int]], sign: int
) -> dict[str, Any] | None:
    """The daily rows of the days of the ``edges`` of ``sign`` (None: none), whole, as
    arrays by column (:data:`EDGE_COLUMNS`): one pass gives the venues' sums by booking
    unit, the heatmap and the trend's days, where a grouped query for each read the same
    rows three times."""
    where = _in_days(edges, sign)
    if where is None:
        return None
    cols = int_columns(session, _scoped(ids, venue_day_usage, where, *(d[c] for c in EDGE_COLUMNS)))
    return dict(zip(EDGE_COLUMNS, cols, strict=True))


def _scoped(ids: str, table: Any, where: Any, *columns: Any) -> Any:
    """``columns`` of ``table``'s rows of the venues ``ids`` (the scope's, loaded once: no
    join with the venues in every query; :func:`_listed`) where ``where``."""
    return select(*columns).where(text(f"{table.name}.venue_id IN ({ids})"), where)


def _listed(ids: Any) -> str:
    """Venue ids as a list of integer literals for the SQL: one parse by the database, where
    ten thousand bound parameters would each be processed by SQLAlchemy and the driver,
    query after query."""
    return ",".join(map(str, np.asarray(ids, dtype="int64").tolist())) or "NULL"


def _blobs(session: Session, stmt: Any) -> list[bytes]:
    """The blobs of each column ``stmt`` selects, one after another, handed over by the
    database as one value a column (SQLite: :func:`_joined`;
    PostgreSQL: ``string_agg`` of ``bytea``, fetched in binary)."""
    sub = stmt.subquery()
    if session.get_bind().dialect.name == "postgresql":
        query = select(
            *(func.string_agg(c, literal(b"", LargeBinary), type_=LargeBinary) for c in sub.c)
        )
        found = fetch_binary(session, query)
        assert found is not None
        return [bytes(v) if v is not None else b"" for v in found]
    found = session.execute(select(*(_joined(c) for c in sub.c))).one()
    return [bytes(v) if v is not None else b"" for v in found]


def _joined(column: Any) -> Any:
    """SQLite: the blobs of ``column`` one after another, as one blob. ``group_concat`` joins
    text, and a blob read as text keeps its bytes as they are (embedded zero bytes included:
    SQLite passes the value's length, never looks for a terminator), so the joined text cast
    back to a blob is the blobs' bytes; hex text would be twice the size and decoded twice."""
    return cast(func.group_concat(column, ""), LargeBinary)


def _whole_days(period: Period) -> tuple[int, int, datetime | None]:
    """The period's whole local days (first, last: last < first for none) and where counting
    stops inside the day after them (None: at a midnight)."""
    tz = period.tz
    d0 = local_day(period.start_at, tz)
    end = period.end_at
    d_end = local_day(end, tz)
    if end <= period.start_at:
        return d0, d0 - 1, None
    midnight = local_instant(day_date(d_end), 0, tz)
    return d0, d_end - 1, (end if end > midnight else None)


@dataclass
class _Partial:
    """A day's part up to a moment, from the booking rows: per venue :data:`SUMS` and
    ``shared_s`` (seconds), cross-unit use per booking unit, the heatmap, and the day's
    booked and realized seconds."""

    day: int
    sums: pd.DataFrame
    used: pd.Series
    heat: pd.DataFrame
    booked_s: int
    realized_s: int


def _partial_day(
    session: Session,
    scope: Scope,
    venues: pd.DataFrame,
    open_iv: Any,
    period: Period,
    cut: datetime | None,
) -> _Partial | None:
    """The figures of the day ``cut`` falls in, from its midnight to ``cut``, from the rows
    (a few thousand bookings at most), split as the daily rows split them."""
    if cut is None:
        return None
    day = local_day(cut, period.tz)
    part = Period("custom", day_date(day), day_date(day), period.tz, until_at=cut)
    a, b = int(part.start_at.timestamp()), int(part.end_at.timestamp())
    bookings = load_bookings(session, scope, part)
    fig = m.compute(venues, open_iv, bookings, a, b)
    vt = fig.venues
    sums = pd.DataFrame(
        {
            "venue_id": vt["venue_id"].to_numpy(dtype="int64"),
            "booked_s": (fig.booked.groupby("venue_id")["cap_s"].sum())
            .reindex(vt.index, fill_value=0)
            .to_numpy(dtype="int64"),
            "realized_s": (fig.booked[fig.booked["realized"]].groupby("venue_id")["cap_s"].sum())
            .reindex(vt.index, fill_value=0)
            .to_numpy(dtype="int64"),
            **{c: vt[c].to_numpy(dtype="int64") for c in COUNT_COLUMNS},
            "shared_s": (fig.booked[fig.booked["shared"]].groupby("venue_id")["cap_s"].sum())
            .reindex(vt.index, fill_value=0)
            .to_numpy(dtype="int64"),
        }
    )
    live = fig.booked
    away = live[live["shared"] & live["group_unit_id"].notna()]
    used = away.groupby(away["group_unit_id"].astype("int64"))["cap_s"].sum().astype("int64")
    cap_s = live["cap_s"].to_numpy(dtype="int64")
    done = live["realized"].to_numpy(dtype=bool)
    return _Partial(
        day,
        sums,
        used,
        m.heatmap(fig, period.tz),
        int(cap_s.sum()),
        int(cap_s[done].sum()),
    )


def _month_scan(
    session: Session, ids: str, in_months: Any, table: Any = venue_month_usage
) -> tuple[list[np.ndarray[Any, np.dtype[np.int64]]], bytes, bytes]:
    """The months' (or, ``table`` the year level, the years') sums (``venue_id``,
    :data:`SUMS`, ``shared_s`` columns; a venue may come more than once, its rows to be
    added up: :class:`_PerVenue`) and their packed heatmaps and cross-unit use, one after
    another. SQLite: one pass over the rows, every column joined into one value (grouping
    by venue in SQL cost more than the whole read: numpy adds them up); PostgreSQL: the
    sums grouped by venue, then the blobs in binary."""
    t = table.c
    if session.get_bind().dialect.name == "postgresql":
        sums = [func.sum(t[c], type_=BigInteger) for c in (*SUMS, "shared_s")]
        stmt = _scoped(ids, table, in_months, t.venue_id, *sums)
        cols = int_columns(session, stmt.group_by(t.venue_id))
        heat, shared = _blobs(session, _scoped(ids, table, in_months, t.heat, t.shared))
        return cols, heat, shared
    sub = _scoped(
        ids, table, in_months, t.venue_id, *(t[c] for c in (*SUMS, "shared_s")), t.heat, t.shared
    ).subquery()
    c = list(sub.c)
    found = session.execute(
        select(*(func.group_concat(x) for x in c[:-2]), _joined(c[-2]), _joined(c[-1]))
    ).one()
    cols = [
        np.fromstring(text, dtype="int64", sep=",") if text else np.zeros(0, dtype="int64")
        for text in found[:-2]
    ]
    if len({len(x) for x in cols}) > 1:
        raise ValueError("columns of different lengths")
    return cols, bytes(found[-2] or b""), bytes(found[-1] or b"")


#: Unit ids below this are added up in an array indexed by id (no sort); above, by sorting.
DENSE_UNITS = 1 << 22
#: The summed columns of a venue, in :class:`_PerVenue`'s order.
NAMES = (*SUMS, "shared_s")


class _PerVenue:
    """Each venue's sums of :data:`NAMES` and each unit's seconds used at other units'
    venues, added up from the levels' and edge days' rows (each with its sign) in numpy: a
    venue's row is found by binary search, sums by ``bincount`` (exact: integer sums far
    below 2**53). Grouping frames of these rows in pandas cost a tenth of a second."""

    def __init__(self, venue_ids: np.ndarray[Any, np.dtype[np.int64]]) -> None:
        self.order = np.argsort(venue_ids, kind="stable")
        self.ids = venue_ids[self.order]
        self.sums = np.zeros((len(NAMES), len(venue_ids)), dtype="float64")
        self.units: list[np.ndarray[Any, Any]] = []
        self.seconds: list[np.ndarray[Any, Any]] = []

    def rows(self, venue_id: Any) -> np.ndarray[Any, np.dtype[np.intp]]:
        """The table rows of ``venue_id`` (each one of the table's venues)."""
        vid = np.asarray(venue_id, dtype="int64")
        at = np.searchsorted(self.ids, vid)
        if len(vid) and (at.max() >= len(self.ids) or (self.ids[at] != vid).any()):
            raise ValueError("a venue outside the scope")
        return self.order[at]

    def add(self, venue_id: Any, columns: Any, sign: int) -> None:
        rows, n = self.rows(venue_id), len(self.ids)
        for k, col in enumerate(columns):
            self.sums[k] += sign * np.bincount(rows, weights=col, minlength=n)

    def use(self, unit: Any, seconds: Any, sign: int) -> None:
        self.units.append(np.asarray(unit, dtype="int64"))
        self.seconds.append(sign * np.asarray(seconds, dtype="int64"))

    def per_venue(self, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(
            {c: np.rint(self.sums[k]).astype("int64") for k, c in enumerate(NAMES)}, index=index
        )

    def used(self) -> pd.Series:
        """Capacity-hours used elsewhere, by the booking group's unit."""
        if not self.units:
            return pd.Series(dtype="float64")
        units, seconds = np.concatenate(self.units), np.concatenate(self.seconds)
        if len(units) and 0 <= units.min() and units.max() < DENSE_UNITS:
            total = np.bincount(units, weights=seconds)
            keys = np.flatnonzero(np.bincount(units))
            return pd.Series(np.rint(total[keys]) / 3600, index=keys)
        keys, at = np.unique(units, return_inverse=True)
        total = np.bincount(at, weights=seconds, minlength=len(keys))
        return pd.Series(np.rint(total) / 3600, index=keys)


def figures(
    session: Session, scope: Scope, period: Period, *, fresh: bool = True, trend: bool = True
) -> DailyFigures:
    """The figures of ``period`` for ``scope``: whole months from the month level, the edge
    days from the daily rows and, for a period counted up to a moment inside a day
    (:meth:`Period.until`), that day's part so far from the booking rows (``fresh``: recount
    stale days first; ``trend`` false: no weekly trend, an empty one)."""
    if fresh:
        refresh(session)
    d0, d1, cut = _whole_days(period)
    months, edges = split(d0, d1, _holds(session, d.day))
    venues = load_venues(session, scope)
    venues["type_label"] = venues["type"]
    open_iv = load_open_intervals(session, [int(v) for v in venues["venue_id"]], period)
    ids = _listed(venues["venue_id"])
    t0, t1 = int(period.start_at.timestamp()), int(period.end_at.timestamp())
    clock = m.OpenClock(open_iv, t0, t1)
    table = venues.copy().set_index("venue_id", drop=False)
    table.index.name = None
    table["street_key"] = table["street_id"].fillna(-1).astype("int64")
    cap = table["capacity_units"].astype("int64")
    open_s = m.open_seconds_by_venue(open_iv).reindex(table.index, fill_value=0)
    table["open_hours"] = open_s.astype("float64") / 3600
    table["open_cap_hours"] = table["open_hours"] * cap
    acc = _PerVenue(table.index.to_numpy(dtype="int64"))
    heat_blobs: list[tuple[bytes, int]] = []
    partial = _partial_day(session, scope, venues, open_iv, period, cut)
    if partial is not None:
        sums = partial.sums
        acc.add(sums["venue_id"].to_numpy(), [sums[c].to_numpy() for c in NAMES], 1)
        acc.use(partial.used.index.to_numpy(), partial.used.to_numpy(), 1)
    if months:
        # Whole calendar years from the year level, the other months (signed) from the months.
        years, month_ranges = split_years(*months, _holds(session, mo.month))
        scans: list[tuple[Any, Any, int]] = []
        if years:
            scans.append((venue_year_usage, yr.year.between(*years), 1))
        for sign in (1, -1):
            ms = [mo.month.between(a, b) for a, b, s in month_ranges if s == sign]
            if ms:
                scans.append((venue_month_usage, or_(*ms), sign))
        for table_, where_, sign in scans:
            cols, heat_blob, shared_blob = _month_scan(session, ids, where_, table_)
            acc.add(cols[0], cols[1:], sign)
            heat_blobs.append((heat_blob, sign))
            rec = np.frombuffer(shared_blob, dtype=SHARED_RECORD)
            acc.use(rec["unit"], rec["s"], sign)

    edge_rows = {sign: _edge_days(session, ids, edges, sign) for sign in (1, -1)}
    owner = table["unit_id"].to_numpy(dtype="int64")
    for sign, rows in edge_rows.items():
        if rows is None:
            continue
        gunit, booked = rows["group_unit_id"], rows["booked_s"]
        shared = gunit != owner[acc.rows(rows["venue_id"])]
        cols = [rows[c] for c in SUMS]
        acc.add(rows["venue_id"], [*cols, np.where(shared, booked, 0)], sign)
        away = shared & (gunit > 0)
        acc.use(gunit[away], booked[away], sign)
    per_venue, used = acc.per_venue(table.index), acc.used()
    table, totals, sharing = venue_and_unit_tables(table, per_venue, used)
    heat = _heat(heat_blobs, edge_rows)
    if partial is not None:
        heat += partial.heat
    weekly = (
        _trend(session, ids, period, d0, d1, months, edge_rows[1], table, clock, partial)
        if trend
        else pd.DataFrame(columns=["week", *TREND_COLUMNS])
    )
    return DailyFigures(table, totals, heat, sharing, weekly, clock)


def _heat(
    blobs: list[tuple[bytes, int]], edge_rows: dict[int, dict[str, Any] | None]
) -> pd.DataFrame:
    """Booked capacity-hours by weekday (Monday 0) and local hour: the years' and months'
    packed heatmaps (``blobs``, each with its sign) and the edge days' hours (``edge_rows``
    of each sign, :func:`_edge_days`)."""
    cap_s = np.zeros(7 * 24, dtype="float64")  # integer sums below 2**53: exact
    for blob, sign in blobs:
        rec = np.frombuffer(blob, dtype=HEAT_RECORD)
        cap_s += sign * np.bincount(rec["slot"], weights=rec["s"], minlength=7 * 24)
    for sign, rows in edge_rows.items():
        if rows is None or not len(rows["day"]):
            continue
        grid = np.zeros((7, 24), dtype="int64")
        hours = np.column_stack([rows[h] for h in HOUR_COLUMNS])
        np.add.at(grid, (rows["day"] + 3) % 7, hours)
        cap_s += sign * grid.ravel()
    return pd.DataFrame(
        (cap_s / 3600).reshape(7, 24),
        index=pd.RangeIndex(7, name="weekday"),
        columns=pd.RangeIndex(24, name="hour"),
        dtype="float64",
    )


#: Day records added to the weekly trend at a time.
TREND_PART = 1 << 16


def _trend(
    session: Session,
    ids: str,
    period: Period,
    d0: int,
    d1: int,
    months: tuple[int, int] | None,
    added: dict[str, Any] | None,
    table: pd.DataFrame,
    clock: m.OpenClock,
    partial: _Partial | None,
) -> pd.DataFrame:
    """Utilization per ISO week of the period (as :func:`measures.weekly_trend`): the months'
    booked seconds by day (those of the period), the other days' from the daily rows
    (``added``: the edge days read whole, :func:`_edge_days`)."""
    weeks = week_windows(period)
    monday0 = d0 - (d0 + 3) % 7
    days_to = d1
    booked = np.zeros(len(weeks), dtype="int64")
    realized = np.zeros(len(weeks), dtype="int64")

    def add(day: Any, b: Any, r: Any) -> None:
        day, b, r = np.asarray(day), np.asarray(b), np.asarray(r)
        # A part at a time: a city's year is about 350,000 records, and its temporaries
        # (weeks, masks, 64-bit copies) at once were 11 MB of the dashboard's peak.
        for i in range(0, len(day), TREND_PART):
            days = day[i : i + TREND_PART].astype("int64")
            week = (days - monday0) // 7
            inside = (days >= d0) & (days <= days_to) & (week < len(weeks))
            np.add.at(booked, week[inside], b[i : i + TREND_PART][inside].astype("int64"))
            np.add.at(realized, week[inside], r[i : i + TREND_PART][inside].astype("int64"))

    # A month at a time: a city's year of day records is 7 MB handed over at once (and held
    # three times: the connection's buffer, the driver's result, the bytes), a month's 0.6 MB.
    for month in range(months[0], months[1] + 1) if months else ():
        (blob,) = _blobs(session, _scoped(ids, venue_month_days, md.month == month, md.days))
        rec = np.frombuffer(blob, dtype=DAY_RECORD)
        add(rec["day"], rec["booked"], rec["realized"])
        del blob, rec
    if added is not None:
        add(added["day"], added["booked_s"], added["realized_s"])
    if partial is not None:  # after the whole days: the months' records of it are not its
        days_to = partial.day
        add([partial.day], [partial.booked_s], [partial.realized_s])
    cap = table["capacity_units"].astype("int64").to_numpy()
    vids = table.index.to_numpy()
    rows = []
    for i, (label, a, b) in enumerate(weeks):
        aa, bb = np.full(len(vids), a), np.full(len(vids), b)
        open_cap = float((clock.between(vids, aa, bb) * cap).sum())
        rows.append(
            {
                "week": label,
                "open_cap_hours": open_cap / 3600,
                "booked_cap_hours": int(booked[i]) / 3600,
                "realized_cap_hours": int(realized[i]) / 3600,
            }
        )
    out = pd.DataFrame(
        rows, columns=["week", "open_cap_hours", "booked_cap_hours", "realized_cap_hours"]
    )
    out["utilization"] = m._ratio(out["booked_cap_hours"], out["open_cap_hours"])
    out["realized_utilization"] = m._ratio(out["realized_cap_hours"], out["open_cap_hours"])
    return out
