"""The statistics' daily aggregates (venue_day_usage): after any sequence of changes —
bookings made, cancelled, moved, marked no-show or completed, deleted; closures, opening
hours, a group's unit, a committee's time zone changed — a refresh leaves them equal to a full
recount from the rows; and summed over a period they give the row-level figures."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from mapservice.models import (
    Booking,
    Closure,
    Committee,
    OpeningHours,
    venue_day_stale,
    venue_day_usage,
)
from mapservice.stats import aggregates as agg
from mapservice.stats.frames import Scope, among, int_columns
from mapservice.stats.periods import Period
from mapservice.stats.report import build_report
from tests.test_cli import Cli

TZ = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 3, 2, tzinfo=TZ)  # a Monday
STATUSES = ["pending", "confirmed", "declined", "cancelled", "completed", "no_show"]


@pytest.fixture
def cli(db: Any, database_url: str, tmp_path: Any) -> Cli:
    return Cli(database_url, tmp_path)


@pytest.fixture
def town(db, make):
    committee = make.committee()
    units = [make.unit(committee, f"单位{i}") for i in range(3)]
    groups = [make.group(committee, u) for u in units] + [make.group(committee, None)]
    venues = [
        make.venue(
            units[0], name="夜场", capacity_units=3, hours="Mon-Sun 00:00-02:00,18:00-24:00"
        ),
        make.venue(
            units[1], name="白场", capacity_units=2, hours="Mon-Fri 08:00-12:00,13:00-20:00"
        ),
        make.venue(units[2], name="全天", capacity_units=1, hours="Mon-Sun 00:00-24:00"),
    ]
    agg.refresh(db)
    db.commit()
    return committee, units, groups, venues


def _assert_fresh(db) -> None:
    """Refresh; the log is empty and the aggregates equal a full recount."""
    agg.refresh(db)
    db.commit()
    assert db.execute(select(func.count()).select_from(venue_day_stale)).scalar_one() == 0
    stored, recount = agg.stored(db), agg.recount(db)
    pd.testing.assert_frame_equal(stored, recount)
    pd.testing.assert_frame_equal(agg.stored_months(db), agg.recount_months(db))
    pd.testing.assert_frame_equal(agg.stored_years(db), agg.recount_years(db))


def _random_booking(rnd: random.Random, venues: list[Any], groups: list[Any]) -> Booking:
    start = BASE + timedelta(days=rnd.randrange(-2, 12), minutes=30 * rnd.randrange(48))
    return Booking(
        venue_id=rnd.choice(venues).id,
        group_id=rnd.choice(groups).id,
        start_at=start,
        end_at=start + timedelta(minutes=30 * rnd.randrange(1, 12)),
        units=rnd.randrange(1, 3),
        status=rnd.choice(STATUSES),
        created_at=start - timedelta(days=rnd.randrange(0, 9), hours=rnd.randrange(24)),
    )


def _shifted_booking(
    rnd: random.Random,
    venues: list[Any],
    groups: list[Any],
    days: tuple[int, int],
    *,
    lead_hours: tuple[int, int] | None = None,
) -> Booking:
    """:func:`_random_booking` moved by a whole number of days drawn from ``days`` (and, with
    ``lead_hours``, created that many hours before its start)."""
    booking = _random_booking(rnd, venues, groups)
    shift = timedelta(days=rnd.randrange(*days))
    booking.start_at += shift
    booking.end_at += shift
    if lead_hours is not None:
        booking.created_at = booking.start_at - timedelta(hours=rnd.randrange(*lead_hours))
    return booking


@pytest.mark.parametrize("seed", range(4))
def test_refreshed_aggregates_equal_a_full_recount_after_random_changes(db, town, seed):
    committee, units, groups, venues = town
    rnd = random.Random(seed)
    bookings: list[Booking] = []
    for _step in range(8):
        for _ in range(rnd.randrange(1, 12)):
            op = rnd.random()
            if op < 0.4 or not bookings:
                booking = _random_booking(rnd, venues, groups)
                db.add(booking)
                bookings.append(booking)
            elif op < 0.55:
                rnd.choice(bookings).status = rnd.choice(["cancelled", "no_show", "completed"])
            elif op < 0.7:  # a move: another time, sometimes another venue or size
                booking = rnd.choice(bookings)
                shift = timedelta(hours=rnd.randrange(-30, 30))
                booking.start_at += shift
                booking.end_at += shift
                if rnd.random() < 0.3:
                    booking.venue_id = rnd.choice(venues).id
                if rnd.random() < 0.3:
                    booking.units = rnd.randrange(1, 3)
            elif op < 0.75:
                booking = bookings.pop(rnd.randrange(len(bookings)))
                db.delete(booking)
            elif op < 0.8:
                start = BASE + timedelta(days=rnd.randrange(0, 10), hours=rnd.randrange(24))
                db.add(
                    Closure(
                        venue_id=rnd.choice(venues).id,
                        start_at=start,
                        end_at=start + timedelta(hours=rnd.randrange(1, 40)),
                    )
                )
            elif op < 0.85:
                closures = db.scalars(select(Closure)).all()
                if closures:
                    db.delete(rnd.choice(closures))
            elif op < 0.9:
                venue = rnd.choice(venues)
                db.add(
                    OpeningHours(
                        venue_id=venue.id,
                        weekday=rnd.randrange(7),
                        start_min=60 * rnd.randrange(2, 6),
                        end_min=60 * rnd.randrange(6, 8),
                    )
                )
            elif op < 0.93:
                rnd.choice(groups).unit_id = rnd.choice([*(u.id for u in units), None])
            elif op < 0.95:  # a venue changes hands: its shared seconds change
                rnd.choice(venues).unit_id = rnd.choice(units).id
            else:
                booking = rnd.choice(bookings)
                booking.group_id = rnd.choice(groups).id
            db.flush()
        db.commit()
        if rnd.random() < 0.7:  # sometimes several rounds of changes between refreshes
            _assert_fresh(db)
    # a committee's time zone: every local day moves
    db.get(Committee, committee.id).timezone = "Europe/London"
    db.commit()
    assert db.execute(select(func.count()).select_from(venue_day_stale)).scalar_one() >= 3
    _assert_fresh(db)
    assert not agg.stored(db).empty


def test_every_change_is_logged_by_the_database_in_its_transaction(db, town):
    """Plain SQL, no ORM: the triggers log it; a rolled-back change logs nothing."""
    from sqlalchemy import text

    _committee, _units, groups, venues = town

    def logged() -> int:
        return db.execute(select(func.count()).select_from(venue_day_stale)).scalar_one()

    db.add(_random_booking(random.Random(1), venues, groups))
    db.commit()
    assert logged() == 1
    db.execute(text("UPDATE bookings SET status = 'cancelled'"))
    db.rollback()
    assert logged() == 1
    db.execute(text("UPDATE bookings SET status = 'cancelled'"))
    db.commit()
    assert logged() == 3  # old and new
    db.execute(text("UPDATE bookings SET purpose = 'x'"))  # not a column the figures read
    db.commit()
    assert logged() == 3
    db.execute(text("DELETE FROM bookings"))
    db.commit()
    assert logged() == 4
    _assert_fresh(db)
    assert agg.stored(db).empty


def test_rebuild_equals_refresh_and_the_cli_runs_it(db, town, cli):
    _committee, _units, groups, venues = town
    rnd = random.Random(5)
    for _ in range(40):
        db.add(_random_booking(rnd, venues, groups))
    db.commit()
    _assert_fresh(db)
    before = agg.stored(db)
    db.execute(venue_day_stale.delete())
    db.commit()
    result = cli("stats", "rebuild")
    assert result.exit_code == 0, result.output
    assert f"{len(before)} rows, {len(agg.stored_months(db))} month rows" in result.output
    db.rollback()
    pd.testing.assert_frame_equal(agg.stored(db), before)
    assert cli("stats", "refresh").exit_code == 0


def test_aggregates_summed_over_a_period_give_the_row_level_figures(db, town):
    """Per venue: booked, realized and shared capacity-hours and the booking counts; the
    heatmap by weekday and hour: summed from the aggregates of the period's days they equal
    what the dashboard computes from the rows."""
    committee, _units, groups, venues = town
    rnd = random.Random(9)
    for _ in range(150):
        db.add(_random_booking(rnd, venues, groups))
    for _ in range(4):
        start = BASE + timedelta(days=rnd.randrange(0, 10), hours=rnd.randrange(24))
        db.add(
            Closure(
                venue_id=rnd.choice(venues).id, start_at=start, end_at=start + timedelta(hours=7)
            )
        )
    db.commit()
    _assert_fresh(db)
    first, last = date(2026, 3, 2), date(2026, 3, 10)
    period = Period("custom", first, last, TZ)
    report = build_report(
        db, Scope(committee.id), period, now=datetime(2027, 1, 1, tzinfo=TZ), from_rows=True
    )
    rows = agg.stored(db)
    d0, d1 = agg.local_day(period.start_at, TZ), agg.local_day(period.end_at, TZ) - 1
    rows = rows[(rows["day"] >= d0) & (rows["day"] <= d1)]
    owner = {v.id: v.unit_id for v in venues}
    rows = rows.assign(
        shared=np.where(rows["group_unit_id"] != rows["venue_id"].map(owner), rows["booked_s"], 0)
    )
    per_venue = rows.groupby("venue_id").sum()
    vt = report.venues
    for venue in venues:
        got = per_venue.loc[venue.id] if venue.id in per_venue.index else None
        row = vt.loc[venue.id]
        assert row["booked_cap_hours"] > 0
        for column, figure in (
            ("booked_s", "booked_cap_hours"),
            ("realized_s", "realized_cap_hours"),
            ("shared", "shared_cap_hours"),
        ):
            assert (got[column] if got is not None else 0) / 3600 == pytest.approx(row[figure]), (
                figure
            )
        for column in ("bookings", "cancelled", "completed", "no_show"):
            assert (got[column] if got is not None else 0) == row[column], column
    weekday = (rows["day"] + 3) % 7  # 1970-01-01 was a Thursday
    heat = rows.groupby(weekday)[list(agg.HOUR_COLUMNS)].sum().reindex(range(7), fill_value=0)
    np.testing.assert_allclose(heat.to_numpy() / 3600, report.heat.to_numpy(), atol=1e-9)


def test_without_the_trigger_the_recount_check_fails(db, town):
    """Negative control: with the bookings' update trigger dropped (inside a transaction that
    is rolled back: DDL is transactional on both databases), cancelling bookings leaves the
    refreshed aggregates unequal to the recount — the check above can fail."""
    from sqlalchemy import text

    _committee, _units, groups, venues = town
    rnd = random.Random(3)
    for _ in range(30):
        booking = _random_booking(rnd, venues, groups)
        booking.status = "confirmed"
        db.add(booking)
    db.commit()
    _assert_fresh(db)
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("DROP TRIGGER tr_bookings_day_stale ON bookings"))
    else:
        db.execute(text("DROP TRIGGER tr_bookings_day_stale_update"))
    db.execute(text("UPDATE bookings SET status = 'cancelled'"))
    agg.refresh(db)
    assert not agg.stored(db).equals(agg.recount(db))
    assert agg.stored(db)["booked_s"].sum() > 0 == agg.recount(db)["booked_s"].sum()
    db.rollback()
    db.execute(text("UPDATE bookings SET status = 'cancelled'"))
    db.commit()
    _assert_fresh(db)
    assert agg.stored(db)["booked_s"].sum() == 0


@pytest.mark.parametrize("level", ["daily", "monthly"])
@pytest.mark.parametrize("tz_name", ["Asia/Shanghai", "Europe/London"])
def test_dashboard_figures_from_the_aggregates_equal_those_from_the_rows(db, town, tz_name, level):
    """Every figure of the dashboard but the median lead time — per venue, in total, the
    heatmap, sharing by unit, the weekly trend — from the daily aggregates equals the same
    figure from the booking rows, for whole-day periods (London: one spanning a clock
    change), from the daily rows and from the months (whole months, partial months at the
    edges, none)."""
    import importlib

    daily = importlib.import_module(f"mapservice.stats.{level}")

    committee, units, groups, venues = town
    committee.timezone = tz_name
    db.commit()
    tz = ZoneInfo(tz_name)
    rnd = random.Random(17)
    for _ in range(200):
        db.add(_shifted_booking(rnd, venues, groups, (0, 30)))
    for _ in range(4):
        start = BASE + timedelta(days=rnd.randrange(0, 30), hours=rnd.randrange(24))
        db.add(
            Closure(
                venue_id=rnd.choice(venues).id, start_at=start, end_at=start + timedelta(hours=7)
            )
        )
    for _ in range(150):  # February to mid-April: whole months and partial ones
        db.add(_shifted_booking(rnd, venues, groups, (-30, 45)))
    for _ in range(60):  # late November to December of 2025 and of 2026: a year's edges
        booking = _random_booking(rnd, venues, groups)
        shift = timedelta(days=rnd.choice((-100, 270)) + rnd.randrange(0, 20))
        booking.start_at += shift
        booking.end_at += shift
        db.add(booking)
    db.commit()
    cases = [
        (date(2026, 3, 2), date(2026, 4, 5), None),
        (date(2026, 3, 11), date(2026, 3, 11), None),
        (date(2026, 2, 1), date(2026, 4, 30), None),  # whole months only
        (date(2026, 2, 20), date(2026, 4, 10), None),  # a whole month, partial ones at both edges
        (date(2026, 3, 1), date(2026, 4, 17), None),  # April less its last 13 days
        (date(2026, 3, 2), date(2026, 3, 30), None),  # March less its first and last days
        # a year: 2026 from the year level less December, December 2025 from its month, the
        # first days of both Decembers from the daily rows
        (date(2025, 12, 5), date(2026, 12, 4), None),
        (date(2025, 12, 1), date(2026, 11, 30), None),  # whole months, 2026 less December
        (date(2025, 11, 20), date(2026, 4, 10), None),  # 2026 by its months
    ]
    if level == "monthly":  # counted up to now: the day so far from the rows
        cases += [
            (date(2026, 2, 1), date(2026, 4, 30), datetime(2026, 4, 9, 14, 30, tzinfo=tz)),
            (date(2026, 3, 1), date(2026, 3, 31), datetime(2026, 3, 29, 3, 30, tzinfo=tz)),
            (date(2026, 3, 1), date(2026, 3, 31), datetime(2026, 3, 1, 19, 10, tzinfo=tz)),
            (date(2026, 3, 1), date(2026, 3, 31), datetime(2026, 3, 12, tzinfo=tz)),  # midnight
            (date(2026, 3, 1), date(2026, 3, 31), datetime(2026, 2, 12, tzinfo=tz)),  # not begun
        ]
    for first, last, now in cases:
        period = Period("custom", first, last, tz)
        rows = build_report(
            db,
            Scope(committee.id),
            period,
            now=now or datetime(2027, 1, 1, tzinfo=tz),
            from_rows=True,
        )
        days = daily.figures(db, Scope(committee.id), period.until(now) if now else period)
        if now is None or now.day == 9:  # (a day's first hours may hold nothing booked)
            assert rows.totals["booked_cap_hours"] > 0
        columns = [*m_summed(), "utilization", "realized_utilization", "sharing_rate"]
        columns += ["no_show_rate", "cancellation_rate"]
        pd.testing.assert_frame_equal(
            days.venues[columns], rows.venues[columns], check_dtype=False, rtol=1e-12
        )
        for key, value in rows.totals.items():
            if key != "lead_days":
                assert days.totals[key] == pytest.approx(value, rel=1e-12), key
        np.testing.assert_allclose(days.heat.to_numpy(), rows.heat.to_numpy(), atol=1e-9)
        sharing = ["name", "venues", "booked_cap_hours", "shared_cap_hours"]
        sharing += ["used_elsewhere_cap_hours", "sharing_rate"]
        pd.testing.assert_frame_equal(
            days.sharing[sharing].sort_index(),
            rows.sharing[sharing].sort_index(),
            check_dtype=False,
        )
        pd.testing.assert_frame_equal(days.trend, rows.trend, check_dtype=False, rtol=1e-12)
    # a secretary's scope and one venue type alike
    period = Period("custom", date(2026, 3, 2), date(2026, 3, 15), tz)
    for scope in (Scope(committee.id, units[1].id), Scope(committee.id, venue_type="badminton")):
        rows = build_report(db, scope, period, now=datetime(2027, 1, 1, tzinfo=tz), from_rows=True)
        days = daily.figures(db, scope, period)
        assert days.totals["booked_cap_hours"] == pytest.approx(rows.totals["booked_cap_hours"])
        assert days.totals["venues"] == rows.totals["venues"]
    if level == "daily":  # a period cut inside a day is not the daily level's to answer
        with pytest.raises(ValueError, match="whole days"):
            daily.figures(
                db, Scope(committee.id), period.until(datetime(2026, 3, 3, 12, tzinfo=tz))
            )


def m_summed() -> list[str]:
    from mapservice.stats.measures import SUMMED

    return list(SUMMED)


def test_the_worker_job_counts_what_changed(db, town, engine):
    from datetime import UTC

    from sqlalchemy.orm import sessionmaker

    from mapservice.operations import jobs

    _committee, _units, groups, venues = town
    rnd = random.Random(2)
    for _ in range(10):
        db.add(_random_booking(rnd, venues, groups))
    db.commit()
    assert "refresh_stats" in jobs.JOBS
    ctx = jobs.Context(sessionmaker(bind=engine), datetime.now(UTC), {})
    assert jobs.JOBS["refresh_stats"].run(ctx) == {"changes": 10}
    db.rollback()
    assert db.execute(select(func.count()).select_from(venue_day_stale)).scalar_one() == 0
    pd.testing.assert_frame_equal(agg.stored(db), agg.recount(db))
    assert agg.stored(db)["bookings"].sum() == 10


def test_the_months_follow_the_days_and_a_missed_change_shows(db, town):
    """The month rows equal the daily rows summed, per venue and month; negative control:
    with the venues' unit trigger dropped (rolled back after), a venue changing hands leaves
    the months' shared seconds counted against its old unit, and the recount check fails."""
    from sqlalchemy import text

    from mapservice.models import Venue

    _committee, units, groups, venues = town
    rnd = random.Random(4)
    for _ in range(80):
        booking = _random_booking(rnd, venues, groups)
        booking.start_at += timedelta(days=rnd.randrange(0, 40))
        booking.end_at = booking.start_at + timedelta(hours=2)
        booking.status = "confirmed"
        db.add(booking)
    db.commit()
    _assert_fresh(db)
    days, months = agg.stored(db), agg.stored_months(db)
    assert months["month"].nunique() >= 2
    by_month = days.assign(month=agg.day_month(days["day"].to_numpy()))
    summed = by_month.groupby(["venue_id", "month"])[["booked_s", "bookings"]].sum()
    got = months.set_index(["venue_id", "month"])[["booked_s", "bookings"]]
    pd.testing.assert_frame_equal(got, summed)
    heat = np.frombuffer(b"".join(months["heat"]), dtype=agg.HEAT_RECORD)
    assert heat["s"].sum() == days[list(agg.HOUR_COLUMNS)].to_numpy().sum() > 0
    venue = venues[0]
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("DROP TRIGGER tr_venues_unit_day_stale ON venues"))
    else:
        db.execute(text("DROP TRIGGER tr_venues_unit_day_stale"))
    db.execute(
        text("UPDATE venues SET unit_id = :u WHERE id = :v"), {"u": units[1].id, "v": venue.id}
    )
    agg.refresh(db)
    stored, recount = agg.stored_months(db), agg.recount_months(db)
    assert not stored["shared_s"].equals(recount["shared_s"])
    db.rollback()
    db.get(Venue, venue.id).unit_id = units[1].id
    db.commit()
    _assert_fresh(db)


