"""The dashboard's content for one scope and period: figures, tables, streets and coverage.

:func:`build_report` loads and computes once; tables, charts, maps and exports are cut from
the :class:`Report` it returns.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core.coverage import Coverage, coverage
from mapservice.core.geo import area_km2
from mapservice.core.i18n import _, lang
from mapservice.models import Area, Venue
from mapservice.policy import venues_public
from mapservice.stats import measures as m
from mapservice.stats.daily import DailyFigures
from mapservice.stats.frames import (
    Scope,
    load_bookings,
    load_lead_times,
    load_open_intervals,
    load_venues,
    type_label,
    type_labels,
    week_windows,
)
from mapservice.stats.periods import Period

GROUP_BYS = ("venue", "unit", "type", "street")
DEFAULT_THRESHOLD = 0.10
DEFAULT_COVERAGE_TYPE = "youth_home"
DEFAULT_RADIUS_M = 1000.0


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    #: text, int, hours, pct, days, float
    kind: str = "text"

    def header(self, language: str) -> str:
        return self.en if language == "en" else self.zh


@dataclass
class Table:
    """A named table: columns with Chinese and English headers, rows as a DataFrame."""

    name: str
    title: str
    columns: list[Column]
    frame: pd.DataFrame

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The rows as dicts by column key; the first ``limit`` only when given (the page
        shows a few of a city's rows without converting them all)."""
        keys = [c.key for c in self.columns]
        frame = self.frame if limit is None else self.frame.head(limit)
        return [dict(zip(keys, row, strict=True)) for row in frame[keys].itertuples(index=False)]


@dataclass
class Report:
    scope: Scope
    period: Period
    group_by: str
    threshold: float
    fig: m.Figures
    totals: dict[str, float]
    grouped: pd.DataFrame
    by_type: pd.DataFrame
    by_unit: pd.DataFrame
    sharing: pd.DataFrame
    trend: pd.DataFrame
    heat: pd.DataFrame
    streets: pd.DataFrame
    district: BaseGeometry | None
    street_shapes: list[tuple[str, BaseGeometry]]
    coverage: Coverage
    coverage_type: str
    coverage_points: list[tuple[float, float]] = field(default_factory=list)

    @property
    def coverage_type_label(self) -> str:
        return type_label(self.coverage_type)

    @property
    def venues(self) -> pd.DataFrame:
        return self.fig.venues

    @property
    def idle(self) -> pd.DataFrame:
        """Venues below the threshold, least used first (ties: fewer open hours last)."""
        vt = self.venues
        idle = vt[(vt["utilization"] < self.threshold) & (vt["open_cap_hours"] > 0)]
        return idle.sort_values(
            ["utilization", "open_cap_hours", "name"], ascending=[True, False, True]
        )

    @property
    def top(self) -> pd.DataFrame:
        vt = self.venues
        return (
            vt[vt["open_cap_hours"] > 0]
            .sort_values(["utilization", "booked_cap_hours"], ascending=False)
            .head(10)
        )


def _areas(
    session: Session, committee_id: int
) -> tuple[BaseGeometry | None, list[tuple[int, str, BaseGeometry]]]:
    areas = session.scalars(
        select(Area).where(Area.committee_id == committee_id).order_by(Area.name)
    ).all()
    district = next((shape(json.loads(a.geometry)) for a in areas if a.level == "district"), None)
    streets = [(a.id, a.name, shape(json.loads(a.geometry))) for a in areas if a.level == "street"]
    return district, streets


@dataclass
class Utilization:
    """Utilization and sharing of a scope's venues over a period: per venue (``fig``), summed
    by the grouping asked for and by type, and in total."""

    fig: m.Figures
    grouped: pd.DataFrame
    by_type: pd.DataFrame
    totals: dict[str, float]


def utilization(
    session: Session,
    scope: Scope,
    period: Period,
    group_by: str = "venue",
    *,
    load_parts: int = 1,
    lead_times: bool = True,
    from_rows: bool = False,
) -> Utilization:
    """The figures of ``docs/stats.md`` over the whole of ``period`` as given (the dashboard
    first cuts it to the part so far), grouped by ``group_by`` (one of :data:`GROUP_BYS`):
    the dashboard's tables and the API's ``/stats/utilization`` both come from here.

    From the aggregates (:func:`mapservice.stats.monthly.figures`: years, months, days, and
    the day so far from its rows), and the median lead times, which no sum gives, from the
    held bookings' start and creation alone (``lead_times`` false: NaN, nothing read for
    them). ``from_rows``: everything from every booking of the period instead (the same
    figures: the tests' and the benchmark's reference; ``load_parts``: see
    :func:`mapservice.stats.frames.load_bookings`)."""
    return _utilization(
        session,
        scope,
        period,
        group_by,
        load_parts=load_parts,
        lead_times=lead_times,
        from_rows=from_rows,
    )[0]


