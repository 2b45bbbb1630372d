"""The dashboard's activity figures (issue 20, "in the numbers"): activities per unit against
the plan (rotation fulfilment), participants, the sign-up fill rate and the streets reached,
as tables (CSV/XLSX through :mod:`mapservice.stats.export`) and charts.

Loading reads the database (the committee's, or one unit's as lead); :func:`figures` is pure
(DataFrames in, DataFrames out). Definitions, as the page states them:

- an activity counts in the period where it starts, unless a draft or cancelled;
- a turn of the plan counts in the period where its month (week) begins; it is *due* once
  that has begun, *led* when marked led by hand or when an activity of the turn took place
  (as the plan page says: ``operations.plans.led_entry_ids``); fulfilment = led ÷ due turns;
- participants: the attendance recorded, else the confirmed headcount; fill rate =
  confirmed headcount ÷ capacity, summed over the activities (a ratio of sums);
- a street is reached by an activity at a venue in it, or at a site whose community/street
  names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mapservice.core.i18n import _
from mapservice.core.rotation import period_start
from mapservice.core.vocab import ActivityKind, ActivityStatus, SignUpState
from mapservice.models import Activity, Area, Plan, PlanEntry, SignUp, Unit, Venue
from mapservice.models.activities import took_place
from mapservice.stats import charts
from mapservice.stats.charts import RED, _bars, _empty
from mapservice.stats.frames import Scope
from mapservice.stats.periods import Period
from mapservice.stats.report import Column, Table

#: Statuses that do not count: nothing took place or is to take place.
NOT_COUNTED = (ActivityStatus.DRAFT.value, ActivityStatus.CANCELLED.value)

ACTIVITY_COLUMNS = [
    "activity_id",
    "title",
    "kind",
    "unit_id",
    "unit_name",
    "start_at",
    "status",
    "capacity",
    "street",
    "confirmed",
    "waitlisted",
    "attended",
]


def load_activities(session: Session, scope: Scope, period: Period) -> pd.DataFrame:
    """The activities in scope that start in the period (neither drafts nor cancelled), with
    their confirmed and waitlisted headcounts, the attendance recorded (NaN: none) and the
    street they reached (the venue's street, else the site's community/street text)."""
    signups = (
        select(
            SignUp.activity_id.label("aid"),
            func.sum(
                case((SignUp.state == SignUpState.CONFIRMED.value, SignUp.headcount), else_=0)
            ).label("confirmed"),
            func.sum(
                case((SignUp.state == SignUpState.WAITLISTED.value, SignUp.headcount), else_=0)
            ).label("waitlisted"),
            func.sum(SignUp.attended).label("attended"),
        )
        .group_by(SignUp.activity_id)
        .subquery()
    )
    street = select(Area.name).where(Area.id == Venue.street_id).scalar_subquery()
    stmt = (
        select(
            Activity.id,
            Activity.title,
            Activity.kind,
            Activity.lead_unit_id,
            Unit.name,
            Activity.start_at,
            Activity.status,
            Activity.capacity,
            func.coalesce(street, Activity.site_street, ""),
            func.coalesce(signups.c.confirmed, 0),
            func.coalesce(signups.c.waitlisted, 0),
            signups.c.attended,
        )
        .join(Unit, Unit.id == Activity.lead_unit_id)
        .outerjoin(Venue, Venue.id == Activity.venue_id)
        .outerjoin(signups, signups.c.aid == Activity.id)
        .where(
            Activity.committee_id == scope.committee_id,
            Activity.status.not_in(NOT_COUNTED),
            Activity.start_at >= period.start_at,
            Activity.start_at < period.calendar_end_at,
        )
        .order_by(Activity.start_at, Activity.id)
    )
    if scope.unit_id is not None:
        stmt = stmt.where(Activity.lead_unit_id == scope.unit_id)
    frame = pd.DataFrame(list(session.execute(stmt)), columns=ACTIVITY_COLUMNS)
    frame["attended"] = pd.to_numeric(frame["attended"], errors="coerce").astype(float)
    return frame


def load_turns(session: Session, scope: Scope, period: Period, now: datetime) -> pd.DataFrame:
    """The plan's turns whose month (week) begins in the period: unit, start, whether due
    (begun by ``now``) and whether led (see the module)."""
    held = (
        select(Activity.id).where(Activity.plan_entry_id == PlanEntry.id, took_place(now)).exists()
    )
    stmt = (
        select(
            PlanEntry.id,
            PlanEntry.unit_id,
            Unit.name,
            Plan.year,
            Plan.period,
            PlanEntry.period,
            PlanEntry.led_on.is_not(None) | held,
        )
        .join(Plan, Plan.id == PlanEntry.plan_id)
        .join(Unit, Unit.id == PlanEntry.unit_id)
        .where(
            Plan.committee_id == scope.committee_id,
            Plan.year.between(period.first_day.year, period.last_day.year),
        )
    )
    if scope.unit_id is not None:
        stmt = stmt.where(PlanEntry.unit_id == scope.unit_id)
    today = now.astimezone(period.tz).date()
    rows = []
    for eid, uid, name, year, kind, number, led in session.execute(stmt):
        start = period_start(year, kind, number)
        if period.first_day <= start <= period.last_day:
            rows.append((eid, uid, name, start, start <= today, bool(led)))
    frame = pd.DataFrame(rows, columns=["entry_id", "unit_id", "unit_name", "start", "due", "led"])
    return frame.astype({"due": bool, "led": bool})


def load_streets(session: Session, committee_id: int) -> list[str]:
    """The committee's street names (for the streets not reached)."""
    return list(
        session.scalars(
            select(Area.name)
            .where(Area.committee_id == committee_id, Area.level == "street")
            .order_by(Area.name)
        )
    )