def test_stale_days_are_recounted_in_windows_that_read_little_beyond_them():
    """Scattered stale days (a few venues a day, over months) are cut into windows whose
    venues × days stay within the budget; a venue's every day (a rebuild) stays one read;
    every pair is in exactly one window, and the windows' days do not overlap."""
    rnd = random.Random(3)
    scattered = pd.DataFrame(
        {
            "venue_id": [rnd.randrange(1, 400) for _ in range(300)],
            "day": [20000 + rnd.randrange(300) for _ in range(300)],
        }
    ).drop_duplicates(ignore_index=True)
    windows = agg.day_windows(scattered, budget=500)
    assert len(windows) > 10
    for w in windows:
        span = int(w["day"].max() - w["day"].min() + 1)
        read = w["venue_id"].nunique() * span
        assert read <= 500 or span == 1 or read <= 2 * len(w), (read, span, len(w))
    for a, b in itertools.pairwise(windows):
        assert a["day"].max() < b["day"].min()
    together = pd.concat(windows).sort_values(["venue_id", "day"], ignore_index=True)
    pd.testing.assert_frame_equal(
        together, scattered.sort_values(["venue_id", "day"], ignore_index=True)
    )
    dense = pd.DataFrame(
        [(v, d) for v in range(1, 50) for d in range(20000, 20100)], columns=["venue_id", "day"]
    )
    assert len(agg.day_windows(dense, budget=500)) == 1
    assert agg.day_windows(dense.iloc[:0], budget=500) == []


