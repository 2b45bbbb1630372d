"""Per-venue daily aggregates of the bookings (``venue_day_usage``), kept equal to a recount of
the rows.

What a day of a venue holds, per unit of the booking group (0: a group of no unit), in the
committee's time zone (``docs/stats.md``, "Daily aggregates"):

- ``booked_s`` / ``realized_s``: confirmed and completed (completed only) bookings' unit-seconds
  inside the day **and** inside the venue's open intervals (weekly hours minus closures), as
  the row-level figures count them (:mod:`mapservice.stats.measures`);
- ``h00`` … ``h23``: the same bookings' unit-seconds by local hour (not cut to opening hours:
  the heatmap's definition), each booking cut at the clock hours and at local midnights;
- ``bookings``, ``cancelled``, ``completed``, ``no_show``: bookings that start on the day.

Every change these depend on is logged in ``venue_day_stale`` by database triggers, in the
transaction that makes it (migration 0022): a write path, an import or a seed cannot forget
it. :func:`refresh` recounts exactly the stale days from the rows with the same arithmetic
(:class:`mapservice.stats.measures.OpenClock`) and clears the log; :func:`rebuild` recounts
everything. The opening hours and time zones are Python's (``zoneinfo``), which SQLite's
triggers could not compute: the triggers log, Python counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import case, delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from mapservice.models import Booking, Committee, Group, Venue
from mapservice.models.stats import (
    COUNT_COLUMNS,
    HOUR_COLUMNS,
    venue_day_stale,
    venue_day_usage,
    venue_month_days,
    venue_month_usage,
    venue_year_usage,
)
from mapservice.stats.calendars import DAY_S, ZoneClock
from mapservice.stats.frames import STATUSES, among, epoch, int_columns, load_open_intervals
from mapservice.stats.measures import OpenClock
from mapservice.stats.periods import Period

KEYS = ("venue_id", "day", "group_unit_id")
VALUES = ("booked_s", "realized_s", *HOUR_COLUMNS, *COUNT_COLUMNS)
COLUMNS = (*KEYS, *VALUES)
_BOOKED = (STATUSES.index("confirmed"), STATUSES.index("completed"))
_COMPLETED = STATUSES.index("completed")
_CANCELLED = STATUSES.index("cancelled")
_NO_SHOW = STATUSES.index("no_show")
#: The advisory lock that serializes refreshes on PostgreSQL.
_REFRESH_LOCK = 22_0022
#: Rows written per statement.
_CHUNK = 5000


def local_day(at: datetime, tz: ZoneInfo) -> int:
    """The local day (days since 1970-01-01 in ``tz``) of an instant."""
    return (at.astimezone(tz).date() - date(1970, 1, 1)).days


def day_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


# ---------------------------------------------------------------------------- counting


def usage_rows(bookings: pd.DataFrame, clock: OpenClock, zone: ZoneClock) -> pd.DataFrame:
    """The aggregate rows (:data:`COLUMNS`) of ``bookings`` (``venue_id, group_unit_id`` (0: no
    unit), ``start, end`` (epoch seconds), ``units, status`` (index in :data:`STATUSES`)), all
    of venues in ``zone``'s time zone whose open intervals ``clock`` holds. Every day the
    bookings touch gets a row: days beyond the clock's span count no open seconds."""
    vid = bookings["venue_id"].to_numpy(dtype="int64")
    gunit = bookings["group_unit_id"].to_numpy(dtype="int64")
    start = bookings["start"].to_numpy(dtype="int64")
    end = bookings["end"].to_numpy(dtype="int64")
    units = bookings["units"].to_numpy(dtype="int64")
    status = bookings["status"].to_numpy(dtype="int64")
    frames = []
    # Bookings that start on each day.
    sday = zone.local(start) // DAY_S
    counts = pd.DataFrame(
        {
            "venue_id": vid,
            "day": sday,
            "group_unit_id": gunit,
            "bookings": 1,
            "cancelled": (status == _CANCELLED).astype("int64"),
            "completed": (status == _COMPLETED).astype("int64"),
            "no_show": (status == _NO_SHOW).astype("int64"),
        }
    )
    frames.append(counts.groupby(list(KEYS)).sum())
    # Booked seconds, cut at local midnights, then at clock hours for the heatmap.
    live = np.isin(status, _BOOKED) & (end > start)
    v, g, s, e, u = vid[live], gunit[live], start[live], end[live], units[live]
    done = status[live] == _COMPLETED
    open_parts: list[pd.DataFrame] = []
    heat_parts: list[pd.DataFrame] = []
    while len(s):  # the k-th day of each booking that has one: a few rounds, not a row loop
        day = zone.local(s) // DAY_S
        midnight = zone.instant((day + 1) * DAY_S)
        pe = np.minimum(e, midnight)
        open_s = clock.between(v, s, pe) * u
        open_parts.append(
            pd.DataFrame(
                {
                    "venue_id": v,
                    "day": day,
                    "group_unit_id": g,
                    "booked_s": open_s,
                    "realized_s": np.where(done, open_s, 0),
                }
            )
        )
        hs, hu, hv, hg, hd = s, u, v, g, day
        he = pe
        while len(hs):  # the day's clock hours
            top = np.minimum(he, hs // 3600 * 3600 + 3600)
            hour = zone.local(hs) % DAY_S // 3600
            heat_parts.append(
                pd.DataFrame(
                    {
                        "venue_id": hv,
                        "day": hd,
                        "group_unit_id": hg,
                        "hour": hour,
                        "s": (top - hs) * hu,
                    }
                )
            )
            more = he > top
            hs, he, hu, hv, hg, hd = top[more], he[more], hu[more], hv[more], hg[more], hd[more]
        more = e > pe
        v, g, s, e, u, done = v[more], g[more], pe[more], e[more], u[more], done[more]
    if open_parts:
        frames.append(pd.concat(open_parts).groupby(list(KEYS)).sum())
        heat = pd.concat(heat_parts).groupby([*KEYS, "hour"])["s"].sum().unstack("hour")
        heat = heat.reindex(columns=range(24), fill_value=0)
        heat.columns = list(HOUR_COLUMNS)
        frames.append(heat)
    if not len(vid):
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
    out = pd.concat(frames, axis=1).fillna(0).astype("int64")
    out = out.reindex(columns=list(VALUES), fill_value=0).reset_index()
    return out[list(COLUMNS)].sort_values(list(KEYS), ignore_index=True)


def _load(session: Session, venue_ids: list[int], lo: int, hi: int) -> pd.DataFrame:
    """The bookings of ``venue_ids`` meeting epoch seconds ``[lo, hi)``, as :func:`usage_rows`
    reads them (one packed query, as the statistics load theirs)."""
    status_code = case(
        {s: i for i, s in enumerate(STATUSES)}, value=Booking.status, else_=len(STATUSES)
    )
    dialect = session.get_bind().dialect.name
    stmt = (
        select(
            Booking.venue_id,
            func.coalesce(Group.unit_id, 0),
            epoch(Booking.start_at),
            epoch(Booking.end_at),
            Booking.units,
            status_code,
        )
        .join(Group, Booking.group_id == Group.id)
        .where(
            among(Booking.venue_id, venue_ids, dialect),
            Booking.start_at < datetime.fromtimestamp(hi, UTC),
            Booking.end_at > datetime.fromtimestamp(lo, UTC),
        )
    )
    cols = int_columns(session, stmt)
    frame = pd.DataFrame(
        dict(
            zip(["venue_id", "group_unit_id", "start", "end", "units", "status"], cols, strict=True)
        )
    )
    if (frame["status"] >= len(STATUSES)).any():
        raise ValueError("a booking has an unknown status")
    return frame[frame["venue_id"].isin(venue_ids)]


@dataclass(frozen=True)
class Target:
    """Days to count: for each venue of one time zone, local days (a DataFrame of ``venue_id,
    day``, each pair once)."""

    tz: ZoneInfo
    pairs: pd.DataFrame


#: Venues × days one recount reads at most (:func:`day_windows`): about 11,000 bookings of
#: the bench's city, a few MB to count.
WINDOW_VENUE_DAYS = 40_000


def count_days(session: Session, target: Target, *, windows: bool = True) -> pd.DataFrame:
    """The aggregate rows of the target's (venue, day) pairs, recounted from the rows, a
    window of days at a time (:func:`day_windows`; ``windows`` false: all in one read)."""
    if target.pairs.empty:
        return usage_rows(_empty_bookings(), *_no_clock(target.tz))
    cut = day_windows(target.pairs) if windows else [target.pairs]
    parts = [_count_window(session, target.tz, part) for part in cut]
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def day_windows(pairs: pd.DataFrame, budget: int | None = None) -> list[pd.DataFrame]:
    """The (venue, day) pairs cut into runs of consecutive days, each as large as it can be
    while its venues × its days stay within ``budget`` (:data:`WINDOW_VENUE_DAYS`; one day
    whatever it holds) or are at least half of them asked for. A recount reads every booking
    of its venues over its days: the
    stale days of a busy hour spread over a year (a few thousand venues, a day or two each)
    read at once were their venues' whole year, 400,000 bookings and 600 MB to count."""
    budget = WINDOW_VENUE_DAYS if budget is None else budget
    if pairs.empty:
        return []
    ordered = pairs.sort_values("day", kind="stable", ignore_index=True)
    days = ordered["day"].to_numpy(dtype="int64")
    vids = ordered["venue_id"].to_numpy(dtype="int64")
    firsts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])  # each day's first pair
    bounds, venues, begin = [0], set[int](), int(days[0])
    for i, at in enumerate(firsts):
        end = firsts[i + 1] if i + 1 < len(firsts) else len(days)
        day_venues = set(vids[at:end].tolist())
        grown = venues | day_venues
        read = len(grown) * (int(days[at]) - begin + 1)
        # Past the budget, a window that would read mostly days nobody asked for ends here;
        # one dense in its pairs (a venue's every day: a rebuild) goes on as one read.
        if venues and read > budget and read > 2 * (end - bounds[-1]):
            bounds.append(int(at))
            venues, begin = day_venues, int(days[at])
        else:
            venues = grown
    bounds.append(len(days))
    return [ordered.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _count_window(session: Session, tz: ZoneInfo, pairs: pd.DataFrame) -> pd.DataFrame:
    d0, d1 = int(pairs["day"].min()), int(pairs["day"].max())
    venue_ids = sorted(int(v) for v in pairs["venue_id"].unique())
    period = Period("custom", day_date(d0), day_date(d1), tz)
    t0, t1 = round(period.start_at.timestamp()), round(period.end_at.timestamp())
    bookings = _load(session, venue_ids, t0, t1)
    open_iv = load_open_intervals(session, venue_ids, period)
    clock = OpenClock(open_iv, t0, t1)
    zone = ZoneClock.build(tz, t0, t1)
    rows = usage_rows(bookings, clock, zone)
    wanted = pd.MultiIndex.from_frame(pairs[["venue_id", "day"]].astype("int64"))
    keep = pd.MultiIndex.from_frame(rows[["venue_id", "day"]]).isin(wanted)
    return rows[keep].reset_index(drop=True)


def _empty_bookings() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="int64") for c in ("venue_id", "group_unit_id", "start", "end")}
        | {"units": pd.Series(dtype="int64"), "status": pd.Series(dtype="int64")}
    )