def _utilization(
    session: Session,
    scope: Scope,
    period: Period,
    group_by: str,
    *,
    load_parts: int = 1,
    lead_times: bool = True,
    from_rows: bool = False,
    trend: bool = False,
) -> tuple[Utilization, DailyFigures | None]:
    """:func:`utilization`, and the aggregates' figures it was cut from (None: from the rows;
    ``trend``: with the weekly trend)."""
    if group_by not in GROUP_BYS:
        raise ValueError(f"unknown grouping {group_by!r}")
    t0, t1 = int(period.start_at.timestamp()), int(period.end_at.timestamp())
    found: DailyFigures | None = None
    if from_rows:
        venues = load_venues(session, scope)
        venues["type_label"] = type_labels(venues["type"])
        open_iv = load_open_intervals(session, [int(v) for v in venues["venue_id"]], period)
        bookings = load_bookings(session, scope, period, parts=load_parts)
        fig = m.compute(venues, open_iv, bookings, t0, t1)
    else:
        from mapservice.stats import monthly

        found = monthly.figures(session, scope, period, trend=trend)
        vt = found.venues
        vt["type_label"] = type_labels(vt["type"])
        leads = (
            load_lead_times(session, scope, period, vt.index.tolist())
            if lead_times
            else pd.DataFrame({"venue_id": [], "lead_days": []})
        )
        vt["lead_days"] = m.medians_by(
            vt.index.get_indexer(leads["venue_id"]), leads["lead_days"].to_numpy(), len(vt)
        )
        assert found.clock is not None
        booked = m.empty_bookings().assign(open_s=0, cap_s=0, shared=False, realized=False)
        fig = m.Figures(t0, t1, found.clock, vt, booked, m.empty_bookings(), leads)
    by_type = m.grouped(fig, "type")
    by_type["name"] = [type_label(str(k)) for k in by_type["key"]]
    grouped = by_type if group_by == "type" else m.grouped(fig, group_by)
    if group_by == "street":
        grouped["name"] = [n or _("(no street)") for n in grouped["name"]]
    return Utilization(fig, grouped, by_type, m.totals(fig)), found


def without_booking_rows(report: Report) -> Report:
    """``report`` without the frames of a row per booking (a million for a city's year) its
    figures were computed from, their columns kept: the page, its charts and exports are cut
    from the per-venue and per-group tables the report holds, and a cached report would
    otherwise keep every booking in memory for as long as it is cached (and while the next
    one is built). Changes ``report`` and returns it."""
    fig = report.fig
    kept = {
        name: frame.iloc[:0]
        for name in ("booked", "bookings")
        if isinstance(frame := getattr(fig, name, None), pd.DataFrame)
    }
    if kept:
        report.fig = dataclasses.replace(fig, **kept)
    return report


def build_report(
    session: Session,
    scope: Scope,
    period: Period,
    *,
    group_by: str = "venue",
    threshold: float = DEFAULT_THRESHOLD,
    coverage_type: str = DEFAULT_COVERAGE_TYPE,
    radius_m: float = DEFAULT_RADIUS_M,
    load_parts: int = 1,
    now: datetime | None = None,
    from_rows: bool = False,
) -> Report:
    """Everything the dashboard shows for ``scope`` over ``period`` as of ``now`` (default:
    the current time): a period in progress counts only its part so far — open hours,
    bookings, the weekly trend and the idle test alike — and one that has not begun counts
    nothing (``load_parts``: see :func:`mapservice.stats.frames.load_bookings`' ``parts``)."""
    period = period.until(now if now is not None else datetime.now(UTC))
    used, found = _utilization(
        session, scope, period, group_by, load_parts=load_parts, from_rows=from_rows, trend=True
    )
    fig = used.fig
    district, streets = _areas(session, scope.committee_id)
    street_table = _street_table(fig, streets)
    street_shapes = [(name, geom) for _, name, geom in streets]
    points = coverage_points(session, scope, coverage_type)
    cov = coverage(points, street_shapes, radius_m)
    return Report(
        scope=scope,
        period=period,
        group_by=group_by,
        threshold=threshold,
        fig=fig,
        totals=used.totals,
        grouped=used.grouped,
        by_type=used.by_type,
        by_unit=m.grouped(fig, "unit"),
        sharing=m.unit_sharing(fig) if found is None else found.sharing,
        trend=m.weekly_trend(fig, week_windows(period)) if found is None else found.trend,
        heat=m.heatmap(fig, period.tz) if found is None else found.heat,
        streets=street_table,
        district=district,
        street_shapes=street_shapes,
        coverage=cov,
        coverage_type=coverage_type,
        coverage_points=points,
    )