def test_a_period_splits_into_months_and_days():
    from mapservice.stats.monthly import split

    def day(y: int, m: int, d: int) -> int:
        return (date(y, m, d) - date(1970, 1, 1)).days

    mar, apr = (2026 - 1970) * 12 + 2, (2026 - 1970) * 12 + 3
    # whole months only
    assert split(day(2026, 3, 1), day(2026, 4, 30)) == ((mar, apr), [])
    # a few days of April: read as days; most of March: the month less its first day
    assert split(day(2026, 3, 2), day(2026, 4, 3)) == (
        (mar, mar),
        [(day(2026, 3, 1), day(2026, 3, 1), -1), (day(2026, 4, 1), day(2026, 4, 3), 1)],
    )
    assert split(day(2026, 3, 11), day(2026, 3, 11)) == (None, [(day(2026, 3, 11),) * 2 + (1,)])


def test_months_split_into_years_and_months():
    from mapservice.stats.monthly import split_years

    def month(y: int, m: int) -> int:
        return (y - 1970) * 12 + m - 1

    assert split_years(month(2026, 1), month(2026, 12)) == ((2026, 2026), [])
    # December 2025 by its month; 2026 less December
    assert split_years(month(2025, 12), month(2026, 11)) == (
        (2026, 2026),
        [(month(2025, 12), month(2025, 12), 1), (month(2026, 12), month(2026, 12), -1)],
    )
    # six months of a year or fewer: by the months
    assert split_years(month(2026, 3), month(2026, 8)) == (
        None,
        [(month(2026, 3), month(2026, 8), 1)],
    )
    assert split_years(month(2025, 1), month(2027, 2))[0] == (2025, 2026)