def _no_clock(tz: ZoneInfo) -> tuple[OpenClock, ZoneClock]:
    from mapservice.stats.calendars import build_open_intervals

    iv = build_open_intervals(
        [], np.zeros((0, 4), dtype="int64"), [], date(1970, 1, 1), date(1970, 1, 1), 0, 0, tz
    )
    return OpenClock(iv, 0, 0), ZoneClock.build(tz, 0, 0)


# ---------------------------------------------------------------------------- what is stale


def _zones(session: Session, venue_ids: Iterable[int] | None) -> dict[int, ZoneInfo]:
    """Each venue's committee time zone (every venue's when ``venue_ids`` is None)."""
    stmt = select(Venue.id, Committee.timezone).join(Committee, Venue.committee_id == Committee.id)
    if venue_ids is not None:
        ids = sorted(set(venue_ids))
        if not ids:
            return {}
        stmt = stmt.where(Venue.id.between(ids[0], ids[-1]))
        wanted = set(ids)
        return {v: ZoneInfo(tz) for v, tz in session.execute(stmt) if v in wanted}
    return {v: ZoneInfo(tz) for v, tz in session.execute(stmt)}


def _venue_spans(
    session: Session, venue_ids: list[int] | None
) -> tuple[list[tuple[int, datetime, datetime]], list[tuple[int, int, int]]]:
    """(venue, first start, last end) of the bookings of each of the venues (all when None),
    and (venue, first day, last day) the aggregates hold for each."""
    stmt = select(Booking.venue_id, func.min(Booking.start_at), func.max(Booking.end_at)).group_by(
        Booking.venue_id
    )
    held = select(
        venue_day_usage.c.venue_id, func.min(venue_day_usage.c.day), func.max(venue_day_usage.c.day)
    ).group_by(venue_day_usage.c.venue_id)
    if venue_ids is not None:
        stmt = stmt.where(Booking.venue_id.in_(venue_ids))
        held = held.where(venue_day_usage.c.venue_id.in_(venue_ids))
    booked = [(int(v), a, b) for v, a, b in session.execute(stmt)]
    days = [(int(v), int(a), int(b)) for v, a, b in session.execute(held)]
    return booked, days


