"""The figures of whole local days from the daily aggregates (``venue_day_usage``), never
reading a booking row: the database sums the days of the period per venue and booking unit,
per weekday and per week, so the cost grows with venues × days, not with bookings.

The same figures as :mod:`mapservice.stats.measures` computes from the rows (tested equal),
for a period of whole days (not cut at now inside a day); the median lead time, which no sum
gives, is not among them (NaN). Stale days (``venue_day_stale``) are recounted first
(:func:`mapservice.stats.aggregates.refresh`, in the caller's transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session

from mapservice.models import Venue
from mapservice.models.stats import COUNT_COLUMNS, HOUR_COLUMNS, venue_day_usage
from mapservice.stats import measures as m
from mapservice.stats.aggregates import local_day, refresh
from mapservice.stats.frames import (
    Scope,
    _venue_filter,
    int_columns,
    load_open_intervals,
    load_venues,
    week_windows,
)
from mapservice.stats.periods import Period

u = venue_day_usage.c
TREND_COLUMNS = (
    "open_cap_hours",
    "booked_cap_hours",
    "realized_cap_hours",
    "utilization",
    "realized_utilization",
)


@dataclass
class DailyFigures:
    """The venue table (as :func:`measures.compute`'s, ``lead_days`` NaN), the scope's totals,
    the heatmap, the sharing by unit and the weekly trend."""

    venues: pd.DataFrame
    totals: dict[str, float]
    heat: pd.DataFrame
    sharing: pd.DataFrame
    trend: pd.DataFrame
    #: the open seconds' clock of the period (set by :mod:`mapservice.stats.monthly`)
    clock: m.OpenClock | None = None


def _days(period: Period) -> tuple[int, int]:
    if period.end_at != period.calendar_end_at:
        raise ValueError("the daily aggregates hold whole days: a period cut inside one")
    return local_day(period.start_at, period.tz), local_day(period.calendar_end_at, period.tz) - 1


def _scoped(scope: Scope, d0: int, d1: int, *columns: Any) -> Any:
    return (
        select(*columns)
        .join(Venue, Venue.id == u.venue_id)
        .where(*_venue_filter(scope), u.day.between(d0, d1))  # type: ignore[arg-type]
    )


def figures(
    session: Session, scope: Scope, period: Period, *, fresh: bool = True, trend: bool = True
) -> DailyFigures:
    """The figures of ``period`` (whole local days) for ``scope`` from the daily aggregates
    (``fresh``: recount stale days first; ``trend`` false: no weekly trend, an empty one)."""
    if fresh:
        refresh(session)
    d0, d1 = _days(period)
    venues = load_venues(session, scope)
    venues["type_label"] = venues["type"]
    open_iv = load_open_intervals(session, [int(v) for v in venues["venue_id"]], period)
    t0, t1 = int(period.start_at.timestamp()), int(period.end_at.timestamp())
    clock = m.OpenClock(open_iv, t0, t1)
    # Per venue and booking unit: the period's sums.
    sums = [func.sum(u[c], type_=BigInteger) for c in ("booked_s", "realized_s", *COUNT_COLUMNS)]
    cols = int_columns(
        session,
        _scoped(scope, d0, d1, u.venue_id, u.group_unit_id, *sums).group_by(
            u.venue_id, u.group_unit_id
        ),
    )
    names = ["venue_id", "group_unit_id", "booked_s", "realized_s", *COUNT_COLUMNS]
    by_unit = pd.DataFrame(dict(zip(names, cols, strict=True)))
    table = venues.copy().set_index("venue_id", drop=False)
    table.index.name = None
    table["street_key"] = table["street_id"].fillna(-1).astype("int64")
    cap = table["capacity_units"].astype("int64")
    open_s = m.open_seconds_by_venue(open_iv).reindex(table.index, fill_value=0)
    table["open_hours"] = open_s.astype("float64") / 3600
    table["open_cap_hours"] = table["open_hours"] * cap
    owner = table["unit_id"].reindex(by_unit["venue_id"]).to_numpy()
    shared = by_unit["group_unit_id"].to_numpy() != owner
    by_unit["shared_s"] = np.where(shared, by_unit["booked_s"], 0)
    per_venue = by_unit.groupby("venue_id").sum().reindex(table.index, fill_value=0)
    away = by_unit[shared & (by_unit["group_unit_id"].to_numpy() > 0)]
    used = away.groupby("group_unit_id")["booked_s"].sum() / 3600
    table, totals, sharing = venue_and_unit_tables(table, per_venue, used)
    # Heatmap: by weekday (1970-01-01, day 0, was a Thursday: weekday 3).
    weekday = (u.day + 3) % 7
    hcols = int_columns(
        session,
        _scoped(
            scope, d0, d1, weekday, *(func.sum(u[h], type_=BigInteger) for h in HOUR_COLUMNS)
        ).group_by(weekday),
    )
    heat = np.zeros((7, 24))
    if len(hcols[0]):
        heat[hcols[0]] = np.column_stack(hcols[1:]) / 3600
    heat_frame = pd.DataFrame(
        heat,
        index=pd.RangeIndex(7, name="weekday"),
        columns=pd.RangeIndex(24, name="hour"),
        dtype="float64",
    )
    weekly = (
        _trend(session, scope, period, d0, d1, table, clock)
        if trend
        else pd.DataFrame(columns=["week", *TREND_COLUMNS])
    )
    return DailyFigures(table, totals, heat_frame, sharing, weekly)


def venue_and_unit_tables(
    table: pd.DataFrame, per_venue: pd.DataFrame, used: pd.Series
) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame]:
    """The venue table completed from each venue's sums (``per_venue``: seconds booked,
    realized and shared, and the counts), its totals, and sharing by unit: given (the unit's
    venues) and used elsewhere (``used``: capacity-hours its groups booked at other units'
    venues, by unit) — as the daily and the month level both count them."""
    table["booked_cap_hours"] = per_venue["booked_s"] / 3600
    table["realized_cap_hours"] = per_venue["realized_s"] / 3600
    table["shared_cap_hours"] = per_venue["shared_s"] / 3600
    for c in COUNT_COLUMNS:
        table[c] = per_venue[c].astype("int64")
    table["lead_days"] = np.nan
    table = m.add_rates(table)
    totals = _totals(table)
    sharing = table.groupby("unit_id").agg(
        name=("unit_name", "first"),
        venues=("venue_id", "size"),
        booked_cap_hours=("booked_cap_hours", "sum"),
        shared_cap_hours=("shared_cap_hours", "sum"),
    )
    sharing["used_elsewhere_cap_hours"] = used.reindex(sharing.index, fill_value=0.0)
    sharing["sharing_rate"] = m._ratio(sharing["shared_cap_hours"], sharing["booked_cap_hours"])
    sharing["key"] = sharing.index
    sharing = sharing.sort_values(["shared_cap_hours", "sharing_rate"], ascending=False)
    return table, totals, sharing


def _totals(table: pd.DataFrame) -> dict[str, float]:
    columns = [*m.SUMMED, "utilization", "realized_utilization", "sharing_rate", "no_show_rate"]
    columns += ["cancellation_rate", "lead_days", "venues"]
    if table.empty:
        return {c: 0.0 for c in columns}
    row = table[m.SUMMED].sum().to_frame().T
    row["venues"] = len(table)
    row["lead_days"] = np.nan
    out = m.add_rates(row).iloc[0]
    return {c: float(out[c]) if pd.notna(out[c]) else 0.0 for c in columns}


def _trend(
    session: Session,
    scope: Scope,
    period: Period,
    d0: int,
    d1: int,
    table: pd.DataFrame,
    clock: m.OpenClock,
) -> pd.DataFrame:
    """Utilization per ISO week of the period (as :func:`measures.weekly_trend`)."""
    weeks = week_windows(period)
    monday0 = d0 - (d0 + 3) % 7
    week = (u.day - monday0) // 7
    cols = int_columns(
        session,
        _scoped(
            scope,
            d0,
            d1,
            week,
            func.sum(u.booked_s, type_=BigInteger),
            func.sum(u.realized_s, type_=BigInteger),
        ).group_by(week),
    )
    booked = dict(zip(cols[0].tolist(), cols[1].tolist(), strict=True))
    realized = dict(zip(cols[0].tolist(), cols[2].tolist(), strict=True))
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
                "booked_cap_hours": booked.get(i, 0) / 3600,
                "realized_cap_hours": realized.get(i, 0) / 3600,
            }
        )
    out = pd.DataFrame(
        rows, columns=["week", "open_cap_hours", "booked_cap_hours", "realized_cap_hours"]
    )
    out["utilization"] = m._ratio(out["booked_cap_hours"], out["open_cap_hours"])
    out["realized_utilization"] = m._ratio(out["realized_cap_hours"], out["open_cap_hours"])
    return out