@dataclass
class ActivityFigures:
    period: Period
    totals: dict[str, float]
    by_unit: pd.DataFrame
    by_kind: pd.DataFrame
    by_month: pd.DataFrame
    streets: pd.DataFrame
    activities: pd.DataFrame


def _rate(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def figures(
    acts: pd.DataFrame,
    turns: pd.DataFrame,
    streets: list[str],
    period: Period,
    lang: str = "zh",
) -> ActivityFigures:
    """The activity figures of a period from :func:`load_activities`, :func:`load_turns`
    and :func:`load_streets` (pure)."""
    acts = acts.copy()
    acts["participants"] = acts["attended"].where(acts["attended"].notna(), acts["confirmed"])
    acts["fill_rate"] = [
        _rate(c, k) for c, k in zip(acts["confirmed"], acts["capacity"], strict=True)
    ]
    acts["kind_label"] = [ActivityKind(k).label(lang) for k in acts["kind"]]
    acts["status_label"] = [ActivityStatus(s).label(lang) for s in acts["status"]]
    acts["start"] = [t.astimezone(period.tz).strftime("%Y-%m-%d %H:%M") for t in acts["start_at"]]
    acts["month"] = [t.astimezone(period.tz).strftime("%Y-%m") for t in acts["start_at"]]

    units = (
        pd.concat(
            [acts[["unit_id", "unit_name"]], turns[["unit_id", "unit_name"]]], ignore_index=True
        )
        .drop_duplicates("unit_id")
        .set_index("unit_id")
    )
    by_unit = pd.DataFrame(
        {
            "name": units["unit_name"],
            "planned": turns.groupby("unit_id").size(),
            "due": turns[turns["due"]].groupby("unit_id").size(),
            "led": turns[turns["due"] & turns["led"]].groupby("unit_id").size(),
            "activities": acts.groupby("unit_id").size(),
            "participants": acts.groupby("unit_id")["participants"].sum(),
            "confirmed": acts.groupby("unit_id")["confirmed"].sum(),
            "capacity": acts.groupby("unit_id")["capacity"].sum(),
        },
        index=units.index,
    ).fillna(0)
    by_unit["fulfilment"] = [
        _rate(a, b) for a, b in zip(by_unit["led"], by_unit["due"], strict=True)
    ]
    by_unit["fill_rate"] = [
        _rate(a, b) for a, b in zip(by_unit["confirmed"], by_unit["capacity"], strict=True)
    ]
    by_unit = by_unit.reset_index().sort_values(["name"]).reset_index(drop=True)

    grouped = acts.groupby("kind")
    by_kind = pd.DataFrame(
        [
            {
                "kind": k.value,
                "name": k.label(lang),
                "activities": int(grouped.size().get(k.value, 0)),
                "participants": float(grouped["participants"].sum().get(k.value, 0)),
                "confirmed": int(grouped["confirmed"].sum().get(k.value, 0)),
                "capacity": int(grouped["capacity"].sum().get(k.value, 0)),
            }
            for k in ActivityKind
        ]
    )
    by_kind["fill_rate"] = [
        _rate(a, b) for a, b in zip(by_kind["confirmed"], by_kind["capacity"], strict=True)
    ]

    months = acts.groupby("month")
    by_month = pd.DataFrame(
        {
            "month": sorted(acts["month"].unique()),
        }
    )
    by_month["activities"] = [int(months.size()[m]) for m in by_month["month"]]
    by_month["participants"] = [float(months["participants"].sum()[m]) for m in by_month["month"]]

    reached = acts[acts["street"] != ""].groupby("street")
    names = list(dict.fromkeys([*streets, *reached.groups.keys()]))
    street_rows = pd.DataFrame({"name": names})
    street_rows["activities"] = [int(reached.size().get(n, 0)) for n in names]
    street_rows["participants"] = [float(reached["participants"].sum().get(n, 0)) for n in names]
    street_rows["reached"] = street_rows["activities"] > 0

    due, led = int(turns["due"].sum()), int((turns["due"] & turns["led"]).sum())
    known = set(streets)
    totals = {
        "activities": float(len(acts)),
        "participants": float(acts["participants"].sum()),
        "confirmed": float(acts["confirmed"].sum()),
        "capacity": float(acts["capacity"].sum()),
        "fill_rate": _rate(acts["confirmed"].sum(), acts["capacity"].sum()),
        "planned": float(len(turns)),
        "due": float(due),
        "led": float(led),
        "fulfilment": _rate(led, due),
        "streets_reached": float(sum(1 for n in reached.groups if n in known)),
        "streets": float(len(known)),
    }
    return ActivityFigures(period, totals, by_unit, by_kind, by_month, street_rows, acts)


def build(
    session: Session, scope: Scope, period: Period, now: datetime, lang: str = "zh"
) -> ActivityFigures:
    """Load and compute the activity figures of ``scope`` in ``period`` as of ``now``."""
    return figures(
        load_activities(session, scope, period),
        load_turns(session, scope, period, now),
        load_streets(session, scope.committee_id),
        period,
        lang,
    )


def tables(f: ActivityFigures) -> dict[str, Table]:
    """The figures as the dashboard's tables (Chinese and English headers)."""
    by_unit = f.by_unit
    streets = f.streets.assign(reached=f.streets["reached"].astype(int))
    return {
        "rotation": Table(
            "rotation",
            _("Activities per unit against the plan"),
            [
                Column("name", "成员单位", "Unit"),
                Column("planned", "计划轮值", "Planned turns", "int"),
                Column("due", "已到期", "Due", "int"),
                Column("led", "已牵头", "Led", "int"),
                Column("fulfilment", "轮值完成率", "Rotation fulfilment", "pct"),
                Column("activities", "活动数", "Activities", "int"),
                Column("participants", "参与人数", "Participants", "int"),
                Column("fill_rate", "报名满额率", "Sign-up fill rate", "pct"),
            ],
            by_unit,
        ),
        "kinds": Table(
            "kinds",
            _("Activities by kind"),
            [
                Column("name", "活动类型", "Kind"),
                Column("activities", "活动数", "Activities", "int"),
                Column("participants", "参与人数", "Participants", "int"),
                Column("confirmed", "已确认人数", "Confirmed headcount", "int"),
                Column("capacity", "名额", "Capacity", "int"),
                Column("fill_rate", "报名满额率", "Sign-up fill rate", "pct"),
            ],
            f.by_kind,
        ),
        "streets": Table(
            "streets",
            _("Streets reached by activities"),
            [
                Column("name", "街道/社区", "Street / community"),
                Column("activities", "活动数", "Activities", "int"),
                Column("participants", "参与人数", "Participants", "int"),
                Column("reached", "已覆盖", "Reached", "int"),
            ],
            streets,
        ),
        "activities": Table(
            "activities",
            _("Activities"),
            [
                Column("title", "活动", "Activity"),
                Column("kind_label", "类型", "Kind"),
                Column("unit_name", "牵头单位", "Lead unit"),
                Column("start", "开始时间", "Start"),
                Column("status_label", "状态", "Status"),
                Column("capacity", "名额", "Capacity", "int"),
                Column("confirmed", "已确认人数", "Confirmed headcount", "int"),
                Column("waitlisted", "候补人数", "Waitlisted headcount", "int"),
                Column("attended", "实到人数", "Attended", "int"),
                Column("fill_rate", "报名满额率", "Sign-up fill rate", "pct"),
                Column("street", "街道/社区", "Street / community"),
            ],
            f.activities,
        ),
    }


# ------------------------------------------------------------------ charts


def chart_fulfilment(f: ActivityFigures) -> Figure:
    frame = f.by_unit[f.by_unit["due"] > 0]
    return _bars(frame, "fulfilment", _("Rotation fulfilment by unit"))


def chart_fill_rate(f: ActivityFigures) -> Figure:
    frame = f.by_kind[f.by_kind["activities"] > 0]
    return _bars(frame, "fill_rate", _("Sign-up fill rate by kind"))


def chart_participants(f: ActivityFigures) -> Figure:
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    t = f.by_month
    if t.empty:
        _empty(ax)
        return fig
    x = np.arange(len(t))
    ax.bar(x, t["participants"], color=RED)
    for xx, n, a in zip(x, t["participants"], t["activities"], strict=True):
        ax.text(float(xx), float(n), f"{n:.0f} ({a})", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, list(t["month"]), rotation=45 if len(t) > 6 else 0)
    ax.set_title(_("Participants by month (activities)"))
    ax.grid(axis="y", alpha=0.3)
    return fig


def chart_streets(f: ActivityFigures) -> Figure:
    frame = f.streets
    fig = Figure(figsize=(7, max(2.4, 0.28 * len(frame) + 1)))
    ax = fig.add_subplot()
    if frame.empty:
        _empty(ax)
        return fig
    frame = frame.sort_values("activities")
    y = np.arange(len(frame))
    ax.barh(y, frame["activities"], color=[RED if r else "#90a4ae" for r in frame["reached"]])
    ax.set_yticks(y, list(frame["name"]), fontsize=8)
    ax.set_title(_("Activities by street"))
    ax.grid(axis="x", alpha=0.3)
    return fig


CHARTS = {
    "fulfilment": chart_fulfilment,
    "fill_rate": chart_fill_rate,
    "participants": chart_participants,
    "streets": chart_streets,
}


def chart(f: ActivityFigures, name: str, fmt: str = "png") -> bytes:
    """Render chart ``name`` (a key of :data:`CHARTS`) as ``png`` or ``svg`` bytes."""
    return charts.chart(f, name, fmt, CHARTS)


__all__ = ["ActivityFigures", "build", "chart", "figures", "tables"]