def stale_targets(session: Session, entries: Sequence[Any]) -> list[Target]:
    """The (venue, day) pairs the log entries name, by time zone."""
    ranges: list[tuple[int, datetime, datetime]] = []
    whole: set[int] = set()
    everything = False
    groups: list[int] = []
    for _id, venue_id, group_id, start_at, end_at in entries:
        if venue_id is None and group_id is None:
            everything = True
        elif venue_id is None:
            groups.append(group_id)
        elif start_at is None or end_at is None:
            whole.add(venue_id)
        else:
            ranges.append((venue_id, start_at, end_at))
    if groups:
        ranges += [
            (int(v), a, b)
            for v, a, b in session.execute(
                select(Booking.venue_id, Booking.start_at, Booking.end_at).where(
                    Booking.group_id.in_(groups)
                )
            )
        ]
    booked, held = (
        _venue_spans(session, None if everything else sorted(whole))
        if everything or whole
        else ([], [])
    )
    ranges += booked
    venues = {r[0] for r in ranges} | whole | {h[0] for h in held}
    zones = _zones(session, None if everything else venues)
    pairs: dict[str, list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]] = {}

    def add(venue: int, first: int, last: int) -> None:
        tz = zones.get(venue)
        if tz is None or last < first:
            return  # a venue no longer there: its rows went with it (ON DELETE CASCADE)
        days = np.arange(first, last + 1, dtype="int64")
        pairs.setdefault(tz.key, []).append((np.full(len(days), venue, dtype="int64"), days))

    for venue, start_at, end_at in ranges:
        tz = zones.get(venue)
        if tz is not None:
            add(venue, local_day(start_at, tz), local_day(end_at - timedelta(microseconds=1), tz))
    for venue, first, last in held:
        add(venue, first, last)
    out = []
    for key, parts in pairs.items():
        frame = pd.DataFrame(
            {
                "venue_id": np.concatenate([p[0] for p in parts]),
                "day": np.concatenate([p[1] for p in parts]),
            }
        ).drop_duplicates(ignore_index=True)
        out.append(Target(ZoneInfo(key), frame))
    return out


