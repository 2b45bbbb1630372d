"""The committee's figures (mapservice.stats): hand-computed cases, properties, coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from mapservice.core.coverage import coverage
from mapservice.models import Booking, Closure
from mapservice.stats import measures as m
from mapservice.stats.frames import Scope
from mapservice.stats.periods import period_for
from mapservice.stats.report import build_report

TZ = ZoneInfo("Asia/Shanghai")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in March 2026, Shanghai time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def hand_case(db, make):
    """A venue open 00:00-02:00 and 18:00-24:00 every day, capacity 3, closed 20:00-21:00 on
    Monday 2 March; bookings crossing midnight and both edges of the period 2-3 March."""
    committee = make.committee()
    owner = make.unit(committee, "业主单位")
    other = make.unit(committee, "兄弟单位")
    own_group = make.group(committee, owner)
    other_group = make.group(committee, other)
    loose_group = make.group(committee, None)
    venue = make.venue(
        owner, name="夜场羽毛球馆", capacity_units=3, hours="Mon-Sun 00:00-02:00,18:00-24:00"
    )
    db.add(Closure(venue_id=venue.id, start_at=local(2, 20), end_at=local(2, 21)))
    created = local(1, 9)

    def book(group, start, end, units, status):
        db.add(
            Booking(
                venue_id=venue.id,
                group_id=group.id,
                start_at=start,
                end_at=end,
                units=units,
                status=status,
                created_at=created,
            )
        )

    book(other_group, local(2, 23), local(3, 1), 2, "confirmed")  # midnight: 2 h x 2 = 4
    book(own_group, local(1, 23), local(2, 1), 1, "completed")  # period start: 1 h x 1 = 1
    book(loose_group, local(3, 22), local(4, 1), 3, "completed")  # period end: 2 h x 3 = 6
    book(own_group, local(2, 19), local(2, 21), 1, "confirmed")  # closure cuts 1 h: 1
    book(other_group, local(2, 18), local(2, 19), 3, "cancelled")  # not booked
    book(other_group, local(3, 18), local(3, 19), 1, "no_show")  # not booked
    db.commit()
    period = period_for("custom", date(2026, 3, 2), TZ, last_day=date(2026, 3, 3))
    return committee, owner, venue, period


def test_hand_computed_utilization_sharing_and_realized(db, hand_case):
    committee, _owner, venue, period = hand_case
    report = build_report(db, Scope(committee.id), period)
    row = report.venues.loc[venue.id]
    # open: 2 days x 8 h - 1 h closure = 15 h; x 3 units = 45 capacity-hours
    assert row["open_hours"] == pytest.approx(15)
    assert row["open_cap_hours"] == pytest.approx(45)
    assert row["booked_cap_hours"] == pytest.approx(12)  # 4 + 1 + 6 + 1
    assert row["utilization"] == pytest.approx(12 / 45)
    assert row["realized_cap_hours"] == pytest.approx(7)  # completed: 1 + 6
    assert row["realized_utilization"] == pytest.approx(7 / 45)
    # other unit (4) and a group of no unit (6) are shared; the owner's own (1 + 1) are not
    assert row["shared_cap_hours"] == pytest.approx(10)
    assert row["sharing_rate"] == pytest.approx(10 / 12)
    # bookings starting in the period: midnight, end-edge, closure, cancelled, no-show
    assert row["bookings"] == 5
    assert row["cancellation_rate"] == pytest.approx(1 / 5)
    assert row["no_show_rate"] == pytest.approx(1 / 2)  # 1 no-show, 1 completed
    assert report.totals["utilization"] == pytest.approx(12 / 45)
    # heatmap: Monday 23:00 and Tuesday 00:00 hold 2 capacity-hours each
    assert report.heat.loc[0, 23] == pytest.approx(2)
    assert report.heat.loc[1, 0] == pytest.approx(2)
    assert report.heat.to_numpy().sum() == pytest.approx(4 + 1 + 6 + 2)  # heat: period only
    # the week containing the period holds all of it
    assert report.trend["booked_cap_hours"].sum() == pytest.approx(12)


def test_secretary_scope_and_empty_period(db, hand_case, make):
    committee, owner, venue, period = hand_case
    other_unit = make.unit(committee, "别家")
    make.venue(other_unit, name="别家会议室", type="meeting_room")
    mine = build_report(db, Scope(committee.id, owner.id), period)
    assert list(mine.venues["venue_id"]) == [venue.id]
    later = period_for("month", date(2027, 1, 1), TZ)
    empty = build_report(db, Scope(committee.id, other_unit.id), later)
    assert empty.totals["booked_cap_hours"] == 0
    assert (empty.venues["utilization"] == 0).all()


# --- properties --------------------------------------------------------------------------------

T0 = 1_700_000_000
DAY = 86400


@st.composite
def scenario(draw):
    n_venues = draw(st.integers(1, 4))
    venues, ivs, books = [], [], []
    for v in range(1, n_venues + 1):
        cap = draw(st.integers(1, 4))
        venues.append(
            {
                "venue_id": v,
                "name": f"v{v}",
                "unit_id": v % 2,
                "unit_name": "u",
                "type": "gym",
                "street_id": np.nan,
                "street_name": "",
                "capacity_units": cap,
                "lon": 0.0,
                "lat": 0.0,
                "phone": "",
            }  # fmt: skip
        )
        cuts = sorted(draw(st.lists(st.integers(0, 3 * DAY), min_size=0, max_size=8, unique=True)))
        for a, b in zip(cuts[::2], cuts[1::2], strict=False):
            if b > a:
                ivs.append({"venue_id": v, "start": T0 + a, "end": T0 + b})
        # bookings on free units: per unit, disjoint intervals
        for _unit in range(cap):
            edges = sorted(draw(st.lists(st.integers(-DAY, 4 * DAY), max_size=6, unique=True)))
            for a, b in zip(edges[::2], edges[1::2], strict=False):
                books.append(
                    {
                        "booking_id": len(books) + 1,
                        "venue_id": v,
                        "group_unit_id": float(draw(st.sampled_from([0, 1]))),
                        "start": T0 + a,
                        "end": T0 + b,
                        "units": 1,
                        "status": draw(st.sampled_from(["confirmed", "completed", "cancelled"])),
                        "created": T0 - DAY,
                    }  # fmt: skip
                )
    bookings = pd.DataFrame(books, columns=m.BOOKING_COLUMNS) if books else m.empty_bookings()
    iv = pd.DataFrame(ivs, columns=["venue_id", "start", "end"]).astype("int64")
    return pd.DataFrame(venues), iv, bookings.astype({"start": "int64", "end": "int64"})


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_utilization_bounded_and_venues_sum_to_total(case):
    venues, iv, bookings = case
    fig = m.compute(venues, iv, bookings, T0, T0 + 3 * DAY)
    vt = fig.venues
    assert ((vt["utilization"] >= 0) & (vt["utilization"] <= 1)).all()
    assert (vt["booked_cap_hours"] <= vt["open_cap_hours"] + 1e-9).all()
    total = m.totals(fig)
    assert vt["booked_cap_hours"].sum() == pytest.approx(total["booked_cap_hours"])
    assert 0 <= total["utilization"] <= 1
    # brute force: booked seconds of each booking inside open intervals
    expected = 0.0
    for b in bookings[bookings["status"].isin(["confirmed", "completed"])].itertuples():
        for i in iv[iv["venue_id"] == b.venue_id].itertuples():
            lo, hi = max(b.start, i.start, T0), min(b.end, i.end, T0 + 3 * DAY)
            expected += max(0, hi - lo) * b.units
    assert total["booked_cap_hours"] == pytest.approx(expected / 3600)
    trend = m.weekly_trend(fig, [("a", T0, T0 + DAY), ("b", T0 + DAY, T0 + 3 * DAY)])
    assert trend["booked_cap_hours"].sum() == pytest.approx(expected / 3600)


# --- coverage ---------------------------------------------------------------------------------


def test_coverage_of_a_tiny_synthetic_district():
    """Two 4 km x 4 km streets side by side; one youth home in the middle of the west one:
    a 1 km disc (π km²) inside the west street, nothing in the east one."""
    deg_x = 4000 / (111_320 * np.cos(np.radians(32.2)))
    deg_y = 4000 / 110_574
    west = box(119.40, 32.20, 119.40 + deg_x, 32.20 + deg_y)
    east = box(119.40 + deg_x, 32.20, 119.40 + 2 * deg_x, 32.20 + deg_y)
    centre = west.centroid
    far = (east.centroid.x, east.centroid.y)
    got = coverage(
        [(centre.x, centre.y)],
        [("西街道", west), ("东街道", east)],
        1000,
        communities=[(centre.x, centre.y), far],
    )
    w, e = got.streets
    assert w.area_km2 == pytest.approx(16, rel=0.01)
    assert w.covered_km2 == pytest.approx(np.pi, rel=0.01)
    assert w.share == pytest.approx(np.pi / 16, rel=0.01)
    assert e.share == 0
    assert [s.name for s in got.uncovered] == ["东街道"]
    assert (w.venues, e.venues) == (1, 0)
    assert got.communities == 2 and got.communities_covered == 1
    assert e.gap.area == pytest.approx(east.area, rel=1e-6)  # the whole east street is a gap
    assert got.crs.startswith("EPSG:45")


def test_period_kinds():
    p = period_for("quarter", date(2026, 11, 22), TZ)
    assert (p.first_day, p.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    assert p.shifted(-1).first_day == date(2026, 7, 1)
    w = period_for("week", date(2026, 11, 22), TZ)
    assert w.first_day == date(2026, 11, 16) and w.days == 7
    assert w.end_at - w.start_at == timedelta(days=7)
    assert w.start_at.astimezone(UTC).hour == 16  # Shanghai midnight
    with pytest.raises(ValueError):
        period_for("custom", date(2026, 3, 3), TZ, last_day=date(2026, 3, 1))