def coverage_points(session: Session, scope: Scope, venue_type: str) -> list[tuple[float, float]]:
    """Every public venue of the type in scope (published, not retired, unit admitted: as
    every other figure counts them; not only those with hours), WGS-84."""
    stmt = select(Venue.lon, Venue.lat).where(
        Venue.committee_id == scope.committee_id, Venue.type == venue_type, venues_public()
    )
    if scope.unit_id is not None:
        stmt = stmt.where(Venue.unit_id == scope.unit_id)
    return [(float(x), float(y)) for x, y in session.execute(stmt)]


def coverage_for(session: Session, scope: Scope, venue_type: str, radius_m: float) -> Coverage:
    """Coverage of the committee's streets by the venue type in scope."""
    _district, streets = _areas(session, scope.committee_id)
    return coverage(
        coverage_points(session, scope, venue_type), [(n, g) for _, n, g in streets], radius_m
    )


def _street_table(fig: m.Figures, streets: list[tuple[int, str, BaseGeometry]]) -> pd.DataFrame:
    """Per street: area, venues, venues per km², utilization (venues in scope)."""
    by_street = m.grouped(fig, "street").set_index("key")
    rows = []
    for sid, name, geom in streets:
        km2 = area_km2(geom)
        row = by_street.loc[sid] if sid in by_street.index else None
        n = int(row["venues"]) if row is not None else 0
        rows.append(
            {
                "key": sid,
                "name": name,
                "area_km2": km2,
                "venues": n,
                "venues_per_km2": n / km2 if km2 > 0 else 0.0,
                "open_cap_hours": float(row["open_cap_hours"]) if row is not None else 0.0,
                "booked_cap_hours": float(row["booked_cap_hours"]) if row is not None else 0.0,
                "utilization": float(row["utilization"]) if row is not None else 0.0,
                "sharing_rate": float(row["sharing_rate"]) if row is not None else 0.0,
            }
        )
    columns = [
        "key",
        "name",
        "area_km2",
        "venues",
        "venues_per_km2",
        "open_cap_hours",
        "booked_cap_hours",
        "utilization",
        "sharing_rate",
    ]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------
# Tables (the same for the page and the exports)

C = Column
_RATES = [
    C("utilization", "使用率", "Utilization", "pct"),
    C("realized_utilization", "实际使用率", "Realized utilization", "pct"),
    C("sharing_rate", "共享率", "Sharing rate", "pct"),
    C("no_show_rate", "爽约率", "No-show rate", "pct"),
    C("cancellation_rate", "取消率", "Cancellation rate", "pct"),
    C("lead_days", "提前预约天数(中位数)", "Lead time, days (median)", "days"),
]
_HOURS = [
    C("open_cap_hours", "开放容量小时", "Open capacity-hours", "hours"),
    C("booked_cap_hours", "预约容量小时", "Booked capacity-hours", "hours"),
    C("realized_cap_hours", "实际使用容量小时", "Realized capacity-hours", "hours"),
    C("shared_cap_hours", "跨单位共享容量小时", "Shared capacity-hours", "hours"),
]
_COUNTS = [
    C("bookings", "预约数", "Bookings", "int"),
    C("cancelled", "取消数", "Cancelled", "int"),
    C("no_show", "爽约数", "No-shows", "int"),
]
VENUE_COLUMNS = [
    C("name", "场地", "Venue"),
    C("unit_name", "所属单位", "Unit"),
    C("type_label", "类型", "Type"),
    C("street_name", "街道", "Street"),
    C("capacity_units", "可并行数", "Capacity units", "int"),
    C("open_hours", "开放小时", "Open hours", "hours"),
    *_HOURS,
    *_RATES,
    *_COUNTS,
]
GROUP_TITLES = {
    "venue": ("场地", "Venue"),
    "unit": ("单位", "Unit"),
    "type": ("类型", "Type"),
    "street": ("街道", "Street"),
}