def test_a_split_reads_no_range_that_holds_no_rows():
    """With what the rows hold known (``holds``), a partial month whose days outside the
    period hold nothing is read as its month row (nothing subtracted), a partial month with
    nothing inside is not read, and a side that holds rows is still read or subtracted."""
    from mapservice.stats.monthly import split, split_years

    def day(y: int, m: int, d: int) -> int:
        return (date(y, m, d) - date(1970, 1, 1)).days

    mar, apr, may = ((2026 - 1970) * 12 + k for k in (2, 3, 4))
    booked = {day(2026, 3, 5), day(2026, 3, 20), day(2026, 4, 2)}  # the days holding rows

    def holds(a: int, b: int) -> bool:
        return any(a <= d <= b for d in booked)

    # March 3 to April 3: without knowing, March less the 1st-2nd and April's first three
    # days; knowing, March 1-2 hold nothing (not subtracted) and April 4-30 hold nothing
    # (April read as its month row)
    assert split(day(2026, 3, 3), day(2026, 4, 3)) == (
        (mar, mar),
        [(day(2026, 3, 1), day(2026, 3, 2), -1), (day(2026, 4, 1), day(2026, 4, 3), 1)],
    )
    assert split(day(2026, 3, 3), day(2026, 4, 3), holds) == ((mar, apr), [])
    # March 10 to May 6: March's days 10-31 hold rows (the 20th) and so do the 1st-9th (the
    # 5th): the cheaper side is read; May holds nothing inside: not read at all
    assert split(day(2026, 3, 10), day(2026, 5, 6), holds) == (
        (mar, apr),
        [(day(2026, 3, 1), day(2026, 3, 9), -1)],
    )
    assert split(day(2026, 5, 7), day(2026, 5, 9), holds) == (None, [])

    def month(y: int, m: int) -> int:
        return (y - 1970) * 12 + m - 1

    # June 2026 to May 2027 with rows only in 2026: 2026 by its year row less nothing
    # (January to May hold none), 2027 not read
    months = {month(2026, 6), month(2026, 11)}
    assert split_years(
        month(2026, 6), month(2027, 5), lambda a, b: any(a <= x <= b for x in months)
    ) == ((2026, 2026), [])
    assert split_years(month(2026, 6), month(2027, 5)) == (  # not knowing: both read
        (2026, 2026),
        [(month(2026, 1), month(2026, 5), -1), (month(2027, 1), month(2027, 5), 1)],
    )


