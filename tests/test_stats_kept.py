"""The venue table and the open intervals the figures start from are kept in the process while
the database's search epoch holds (:func:`mapservice.stats.frames._kept`): a dashboard of ten
thousand venues does not read and rebuild them on every view, and every change to what they
are made of shows on the next one."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from mapservice.models import Area, Closure, OpeningHours
from mapservice.stats import frames
from mapservice.stats.frames import Scope, load_open_intervals, load_venues
from mapservice.stats.periods import Period

TZ = ZoneInfo("Asia/Shanghai")


def _fresh(db, scope, period):
    """What a process that kept nothing reads now."""
    frames.forget_kept()
    venues = load_venues(db, scope)
    return venues, load_open_intervals(db, [int(v) for v in venues["venue_id"]], period)


def _open_hours(iv) -> dict[int, float]:
    return {int(k): v / 3600 for k, v in iv.seconds_by_venue().items()}


@pytest.fixture
def world(db, make):
    committee = make.committee()
    unit = make.unit(committee, "业主单位")
    other = make.unit(committee, "兄弟单位")
    court = make.venue(unit, name="球场", type="badminton", hours="Mon-Sun 08:00-20:00")
    room = make.venue(other, name="会议室", type="meeting_room", hours="Mon-Fri 09:00-17:00")
    db.commit()
    period = Period("custom", date(2026, 3, 2), date(2026, 3, 8), TZ)  # Monday to Sunday
    return committee, unit, other, court, room, period


def test_what_is_kept_is_read_again_after_every_change_it_is_made_of(db, world):
    committee, unit, other, court, room, period = world
    scope = Scope(committee.id)
    frames.forget_kept()
    venues = load_venues(db, scope)
    ids = [int(v) for v in venues["venue_id"]]
    iv = load_open_intervals(db, ids, period)
    assert _open_hours(iv) == {court.id: 7 * 12, room.id: 5 * 8}
    # unchanged: the very same intervals come back, not rebuilt (what makes keeping pay)
    assert load_open_intervals(db, ids, period) is iv
    assert load_venues(db, scope).equals(venues)

    court.name = "羽毛球场"
    db.commit()
    named = load_venues(db, scope)
    assert dict(zip(named["venue_id"], named["name"], strict=True)) == {
        court.id: "羽毛球场",
        room.id: "会议室",
    }

    db.add(OpeningHours(venue_id=room.id, weekday=5, start_min=9 * 60, end_min=12 * 60))
    db.commit()
    assert _open_hours(load_open_intervals(db, ids, period))[room.id] == 5 * 8 + 3

    db.add(
        Closure(
            venue_id=court.id,
            start_at=datetime(2026, 3, 4, 8, tzinfo=TZ),
            end_at=datetime(2026, 3, 5, 8, tzinfo=TZ),
        )
    )
    db.commit()
    assert _open_hours(load_open_intervals(db, ids, period))[court.id] == 6 * 12

    committee.timezone = "Europe/London"  # the same wall-clock hours, another zone's week
    db.commit()
    london = Period("custom", date(2026, 3, 2), date(2026, 3, 8), ZoneInfo("Europe/London"))
    assert _open_hours(load_open_intervals(db, ids, london)) == _open_hours(
        _fresh(db, scope, london)[1]
    )

    other.status = "suspended"  # its venue leaves every figure
    db.commit()
    assert list(load_venues(db, scope)["venue_id"]) == [court.id]

    # the street's name is not watched by the epoch: it is read on every call
    street = db.get(Area, int(court.street_id))
    street.name = "新街道"
    db.commit()
    assert list(load_venues(db, scope)["street_name"]) == ["新街道"]

    # after all that, what is kept equals what a fresh process reads
    kept_venues = load_venues(db, scope)
    kept_iv = load_open_intervals(db, [int(v) for v in kept_venues["venue_id"]], period)
    fresh_venues, fresh_iv = _fresh(db, scope, period)
    pd.testing.assert_frame_equal(kept_venues, fresh_venues)
    assert _open_hours(kept_iv) == _open_hours(fresh_iv)


def test_callers_cannot_change_what_is_kept(db, world):
    committee, unit, other, court, room, period = world
    frames.forget_kept()
    venues = load_venues(db, Scope(committee.id))
    venues["name"] = "changed by a caller"  # a copy: the next caller sees the real names
    assert "changed by a caller" not in set(load_venues(db, Scope(committee.id))["name"])
    iv = load_open_intervals(db, [int(v) for v in venues["venue_id"]], period)
    with pytest.raises(ValueError, match="read-only"):
        iv.end[0] += 1


def test_a_transaction_sees_its_own_change_and_keeps_nothing_of_it(db, world):
    """A writer's own uncommitted change shows in what it reads; once rolled back, nobody
    is served from it."""
    committee, unit, other, court, room, period = world
    scope = Scope(committee.id)
    frames.forget_kept()
    before = load_venues(db, scope)
    db.execute(text("UPDATE venues SET name = 'uncommitted' WHERE id = :id"), {"id": court.id})
    assert "uncommitted" in set(load_venues(db, scope)["name"])
    db.rollback()
    after = load_venues(db, scope)
    assert "uncommitted" not in set(after["name"])
    pd.testing.assert_frame_equal(after, before)


def test_figures_with_kept_venues_equal_those_read_afresh(db, world, make):
    """The dashboard's figures (month level) over a week, twice: the second from what the
    first kept, equal to a fresh read's, and right after a change of hours."""
    from mapservice.models import Booking
    from mapservice.stats import monthly

    committee, unit, other, court, room, period = world
    group = make.group(committee, other)
    start = datetime(2026, 3, 3, 9, tzinfo=TZ)
    db.add(
        Booking(
            venue_id=court.id,
            group_id=group.id,
            start_at=start,
            end_at=start + timedelta(hours=3),
            units=1,
            status="completed",
            created_at=start - timedelta(days=2),
        )
    )
    db.commit()
    scope = Scope(committee.id)
    frames.forget_kept()
    first = monthly.figures(db, scope, period)
    second = monthly.figures(db, scope, period)
    pd.testing.assert_frame_equal(first.venues, second.venues)
    assert first.totals["utilization"] == pytest.approx(3 / (7 * 12 + 5 * 8))
    db.execute(text("DELETE FROM opening_hours WHERE venue_id = :id"), {"id": room.id})
    db.commit()
    third = monthly.figures(db, scope, period)
    assert third.totals["open_cap_hours"] == pytest.approx(7 * 12)
    assert third.totals["utilization"] == pytest.approx(3 / (7 * 12))
    np.testing.assert_allclose(third.heat.to_numpy(), first.heat.to_numpy())