def tables(report: Report) -> dict[str, Table]:
    """Every table of the dashboard, by export name."""
    en = lang() == "en"
    zh_g, en_g = GROUP_TITLES[report.group_by]
    group_cols = (
        VENUE_COLUMNS
        if report.group_by == "venue"
        else [
            C("name", zh_g, en_g),
            C("venues", "场地数", "Venues", "int"),
            *_HOURS,
            *_RATES,
            *_COUNTS,
        ]
    )
    short = [
        C("name", "场地", "Venue"),
        C("unit_name", "所属单位", "Unit"),
        C("type_label", "类型", "Type"),
        C("open_cap_hours", "开放容量小时", "Open capacity-hours", "hours"),
        C("booked_cap_hours", "预约容量小时", "Booked capacity-hours", "hours"),
        C("utilization", "使用率", "Utilization", "pct"),
        C("sharing_rate", "共享率", "Sharing rate", "pct"),
    ]
    heat = report.heat.copy()
    days = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    days_en = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    heat.columns = [f"h{h:02d}" for h in heat.columns]
    heat.insert(0, "weekday", days_en if en else days)
    heat_cols = [C("weekday", "星期", "Weekday")] + [
        C(f"h{h:02d}", f"{h:02d}时", f"{h:02d}:00", "hours") for h in range(24)
    ]
    cov = pd.DataFrame(
        [
            {
                "name": s.name,
                "area_km2": s.area_km2,
                "covered_km2": s.covered_km2,
                "share": s.share,
                "venues": s.venues,
            }
            for s in report.coverage.streets
        ],
        columns=["name", "area_km2", "covered_km2", "share", "venues"],
    )
    return {
        "grouped": Table(
            "grouped", _("Utilization by %(g)s", g=en_g if en else zh_g), group_cols, report.grouped
        ),
        "idle": Table("idle", _("Idle venues"), short, report.idle),
        "top": Table("top", _("Most used venues"), short, report.top),
        "sharing": Table(
            "sharing",
            _("Sharing by unit"),
            [
                C("name", "单位", "Unit"),
                C("venues", "场地数", "Venues", "int"),
                C("booked_cap_hours", "预约容量小时", "Booked capacity-hours", "hours"),
                C(
                    "shared_cap_hours",
                    "供其他单位使用容量小时",
                    "Capacity-hours given to other units",
                    "hours",
                ),
                C("sharing_rate", "共享率", "Sharing rate", "pct"),
                C(
                    "used_elsewhere_cap_hours",
                    "使用其他单位场地容量小时",
                    "Capacity-hours used at other units",
                    "hours",
                ),
            ],
            report.sharing,
        ),
        "streets": Table(
            "streets",
            _("Streets"),
            [
                C("name", "街道", "Street"),
                C("area_km2", "面积(平方公里)", "Area (km²)", "float"),
                C("venues", "场地数", "Venues", "int"),
                C("venues_per_km2", "每平方公里场地数", "Venues per km²", "float"),
                C("booked_cap_hours", "预约容量小时", "Booked capacity-hours", "hours"),
                C("utilization", "使用率", "Utilization", "pct"),
                C("sharing_rate", "共享率", "Sharing rate", "pct"),
            ],
            report.streets,
        ),
        "coverage": Table(
            "coverage",
            _("Coverage"),
            [
                C("name", "街道", "Street"),
                C("area_km2", "面积(平方公里)", "Area (km²)", "float"),
                C("covered_km2", "覆盖面积(平方公里)", "Covered (km²)", "float"),
                C("share", "覆盖率", "Coverage", "pct"),
                C("venues", "街道内场地数", "Venues inside", "int"),
            ],
            cov,
        ),
        "trend": Table(
            "trend",
            _("Utilization by week"),
            [
                C("week", "周(周一)", "Week (Monday)"),
                C("open_cap_hours", "开放容量小时", "Open capacity-hours", "hours"),
                C("booked_cap_hours", "预约容量小时", "Booked capacity-hours", "hours"),
                C("realized_cap_hours", "实际使用容量小时", "Realized capacity-hours", "hours"),
                C("utilization", "使用率", "Utilization", "pct"),
                C("realized_utilization", "实际使用率", "Realized utilization", "pct"),
            ],
            report.trend,
        ),
        "heatmap": Table(
            "heatmap", _("Booked capacity-hours by weekday and hour"), heat_cols, heat
        ),
    }