def test_which_side_of_an_edge_is_read_changes_no_figure(db, town, monkeypatch):
    """Periods whose edges hold no rows on one side or the other give the figures of the
    rows; and the check notices a split that skips what does hold rows (negative control:
    a ``holds`` that answers "nothing here" for every range)."""
    from mapservice.stats import monthly

    committee, _units, groups, venues = town
    rnd = random.Random(23)
    for _ in range(120):  # March 2026 and its neighbours' edges
        db.add(_shifted_booking(rnd, venues, groups, (-3, 25)))
    db.commit()
    scope = Scope(committee.id)
    now = datetime(2027, 1, 1, tzinfo=TZ)
    cases = [
        (date(2025, 10, 10), date(2026, 3, 20)),  # nothing before February: skipped
        (date(2026, 2, 25), date(2026, 4, 12)),  # April 12-30 hold nothing: April's month row
        (date(2026, 3, 4), date(2027, 2, 3)),  # 2026 less nothing before March
        (date(2026, 3, 4), date(2026, 3, 17)),
    ]
    for first, last in cases:
        period = Period("custom", first, last, TZ)
        rows = build_report(db, scope, period, now=now, from_rows=True)
        fig = monthly.figures(db, scope, period)
        assert rows.totals["booked_cap_hours"] > 0
        for key in ("booked_cap_hours", "realized_cap_hours", "shared_cap_hours", "bookings"):
            assert fig.totals[key] == pytest.approx(rows.totals[key], rel=1e-12), key
        np.testing.assert_allclose(fig.heat.to_numpy(), rows.heat.to_numpy(), atol=1e-9)
    monkeypatch.setattr(monthly, "_holds", lambda session, column: lambda a, b: False)
    period = Period("custom", date(2026, 2, 25), date(2026, 4, 12), TZ)
    rows = build_report(db, scope, period, now=now, from_rows=True)
    fig = monthly.figures(db, scope, period)
    assert fig.totals["booked_cap_hours"] < rows.totals["booked_cap_hours"]


