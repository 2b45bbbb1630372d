"""The committee's figures (mapservice.stats): hand-computed cases, properties, coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box
from sqlalchemy import BigInteger, case, cast, func, select

from mapservice.core.coverage import coverage
from mapservice.core.hours import OpeningRange
from mapservice.core.opening import local_instant, open_intervals
from mapservice.models import Booking, Closure, Group
from mapservice.stats import measures as m
from mapservice.stats.calendars import ZoneClock, build_open_intervals
from mapservice.stats.frames import STATUSES, Scope, epoch, int_columns, load_bookings
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


def test_a_month_in_progress_counts_its_days_so_far(db, make):
    """Seen on 11 March 2026 at noon, March is a third over: a court open 09:00-21:00 and
    booked 09:00-15:00 on every day so far is half used, not a fifth; weeks that have not
    begun are not in the trend (they fell to 0 %); a booking on 20 March has not happened;
    only the court never booked is idle. A month that has not begun counts nothing."""
    committee = make.committee()
    unit = make.unit(committee, "业主单位")
    group = make.group(committee, make.unit(committee, "兄弟单位"))
    busy = make.venue(unit, name="常用球场", capacity_units=1, hours="Mon-Sun 09:00-21:00")
    make.venue(unit, name="闲置球场", capacity_units=1, hours="Mon-Sun 09:00-21:00")
    for day in [*range(1, 12), 20]:
        db.add(
            Booking(
                venue_id=busy.id,
                group_id=group.id,
                start_at=local(day, 9),
                end_at=local(day, 15),
                units=1,
                status="confirmed",
                created_at=datetime(2026, 2, 20, tzinfo=TZ),
            )
        )
    db.commit()
    now = local(11, 12)
    march = period_for("month", date(2026, 3, 11), TZ)
    report = build_report(db, Scope(committee.id), march, threshold=0.25, now=now)
    row = report.venues.loc[busy.id]
    # 10 whole days (12 h open, 6 h booked) and 11 March 09:00-12:00 (3 h, all booked)
    assert row["open_cap_hours"] == pytest.approx(123)
    assert row["booked_cap_hours"] == pytest.approx(63)
    assert row["utilization"] == pytest.approx(63 / 123)  # 51 %; counted to 31 March: 19 %
    assert report.totals["utilization"] == pytest.approx(63 / 246)
    assert report.period.in_progress and report.period.end_at == now
    assert list(report.trend["week"]) == ["02-23", "03-02", "03-09"]
    # the week in progress (both courts): 9 and 10 March whole, 11 March to noon
    assert report.trend["utilization"].iloc[-1] == pytest.approx((12 + 3) / (2 * (24 + 3)))
    assert list(report.idle["name"]) == ["闲置球场"]
    assert report.heat.to_numpy().sum() == pytest.approx(63)
    # seen from the end of March, the whole month counts, 20 March included
    done = build_report(db, Scope(committee.id), march, now=local(31, 23, 59) + timedelta(hours=1))
    assert done.venues.loc[busy.id, "booked_cap_hours"] == pytest.approx(72)
    assert len(done.trend) == 6 and not done.period.in_progress
    april = build_report(db, Scope(committee.id), march.shifted(1), threshold=0.25, now=now)
    assert april.period.not_started
    assert april.totals["open_cap_hours"] == 0 and april.totals["booked_cap_hours"] == 0
    assert april.trend.empty and april.idle.empty


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
                        "venue_id": v,
                        "group_unit_id": float(draw(st.sampled_from([0, 1]))),
                        "start": T0 + a,
                        "end": T0 + b,
                        "units": 1,
                        "status": draw(st.sampled_from(["confirmed", "completed", "cancelled"])),
                        "created": T0 + a - draw(st.integers(60, 5 * DAY)),
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
    # the same figures as the venue table grouped into one group, lead time's median included
    one = m._group_on(fig, pd.Series(0, index=vt.index), pd.Series("", index=vt.index))
    for column, value in total.items():
        expected_value = float(one.iloc[0][column]) if len(one) else 0.0
        assert value == pytest.approx(0.0 if np.isnan(expected_value) else expected_value)
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


# --- bulk calendars and the bookings query ---------------------------------------------------

LONDON = ZoneInfo("Europe/London")


def _epochs(intervals):
    return [(int(a.timestamp()), int(b.timestamp())) for a, b in intervals]


def test_zone_clock_reads_wall_clock_times_like_local_instant():
    """Every minute of London's 23- and 25-hour days and Lord Howe's half-hour changes: the
    bulk conversion gives the instant ``local_instant`` gives (skipped times moved forward,
    repeated ones their first occurrence), and back to the same wall clock."""
    for tz, days in [
        (LONDON, [date(2026, 3, 29), date(2026, 10, 25), date(2041, 3, 31)]),
        (ZoneInfo("Australia/Lord_Howe"), [date(2026, 4, 5), date(2026, 10, 4)]),
    ]:
        for day in days:
            zone = ZoneClock.build(tz, int(local_instant(day, 0, tz).timestamp()), T0 * 2)
            base = (day - date(1970, 1, 1)).days * DAY
            minutes = np.arange(0, 1441)
            got = zone.instant(base + minutes * 60)
            expected = [int(local_instant(day, int(mi), tz).timestamp()) for mi in minutes]
            assert got.tolist() == expected
            back = zone.local(np.asarray(expected))
            assert back[:60].tolist() == (base + minutes[:60] * 60).tolist()
    london = ZoneClock.build(LONDON, T0, T0 + 400 * DAY)
    spring = (date(2026, 3, 29) - date(1970, 1, 1)).days * DAY
    # 01:30 does not exist on 29 March 2026: it is read as 02:30 BST = 01:30 UTC
    assert london.instant(np.array([spring + 90 * 60])).tolist() == [spring + 90 * 60]


@pytest.mark.parametrize("tz_name", ["Europe/London", "Australia/Lord_Howe", "Asia/Shanghai"])
def test_bulk_open_intervals_equal_the_per_venue_loop(tz_name):
    """Venues sharing weekly hours share a calendar; venues with closures (overlapping,
    touching, across the period's edges) get their own; all equal ``open_intervals``."""
    tz = ZoneInfo(tz_name)
    patterns = [
        [OpeningRange(d, 9 * 60, 21 * 60) for d in range(5)]
        + [OpeningRange(5, 0, 1440), OpeningRange(6, 60, 150), OpeningRange(6, 150, 180)],
        [OpeningRange(d, 0, 1440) for d in range(7)],
        [OpeningRange(d, 90, 150) for d in range(7)]
        + [OpeningRange(d, 1380, 1440) for d in range(7)],
        [],
    ]
    period = period_for("custom", date(2026, 3, 1), tz, last_day=date(2026, 11, 30))
    start, end = period.start_at, period.end_at
    hour = timedelta(hours=1)
    closures = {
        2: [(start - 30 * hour, start + 5 * hour), (end - hour, end + 48 * hour)],
        5: [
            (datetime(2026, 3, 28, 12, tzinfo=tz), datetime(2026, 3, 30, 12, tzinfo=tz)),
            (datetime(2026, 3, 30, 12, tzinfo=tz), datetime(2026, 4, 2, 9, 30, tzinfo=tz)),
            (datetime(2026, 4, 1, tzinfo=tz), datetime(2026, 4, 1, 10, tzinfo=tz)),
            (datetime(2026, 10, 25, 1, 30, tzinfo=tz), datetime(2026, 10, 25, 12, tzinfo=tz)),
        ],
        6: [(datetime(2026, 6, 6, 10, tzinfo=tz), datetime(2026, 6, 6, 11, tzinfo=tz))],
    }
    venue_ids = [1, 2, 3, 4, 5, 6, 7, 8]
    hours = {v: patterns[v % 4] for v in venue_ids}
    t0, t1 = int(start.timestamp()), int(end.timestamp())
    got = build_open_intervals(
        venue_ids,
        [(v, r.weekday, r.start_min, r.end_min) for v in venue_ids for r in hours[v]],
        [(v, int(a.timestamp()), int(b.timestamp())) for v, cs in closures.items() for a, b in cs],
        start.astimezone(tz).date(),
        end.astimezone(tz).date(),
        t0,
        t1,
        tz,
    )
    # venues 1; 3 and 7; 4 and 8 share three weekly calendars, 2, 5 and 6 have closures
    assert got.calendars == 3 + 3
    assert got.calendar[2] == got.calendar[6] and got.calendar[3] == got.calendar[7]
    frame = got.frame()
    seconds = got.seconds_by_venue()
    for v in venue_ids:
        expected = _epochs(open_intervals(hours[v], closures.get(v, []), start, end, tz))
        rows = frame[frame["venue_id"] == v]
        assert list(zip(rows["start"], rows["end"], strict=True)) == expected
        assert seconds[v] == sum(b - a for a, b in expected)
    # The venue open round the clock (pattern 1, no closure) is one interval: the whole period
    assert _epochs([(start, end)]) == list(
        zip(frame[frame.venue_id == 1]["start"], frame[frame.venue_id == 1]["end"], strict=True)
    )
    if tz_name == "Europe/London":
        # 275 days of which one has 23 hours and one 25: 275 x 24 hours open
        assert seconds[1] == 275 * 24 * 3600


def test_london_day_with_a_clock_change_counts_its_real_hours(db, make):
    """A London committee, a venue open 00:00-24:00: the 23-hour day (29 March 2026) has 23
    open hours and the booking over it 23 booked hours; the heatmap files them by London
    hour (no 01:00 that day)."""
    committee = make.committee(slug="london", timezone="Europe/London")
    unit = make.unit(committee, "Hall owners")
    group = make.group(committee, unit)
    venue = make.venue(unit, name="Round-the-clock hall", hours="Mon-Sun 00:00-24:00")
    day = date(2026, 3, 29)
    db.add(
        Booking(
            venue_id=venue.id,
            group_id=group.id,
            start_at=local_instant(day, 0, LONDON),
            end_at=local_instant(day, 1440, LONDON),
            units=1,
            status="confirmed",
            created_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    )
    db.commit()
    period = period_for("custom", day, LONDON, last_day=day)
    report = build_report(db, Scope(committee.id), period)
    row = report.venues.loc[venue.id]
    assert row["open_hours"] == pytest.approx(23)
    assert row["booked_cap_hours"] == pytest.approx(23)
    assert row["utilization"] == pytest.approx(1)
    sunday = report.heat.loc[6]
    assert sunday[1] == 0 and sunday[0] == pytest.approx(1) and sunday[2] == pytest.approx(1)
    assert report.heat.to_numpy().sum() == pytest.approx(23)


def test_bookings_load_with_their_instants_units_status_and_group_unit(db, make):
    """The bookings query hands over whole seconds since the epoch (fractions dropped), every
    status, NaN for a group of no unit, and leaves out bookings that miss the period."""
    committee = make.committee()
    unit = make.unit(committee, "业主单位")
    groups = [make.group(committee, unit), make.group(committee, None)]
    venue = make.venue(unit, name="会议室甲", capacity_units=4)
    other = make.venue(unit, name="会议室乙", capacity_units=4)
    period = period_for("custom", date(2026, 3, 2), TZ, last_day=date(2026, 3, 3))
    rows = []
    statuses = ["pending", "confirmed", "declined", "cancelled", "completed", "no_show"]
    for i, status in enumerate(statuses):
        start = local(1, 23) + timedelta(hours=7 * i, seconds=0.75 * i)
        booking = Booking(
            venue_id=(venue, other)[i // 2 % 2].id,
            group_id=groups[i % 2].id,
            start_at=start,
            end_at=start + timedelta(hours=2),
            units=1 + i % 3,
            status=status,
            created_at=local(1, 9, 15) + timedelta(microseconds=123456 * i),
        )
        db.add(booking)
        rows.append(booking)
    db.add(  # ends where the period starts: not loaded
        Booking(
            venue_id=venue.id,
            group_id=groups[0].id,
            start_at=local(1, 20),
            end_at=local(2, 0),
            units=1,
            status="confirmed",
            created_at=local(1, 9),
        )
    )
    db.commit()
    got = load_bookings(db, Scope(committee.id), period).sort_values("start")
    assert got["status"].astype(str).tolist() == statuses
    assert got["start"].tolist() == [int(b.start_at.timestamp() // 1) for b in rows]
    assert got["end"].tolist() == [int(b.end_at.timestamp() // 1) for b in rows]
    assert got["created"].tolist() == [int(b.created_at.timestamp() // 1) for b in rows]
    assert got["units"].tolist() == [1, 2, 3, 1, 2, 3]
    assert got["group_unit_id"].fillna(-1).tolist() == [unit.id, -1] * 3
    assert got["venue_id"].tolist() == [venue.id, venue.id, other.id, other.id, venue.id, venue.id]


@pytest.mark.parametrize("parts", [2, 3])
def test_bookings_loaded_in_parts_equal_one_query(db, make, parts):
    """Split by venue id across concurrent queries on connections of their own, the bookings
    are the same rows as read by one query: none lost at a slice's edge, none twice, other
    committees' and retired venues' left out as before."""
    committee = make.committee()
    unit = make.unit(committee, "业主单位")
    group = make.group(committee, unit)
    venues = [make.venue(unit, name=f"场地{i}", capacity_units=9) for i in range(7)]
    venues[3].retired = True
    elsewhere = make.venue(make.unit(make.committee(slug="other"), "外单位"), name="外场")
    period = period_for("custom", date(2026, 3, 2), TZ, last_day=date(2026, 3, 8))
    for i, venue in enumerate([*venues, elsewhere]):
        for k in range(i + 1):
            start = local(2 + k % 6, 8 + k)
            db.add(
                Booking(
                    venue_id=venue.id,
                    group_id=group.id,
                    start_at=start,
                    end_at=start + timedelta(hours=1),
                    units=1 + k % 3,
                    status="confirmed",
                    created_at=local(1, 9),
                )
            )
    db.commit()
    key = ["venue_id", "start", "units"]
    one = load_bookings(db, Scope(committee.id), period).sort_values(key).reset_index(drop=True)
    split = load_bookings(db, Scope(committee.id), period, parts=parts)
    split = split.sort_values(key).reset_index(drop=True)
    assert len(one) == sum(i + 1 for i in range(7) if i != 3)
    assert sorted(set(one["venue_id"])) == sorted(v.id for i, v in enumerate(venues) if i != 3)
    pd.testing.assert_frame_equal(split, one)


def test_int_columns_equal_a_row_by_row_fetch_of_the_same_statement(db, make):
    """``int_columns`` (on PostgreSQL one packed ``bytea`` fetched in binary, the timestamps
    floored to epoch seconds in numpy; on SQLite one text per column) gives exactly what
    fetching the same statement row by row gives: same values in the same row alignment,
    int64, instants floored to whole seconds — fractions of a second, before 2000-01-01 (where
    PostgreSQL's binary timestamps are negative) and before 1970 (negative epoch seconds) — and
    empty columns when no row matches."""
    committee = make.committee()
    unit = make.unit(committee, "业主单位")
    groups = [make.group(committee, unit), make.group(committee, None)]
    venue = make.venue(unit, name="会议室甲", capacity_units=4)
    starts = [
        datetime(2026, 3, 2, 8, 0, 0, 750000, tzinfo=UTC),
        datetime(2000, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1960, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
        datetime(1901, 12, 13, 20, 45, 52, 999000, tzinfo=TZ),
        datetime(2038, 1, 19, 3, 14, 8, 123000, tzinfo=UTC),
    ]
    if db.get_bind().dialect.name == "postgresql":
        # SQLite reads times to the millisecond, so it rounds these up to the next second.
        starts += [
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2026, 3, 2, 8, 0, 0, 999999, tzinfo=UTC),
        ]
    bookings = [
        Booking(
            venue_id=venue.id,
            group_id=groups[i % 2].id,
            start_at=start,
            end_at=start + timedelta(hours=i, microseconds=1 + 3217 * i),
            units=1 + i % 3,
            status=STATUSES[i % len(STATUSES)],
            status_reason="o'clock; --" if i % 2 else "",
            created_at=start - timedelta(days=400 * i, milliseconds=7 * i),
        )
        for i, start in enumerate(starts)
    ]
    db.add_all(bookings)
    db.commit()

    def statement(since: datetime) -> Any:
        return (
            select(
                Booking.id,
                epoch(Booking.start_at),
                epoch(Booking.end_at).label("end_s"),
                Booking.units,
                case({s: i for i, s in enumerate(STATUSES)}, value=Booking.status, else_=-1),
                func.coalesce(Group.unit_id, -1).label("unit"),
                epoch(Booking.created_at),
                cast(Booking.venue_id, BigInteger) * 3_000_000_000,
                epoch(Booking.start_at, SINCE),  # seconds from a period's start
            )
            .join(Group, Booking.group_id == Group.id)
            .where(
                Booking.venue_id == venue.id,
                Booking.start_at >= since,  # an aware datetime: the bind processor's work
                Booking.status_reason.in_(["", "o'clock; --"]),  # quoted strings, expanded
            )
        )

    SINCE = 1_772_409_600  # noqa: N806 - 2026-03-02 00:00 UTC
    stmt = statement(datetime(1900, 1, 1, tzinfo=UTC))
    columns = int_columns(db, stmt)
    rows = sorted(tuple(r) for r in db.execute(stmt).all())
    assert len(rows) == len(bookings)
    assert all(c.dtype == np.dtype("int64") and c.flags.c_contiguous for c in columns)
    order = np.argsort(columns[0], kind="stable")
    assert [tuple(int(c[k]) for c in columns) for k in order] == rows

    def floor_s(at: datetime) -> int:
        return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)

    by_id = {b.id: b for b in bookings}
    assert [r[1:4] for r in rows] == [
        (floor_s(by_id[r[0]].start_at), floor_s(by_id[r[0]].end_at), by_id[r[0]].units)
        for r in rows
    ]
    assert [r[4] for r in rows] == [STATUSES.index(by_id[r[0]].status) for r in rows]
    assert [r[5] for r in rows] == [
        unit.id if by_id[r[0]].group_id == groups[0].id else -1 for r in rows
    ]
    assert [r[6] for r in rows] == [floor_s(by_id[r[0]].created_at) for r in rows]
    assert {r[7] for r in rows} == {venue.id * 3_000_000_000}
    assert [r[8] for r in rows] == [floor_s(by_id[r[0]].start_at) - SINCE for r in rows]
    assert -1 in [r[1] for r in rows] and min(r[6] for r in rows) < 0

    empty = int_columns(db, statement(datetime(2100, 1, 1, tzinfo=UTC)))
    assert len(empty) == 9
    assert all(c.dtype == np.dtype("int64") and len(c) == 0 for c in empty)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-2, 6),
            st.one_of(st.floats(-50, 400, allow_nan=False), st.just(float("nan"))),
        ),
        max_size=60,
    ),
    st.integers(0, 8),
)
def test_medians_by_group_equal_pandas_groupby_median(pairs, groups) -> None:
    """The lead times' medians per group (one sort, no hashing of a key per booking) equal
    pandas' groupby median: the middle value or the mean of the two middle ones, NaN values
    and codes outside ``0 .. groups - 1`` left out, NaN for a group with none."""
    codes = np.array([c for c, _v in pairs], dtype="int64")
    values = np.array([v for _c, v in pairs], dtype="float64")
    ours = m.medians_by(codes, values, groups)
    inside = (codes >= 0) & (codes < groups)
    expected = pd.Series(values[inside]).groupby(codes[inside]).median().reindex(range(groups))
    np.testing.assert_allclose(ours, expected.to_numpy(dtype="float64"), rtol=0, atol=1e-12)
    assert len(ours) == groups