# ---------------------------------------------------------------------------- writing


def _replace(session: Session, target: Target, rows: pd.DataFrame, *, clear: bool = True) -> None:
    """Delete the target's days from the aggregates (unless ``clear`` is false: none held)
    and write ``rows`` in their place."""
    conn = session.connection()
    held = target.pairs.groupby("venue_id")["day"] if clear else []
    for venue, days in held:
        ordered = np.sort(days.to_numpy())
        # contiguous runs of days: one delete each
        breaks = np.flatnonzero(np.diff(ordered) != 1)
        firsts = np.concatenate([[ordered[0]], ordered[breaks + 1]])
        lasts = np.concatenate([ordered[breaks], [ordered[-1]]])
        for a, b in zip(firsts, lasts, strict=True):
            conn.execute(
                delete(venue_day_usage).where(
                    venue_day_usage.c.venue_id == int(venue),
                    venue_day_usage.c.day.between(int(a), int(b)),
                )
            )
    _write(session, rows)


def _write(session: Session, rows: pd.DataFrame) -> None:
    """Append ``rows`` to the aggregates: COPY on PostgreSQL, one prepared statement run for
    all rows on SQLite (plain integers, no ORM or per-row dictionaries)."""
    if rows.empty:
        return
    values = rows[list(COLUMNS)].to_numpy(dtype="int64").tolist()
    names = ", ".join(COLUMNS)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur, cur.copy(f"COPY venue_day_usage ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO venue_day_usage ({names}) VALUES ({marks})"  # noqa: S608 - constants
    for i in range(0, len(values), 50_000):
        conn.exec_driver_sql(sql, [tuple(r) for r in values[i : i + 50_000]])


def refresh(session: Session, *, _emptied: bool = False) -> int:
    """Recount the days the log names, from the rows, and clear those entries (in the
    session's transaction: the caller commits). Returns how many entries were cleared.

    Only the entries read here are cleared: one a concurrent transaction logs meanwhile stays
    for the next refresh."""
    if session.get_bind().dialect.name == "postgresql":
        # One refresh at a time (the worker's job, a report's): two recounting the same day
        # would both write its row. SQLite's writers take turns anyway.
        session.execute(select(func.pg_advisory_xact_lock(_REFRESH_LOCK)))
    entries = session.execute(
        select(
            venue_day_stale.c.id,
            venue_day_stale.c.venue_id,
            venue_day_stale.c.group_id,
            venue_day_stale.c.start_at,
            venue_day_stale.c.end_at,
        ).order_by(venue_day_stale.c.id)
    ).all()
    if not entries:
        return 0
    months = []
    for target in stale_targets(session, entries):
        _replace(session, target, count_days(session, target), clear=not _emptied)
        months.append(target.pairs.assign(month=day_month(target.pairs["day"].to_numpy())))
    if months:
        pairs = pd.concat(months)[["venue_id", "month"]].drop_duplicates(ignore_index=True)
        replace_months(session, pairs, clear=not _emptied)
        years = pairs.assign(year=pairs["month"].to_numpy(dtype="int64") // 12 + 1970)
        years = years[["venue_id", "year"]].drop_duplicates(ignore_index=True)
        replace_years(session, years, clear=not _emptied)
    ids = [e[0] for e in entries]
    conn = session.connection()
    for i in range(0, len(ids), _CHUNK):
        conn.execute(delete(venue_day_stale).where(venue_day_stale.c.id.in_(ids[i : i + _CHUNK])))
    return len(entries)


def rebuild(session: Session) -> int:
    """Recount every venue's days from the rows (``mapservice stats rebuild``): the log is
    cleared and the aggregates written anew. Returns how many rows they hold."""
    conn = session.connection()
    conn.execute(delete(venue_day_stale))
    conn.execute(delete(venue_day_usage))
    for table in (venue_month_usage, venue_month_days, venue_year_usage):
        conn.execute(delete(table))
    conn.execute(insert(venue_day_stale).values(venue_id=None))
    refresh(session, _emptied=True)
    return int(session.execute(select(func.count()).select_from(venue_day_usage)).scalar_one())


def recount(session: Session) -> pd.DataFrame:
    """Every aggregate row as a full recount from the rows would give it (nothing written):
    what the aggregates must equal once refreshed (each time zone's days in one read, not in
    the refresh's windows)."""
    targets = stale_targets(session, [(0, None, None, None, None)])
    rows = [count_days(session, t, windows=False) for t in targets]
    frame = (
        pd.concat(rows, ignore_index=True)
        if rows
        else usage_rows(_empty_bookings(), *_no_clock(ZoneInfo("UTC")))
    )
    return _nonzero(frame)


def stored(session: Session) -> pd.DataFrame:
    """The aggregate rows as stored, in :func:`recount`'s order."""
    result = session.execute(select(*(venue_day_usage.c[c] for c in COLUMNS)))
    frame = pd.DataFrame([tuple(r) for r in result], columns=list(COLUMNS)).astype("int64")
    return _nonzero(frame)


def _nonzero(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(KEYS), ignore_index=True)[list(COLUMNS)].astype("int64")


# ---------------------------------------------------------------------------- the months
#
# ``venue_month_usage``: per venue and local month, the daily rows summed over the booking
# units, with the heatmap by weekday × hour and the cross-unit use packed in the row;
# ``venue_month_days``: the booked seconds by day, packed. Recounted from the daily rows, for
# the months of the days a refresh recounts (after all of them are written).

MONTH_KEYS = ("venue_id", "month")
MONTH_VALUES = ("booked_s", "realized_s", "shared_s", *COUNT_COLUMNS)
BLOBS = ("heat", "shared", "days")
MONTH_COLUMNS = (*MONTH_KEYS, *MONTH_VALUES, *BLOBS)
YEAR_KEYS = ("venue_id", "year")
YEAR_COLUMNS = (*YEAR_KEYS, *MONTH_VALUES, "heat", "shared")
#: A heatmap record: slot (weekday × 24 + local hour, Monday 0) and unit-seconds.
HEAT_RECORD = np.dtype([("slot", "u1"), ("s", "<i8")])
#: A cross-unit record: the booking group's unit and unit-seconds.
SHARED_RECORD = np.dtype([("unit", "<i4"), ("s", "<i8")])
#: A day record: the local day, booked and realized unit-seconds inside opening hours.
DAY_RECORD = np.dtype([("day", "<i4"), ("booked", "<i8"), ("realized", "<i8")])
#: 1970-01-01 (day 0) was a Thursday.
EPOCH_WEEKDAY = 3


def day_month(days: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The month (since 1970-01) of each local day (since 1970-01-01)."""
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    return d.astype("datetime64[M]").astype("int64")


def month_days(month: int) -> tuple[int, int]:
    """The first and last local day of a month (since 1970-01)."""
    m = np.datetime64(int(month), "M")
    first = int(m.astype("datetime64[D]").astype("int64"))
    last = int((m + 1).astype("datetime64[D]").astype("int64")) - 1
    return first, last


def _daily_rows(session: Session, venue_ids: list[int], d0: int, d1: int) -> pd.DataFrame:
    """The daily rows of ``venue_ids`` on days ``d0``..``d1``."""
    dialect = session.get_bind().dialect.name
    stmt = select(*(venue_day_usage.c[c] for c in COLUMNS)).where(
        among(venue_day_usage.c.venue_id, venue_ids, dialect),
        venue_day_usage.c.day.between(d0, d1),
    )
    cols = int_columns(session, stmt)
    frame = pd.DataFrame(dict(zip(COLUMNS, cols, strict=True)))
    return frame[frame["venue_id"].isin(venue_ids)]


def _owners(session: Session, venue_ids: list[int]) -> pd.Series:
    dialect = session.get_bind().dialect.name
    stmt = select(Venue.id, Venue.unit_id).where(among(Venue.id, venue_ids, dialect))
    rows = session.execute(stmt).all()
    return pd.Series({int(v): int(u) for v, u in rows}, dtype="int64")


def _packed(
    index: pd.MultiIndex, keys: pd.DataFrame, dtype: np.dtype[Any], **fields: Any
) -> np.ndarray[Any, Any]:
    """One blob of records (``dtype``, ``fields`` its columns) for each key of ``index``:
    the records of the rows of ``keys`` (sorted, aligned with the fields) equal to it, b""
    for a key with none."""
    records = np.empty(len(keys), dtype=dtype)
    for name, values in fields.items():
        records[name] = values
    out = np.full(len(index), b"", dtype="object")
    if not len(keys):
        return out
    k = keys.to_numpy()
    starts = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]).any(axis=1)])
    buf, size = records.tobytes(), records.itemsize
    ends = np.r_[starts[1:], len(records)] * size
    blobs = [buf[a:b] for a, b in zip((starts * size).tolist(), ends.tolist(), strict=True)]
    at = index.get_indexer(pd.MultiIndex.from_arrays([k[starts, 0], k[starts, 1]]))
    out[at] = blobs
    return out


def day_year(days: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The calendar year (e.g. 2026) of each local day (since 1970-01-01)."""
    return day_month(days) // 12 + 1970


def month_rows(daily: pd.DataFrame, owners: pd.Series, *, by: str = "month") -> pd.DataFrame:
    """The month rows (:data:`MONTH_COLUMNS`) of the daily rows ``daily`` (every row of the
    months they cover), venues' units ``owners``; ``by="year"``: the year rows
    (:data:`YEAR_COLUMNS`) of the daily rows of whole years, the same sums by calendar year."""
    day = daily["day"].to_numpy()
    d = daily.assign(**{by: day_month(day) if by == "month" else day_year(day)})
    owner = owners.reindex(d["venue_id"]).to_numpy()
    gunit = d["group_unit_id"].to_numpy()
    d["shared_s"] = np.where(gunit != owner, d["booked_s"], 0)
    keys = ["venue_id", by]
    totals = d.groupby(keys)[list(MONTH_VALUES)].sum().reset_index()
    index = pd.MultiIndex.from_frame(totals[keys])
    # heatmap: weekday × hour, the nonzero slots
    weekday = (d["day"].to_numpy() + EPOCH_WEEKDAY) % 7
    hours = d[list(HOUR_COLUMNS)].to_numpy(dtype="int64")
    nz_row, nz_hour = np.nonzero(hours)
    heat = pd.DataFrame(
        {
            "venue_id": d["venue_id"].to_numpy()[nz_row],
            by: d[by].to_numpy()[nz_row],
            "slot": weekday[nz_row] * 24 + nz_hour,
            "s": hours[nz_row, nz_hour],
        }
    )
    heat = heat.groupby([*keys, "slot"], sort=True)["s"].sum().reset_index()
    heat = heat[heat["s"] != 0]
    totals["heat"] = _packed(
        index, heat[keys], HEAT_RECORD, slot=heat["slot"].to_numpy(), s=heat["s"].to_numpy()
    )
    # cross-unit use
    away = d[(gunit != owner) & (gunit > 0)]
    shared = away.groupby([*keys, "group_unit_id"], sort=True)["booked_s"].sum().reset_index()
    shared = shared[shared["booked_s"] != 0]
    totals["shared"] = _packed(
        index,
        shared[keys],
        SHARED_RECORD,
        unit=shared["group_unit_id"].to_numpy(),
        s=shared["booked_s"].to_numpy(),
    )
    if by == "year":
        return _typed(totals[list(YEAR_COLUMNS)], YEAR_KEYS)
    # booked seconds by day
    days = d.groupby([*keys, "day"], sort=True)[["booked_s", "realized_s"]].sum().reset_index()
    days = days[(days["booked_s"] != 0) | (days["realized_s"] != 0)]
    totals["days"] = _packed(
        index,
        days[keys],
        DAY_RECORD,
        day=days["day"].to_numpy(),
        booked=days["booked_s"].to_numpy(),
        realized=days["realized_s"].to_numpy(),
    )
    return _typed(totals[list(MONTH_COLUMNS)])


#: Each level above the days: the tables its rows are written to, with their columns.
_LEVEL_TABLES: dict[str, tuple[tuple[Any, Sequence[str]], ...]] = {
    "month": (
        (venue_month_usage, (*MONTH_KEYS, *MONTH_VALUES, "heat", "shared")),
        (venue_month_days, (*MONTH_KEYS, "days")),
    ),
    "year": ((venue_year_usage, YEAR_COLUMNS),),
}


def _count_level(session: Session, pairs: pd.DataFrame, by: str) -> pd.DataFrame:
    """The rows of level ``by`` (``month``: months since 1970-01; ``year``: calendar years)
    of the (``venue_id``, ``by``) pairs, from the daily rows."""
    if pairs.empty:
        empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
        return month_rows(empty, pd.Series(dtype="int64"), by=by)
    venue_ids = sorted(int(v) for v in pairs["venue_id"].unique())
    lo, hi = int(pairs[by].min()), int(pairs[by].max())
    if by == "year":
        lo, hi = (lo - 1970) * 12, (hi - 1970) * 12 + 11
    daily = _daily_rows(session, venue_ids, month_days(lo)[0], month_days(hi)[1])
    days = daily["day"].to_numpy()
    key = day_month(days) if by == "month" else day_year(days)
    wanted = pd.MultiIndex.from_frame(pairs[["venue_id", by]].astype("int64"))
    daily = daily[pd.MultiIndex.from_arrays([daily["venue_id"].to_numpy(), key]).isin(wanted)]
    return month_rows(daily, _owners(session, venue_ids), by=by)


#: Venues recounted at once above the days: a year's rows are recounted from its daily rows
#: (about a hundred per venue in the bench's city, 35 columns each), so a refresh after a
#: busy day (thousands of venues) reads them a bounded part at a time. 100 venues' year is
#: about 3 MB handed over (500 was 10 MB: on PostgreSQL the connection's input buffer grows to
#: the largest value it receives, and that was the largest of a dashboard's request).
LEVEL_CHUNK = 100
#: (venue, month or year) pairs deleted by one statement: two bound parameters each, well
#: under SQLite's limit (32,766).
DELETE_PAIRS = 4000


def _replace_level(session: Session, pairs: pd.DataFrame, by: str, *, clear: bool) -> None:
    """Recount the (``venue_id``, ``by``) pairs' rows of level ``by`` from the daily rows,
    :data:`LEVEL_CHUNK` venues at a time (each venue's rows are its own)."""
    conn = session.connection()
    venues = np.sort(pairs["venue_id"].unique())
    for i in range(0, len(venues), LEVEL_CHUNK):
        part = pairs[pairs["venue_id"].isin(venues[i : i + LEVEL_CHUNK])]
        rows = _count_level(session, part, by)
        keys = part[["venue_id", by]].drop_duplicates()
        held = list(zip(keys["venue_id"].tolist(), keys[by].tolist(), strict=True))
        for table, columns in _LEVEL_TABLES[by]:
            if clear:
                for j in range(0, len(held), DELETE_PAIRS):
                    pair = tuple_(table.c.venue_id, table.c[by])
                    conn.execute(delete(table).where(pair.in_(held[j : j + DELETE_PAIRS])))
            _write_table(session, table.name, columns, rows)


def count_months(session: Session, pairs: pd.DataFrame) -> pd.DataFrame:
    """The month rows of the (``venue_id``, ``month``) pairs, from the daily rows."""
    return _count_level(session, pairs, "month")


def replace_months(session: Session, pairs: pd.DataFrame, *, clear: bool = True) -> None:
    """Recount the (``venue_id``, ``month``) pairs' month rows from the daily rows."""
    _replace_level(session, pairs, "month", clear=clear)


def count_years(session: Session, pairs: pd.DataFrame) -> pd.DataFrame:
    """The year rows of the (``venue_id``, ``year``) pairs, from the daily rows."""
    return _count_level(session, pairs, "year")


def replace_years(session: Session, pairs: pd.DataFrame, *, clear: bool = True) -> None:
    """Recount the (``venue_id``, ``year``) pairs' year rows from the daily rows."""
    _replace_level(session, pairs, "year", clear=clear)


def _write_table(session: Session, table: str, columns: Sequence[str], rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    values = list(
        zip(
            *(
                rows[c].tolist() if c in BLOBS else rows[c].to_numpy(dtype="int64").tolist()
                for c in columns
            ),
            strict=True,
        )
    )
    names = ", ".join(columns)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - constants
    for i in range(0, len(values), 50_000):
        conn.exec_driver_sql(sql, values[i : i + 50_000])


def rebuild_months(session: Session) -> int:
    """Recount every month row from the daily rows (as they are); returns how many."""
    conn = session.connection()
    for table in (venue_month_usage, venue_month_days):
        conn.execute(delete(table))
    venue, day = int_columns(
        session, select(venue_day_usage.c.venue_id, venue_day_usage.c.day).distinct()
    )
    if len(venue):
        frame = pd.DataFrame({"venue_id": venue, "month": day_month(day)})
        replace_months(session, frame.drop_duplicates(ignore_index=True), clear=False)
    return int(session.execute(select(func.count()).select_from(venue_month_usage)).scalar_one())


def recount_months(session: Session) -> pd.DataFrame:
    """The month rows as a full recount from the booking rows would give them."""
    daily = recount(session)
    venue_ids = sorted(int(v) for v in daily["venue_id"].unique())
    owners = _owners(session, venue_ids) if venue_ids else pd.Series(dtype="int64")
    return month_rows(daily, owners)


def recount_years(session: Session) -> pd.DataFrame:
    """The year rows as a full recount from the booking rows would give them."""
    daily = recount(session)
    venue_ids = sorted(int(v) for v in daily["venue_id"].unique())
    owners = _owners(session, venue_ids) if venue_ids else pd.Series(dtype="int64")
    return month_rows(daily, owners, by="year")


def stored_years(session: Session) -> pd.DataFrame:
    """The year rows as stored, in :func:`recount_years`' order."""
    y = venue_year_usage.c
    rows = [tuple(r) for r in session.execute(select(*(y[c] for c in YEAR_COLUMNS)))]
    return _typed(pd.DataFrame(rows, columns=list(YEAR_COLUMNS)), YEAR_KEYS)


def stored_months(session: Session) -> pd.DataFrame:
    """The month rows as stored, in :func:`recount_months`' order (a month's row and its
    days together: a row of one without the other shows as NULLs)."""
    u, dd = venue_month_usage.c, venue_month_days.c
    stmt = select(
        func.coalesce(u.venue_id, dd.venue_id),
        func.coalesce(u.month, dd.month),
        *(u[c] for c in (*MONTH_VALUES, "heat", "shared")),
        dd.days,
    ).join(venue_month_days, (dd.venue_id == u.venue_id) & (dd.month == u.month), full=True)
    rows = [tuple(r) for r in session.execute(stmt)]
    return _typed(pd.DataFrame(rows, columns=list(MONTH_COLUMNS)))


def _typed(frame: pd.DataFrame, keys: Sequence[str] = MONTH_KEYS) -> pd.DataFrame:
    """Month (or year) rows in key order, integers as int64 and blobs as bytes (empty ones
    alike)."""
    blobs = [c for c in BLOBS if c in frame.columns]
    out = frame.astype({c: "int64" for c in frame.columns if c not in blobs})
    for c in blobs:
        out[c] = pd.Series([bytes(b) for b in frame[c]], index=frame.index, dtype="object")
    return out.sort_values(list(keys), ignore_index=True)