@pytest.mark.parametrize("tz_name", ["Asia/Shanghai", "Europe/London"])
def test_the_api_table_from_the_aggregates_equals_the_rows(db, town, tz_name):
    """``utilization(lead_times=False)`` — what ``/stats/utilization`` serves — equals the
    row-level figures grouped every way, for a quarter counted up to a moment inside a day
    (London: across its clock change)."""
    from mapservice.stats.report import GROUP_BYS, utilization

    committee, _units, groups, venues = town
    committee.timezone = tz_name
    tz = ZoneInfo(tz_name)
    rnd = random.Random(23)
    for _ in range(250):
        db.add(_shifted_booking(rnd, venues, groups, (-30, 45)))
    db.commit()
    period = Period("custom", date(2026, 2, 1), date(2026, 4, 30), tz).until(
        datetime(2026, 4, 9, 15, 20, tzinfo=tz)
    )
    for group_by in GROUP_BYS:
        rows = utilization(db, Scope(committee.id), period, group_by)
        sums = utilization(db, Scope(committee.id), period, group_by, lead_times=False)
        columns = ["key", "venues", *m_summed(), "utilization", "realized_utilization"]
        columns += ["sharing_rate", "no_show_rate", "cancellation_rate"]
        pd.testing.assert_frame_equal(
            sums.grouped[columns].reset_index(drop=True),
            rows.grouped[columns].reset_index(drop=True),
            check_dtype=False,
            rtol=1e-12,
        )
        assert rows.totals["booked_cap_hours"] > 0
        for key, value in rows.totals.items():
            if key != "lead_days":
                assert sums.totals[key] == pytest.approx(value, rel=1e-12), key


def test_lead_times_read_by_ranges_of_venues_are_the_ones_read_at_once(db, town, monkeypatch):
    """The held bookings' lead times, read a few venues at a time (a city's year by parts of
    a few MB, not one value of 9 MB), are exactly those read by one query: every venue's,
    none twice."""
    from mapservice.stats import frames

    committee, _units, groups, venues = town
    rnd = random.Random(5)
    for _ in range(120):
        db.add(_shifted_booking(rnd, venues, groups, (-20, 40), lead_hours=(1, 24 * 40)))
    db.commit()
    period = Period("custom", date(2026, 2, 20), date(2026, 4, 10), TZ)
    scope = Scope(committee.id)
    ids = sorted(v.id for v in venues)
    whole = frames.load_lead_times(db, scope, period)
    monkeypatch.setattr(frames, "LEAD_VENUES", 1)  # a query per venue
    parts = frames.load_lead_times(db, scope, period, ids)
    assert len(whole) > 50 and whole["venue_id"].nunique() == len(ids) == 3
    key = ["venue_id", "lead_days"]
    pd.testing.assert_frame_equal(
        parts.sort_values(key).reset_index(drop=True),
        whole.sort_values(key).reset_index(drop=True),
    )


@pytest.mark.parametrize("group_by", ["venue", "unit", "type", "street"])
def test_the_dashboard_report_from_the_aggregates_equals_the_one_from_the_rows(db, town, group_by):
    """What the dashboard shows (:func:`build_report`): the venue table with each venue's
    median lead time, the grouped table, by type and by unit, the totals, sharing by unit,
    the weekly trend, the heatmap and the street table, from the aggregates (and the held
    bookings' lead times) equal to the same report from every booking row — over weeks with
    whole and partial months, and a period in progress (counted up to a moment in a day)."""
    committee, _units, groups, venues = town
    rnd = random.Random(23)
    for _ in range(250):
        db.add(_shifted_booking(rnd, venues, groups, (-20, 40), lead_hours=(1, 24 * 40)))
    db.commit()
    scope = Scope(committee.id)
    cases = [
        (Period("custom", date(2026, 2, 20), date(2026, 4, 10), TZ), datetime(2027, 1, 1)),
        (Period("custom", date(2026, 3, 1), date(2026, 3, 31), TZ), datetime(2026, 3, 17, 15)),
        # Whole months (the trend read a month at a time) between two cut ones.
        (Period("custom", date(2026, 1, 10), date(2026, 5, 20), TZ), datetime(2027, 1, 1)),
    ]
    for period, now in cases:
        now = now.replace(tzinfo=TZ)
        ours = build_report(db, scope, period, group_by=group_by, now=now)
        rows = build_report(db, scope, period, group_by=group_by, now=now, from_rows=True)
        assert ours.totals["booked_cap_hours"] > 0 and ours.totals["lead_days"] > 0
        for key, value in rows.totals.items():
            assert ours.totals[key] == pytest.approx(value, rel=1e-12), key
        columns = [*m_summed(), "utilization", "sharing_rate", "no_show_rate", "lead_days"]
        columns += ["name", "unit_name", "type", "type_label", "street_name", "capacity_units"]
        pd.testing.assert_frame_equal(
            ours.venues[columns], rows.venues[columns], check_dtype=False, rtol=1e-12
        )
        assert ours.venues["lead_days"].notna().sum() >= len(venues) // 2
        for table in ("grouped", "by_type", "by_unit"):
            a, b = getattr(ours, table), getattr(rows, table)
            cols = [c for c in b.columns if c in a.columns]
            assert set(cols) >= {"key", "name", "lead_days", "utilization", "venues"}
            pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False, rtol=1e-12)
        sharing = ["name", "venues", "booked_cap_hours", "shared_cap_hours"]
        sharing += ["used_elsewhere_cap_hours", "sharing_rate", "key"]
        pd.testing.assert_frame_equal(
            ours.sharing[sharing], rows.sharing[sharing], check_dtype=False, rtol=1e-12
        )
        pd.testing.assert_frame_equal(ours.trend, rows.trend, check_dtype=False, rtol=1e-12)
        np.testing.assert_allclose(ours.heat.to_numpy(), rows.heat.to_numpy(), atol=1e-9)
        pd.testing.assert_frame_equal(ours.streets, rows.streets, check_dtype=False, rtol=1e-12)
        assert list(ours.idle["venue_id"]) == list(rows.idle["venue_id"])


def _more_venues(make: Any, units: list[Any], n: int) -> list[Any]:
    """``n`` more venues, open every day, spread over the town's three units."""
    return [
        make.venue(units[i % 3], name=f"馆{i}", capacity_units=2, hours="Mon-Sun 08:00-22:00")
        for i in range(n)
    ]


def test_a_refresh_at_a_few_venues_far_apart_reads_those_venues_only(db, town, make):
    """Stale days at two venues far apart among many (a day's bookings in a city: a few
    hundred venues spread over the ids) are recounted from those venues' rows alone — the
    query names them, not every venue between them (their year of daily rows: a worker's
    peak 700 MB at a million bookings) — and the aggregates still equal a full recount."""
    _committee, units, groups, venues = town
    everywhere = [*venues, *_more_venues(make, units, 12)]
    rnd = random.Random(11)
    for _ in range(80):
        db.add(_random_booking(rnd, everywhere, groups))
    db.commit()
    _assert_fresh(db)
    first, last = everywhere[0], everywhere[-1]
    dialect = db.get_bind().dialect.name
    day = venue_day_usage.c.venue_id

    def read(ids: list[int]) -> set[int]:
        rows = int_columns(db, select(day).where(among(day, ids, dialect)))
        return set(rows[0].tolist())

    held = read([v.id for v in everywhere])  # dense: the range
    assert {first.id, last.id} < held and len(held) > 10
    assert read([first.id, last.id]) == {first.id, last.id}  # sparse: exactly these
    assert read([last.id]) == {last.id}
    db.add(_random_booking(rnd, [first], groups))
    db.add(_shifted_booking(rnd, [last], groups, (30, 300)))  # another month, maybe year
    db.commit()
    _assert_fresh(db)


def test_a_refresh_in_parts_of_a_few_venues_equals_a_full_recount(db, town, make, monkeypatch):
    """The days are recounted in windows of days (:func:`agg.day_windows`), the months and
    years :data:`agg.LEVEL_CHUNK` venues at a time, their old rows deleted
    :data:`agg.DELETE_PAIRS` pairs at a time: with windows of three venue-days, parts of two
    venues and three pairs, random changes at every venue still leave the aggregates equal
    to a full recount (read at once)."""
    _committee, units, groups, venues = town
    everywhere = [*venues, *_more_venues(make, units, 5)]
    monkeypatch.setattr(agg, "LEVEL_CHUNK", 2)
    monkeypatch.setattr(agg, "DELETE_PAIRS", 3)
    monkeypatch.setattr(agg, "WINDOW_VENUE_DAYS", 3)  # the days recounted in many windows
    rnd = random.Random(5)
    for _ in range(3):
        for _ in range(30):
            db.add(_shifted_booking(rnd, everywhere, groups, (-40, 400)))
        db.commit()
        _assert_fresh(db)
    for booking in db.scalars(select(Booking).limit(25)):
        booking.status = "cancelled"
    db.commit()
    _assert_fresh(db)
