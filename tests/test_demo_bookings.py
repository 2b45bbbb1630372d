"""The demo's eight weeks of bookings: plausible, capacity-safe, deterministic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mapservice.models import Booking, BookingAllocation, Group, Venue
from mapservice.operations.demo_bookings import seed_bookings
from mapservice.operations.seed import seed_demo

TODAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # noon in Shanghai: the statuses as then


def test_demo_bookings_are_plausible_and_safe(db):
    counts = seed_demo(db, today=TODAY, now=NOW)
    db.commit()
    assert counts["runzhou.json"]["bookings"] > 1000
    rows = db.execute(
        select(Booking.status, Booking.start_at, Venue.unit_id, Group.unit_id)
        .join(Venue, Venue.id == Booking.venue_id)
        .join(Group, Group.id == Booking.group_id)
    ).all()
    statuses = Counter(r[0] for r in rows)
    assert {"completed", "no_show", "cancelled", "confirmed", "pending"} <= set(statuses)
    shared = sum(1 for r in rows if r[3] != r[2]) / len(rows)
    assert 0.3 < shared < 1.0
    tz = ZoneInfo("Asia/Shanghai")
    weekend = sum(1 for r in rows if r[1].astimezone(tz).weekday() >= 5) / 2
    weekday = sum(1 for r in rows if r[1].astimezone(tz).weekday() < 5) / 5
    assert weekend > weekday  # per day, weekends are busier
    # Every active booking holds exactly its units, and no unit is double-booked.
    allocs = db.execute(
        select(
            BookingAllocation.venue_id,
            BookingAllocation.unit_no,
            BookingAllocation.start_at,
            BookingAllocation.end_at,
        )
    ).all()
    by_unit: dict[tuple[int, int], list] = {}
    for v, n, s, e in allocs:
        by_unit.setdefault((v, n), []).append((s, e))
    for spans in by_unit.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    _check_demo_plan(db, counts)
    # A second run adds nothing.
    again = seed_demo(db, today=TODAY, now=NOW)
    assert again["runzhou.json"]["bookings"] == 0
    assert again["runzhou.json"]["plan_turns"] == 0


def _check_demo_plan(db, counts):
    """Issue 20: Runzhou's 2023 activity list (every admitted unit leads; the tree planting at
    朝阳社区 on 10 March by 中国邮政) and pairings, many to one with 朝阳社区."""
    from mapservice.models import Pairing, Plan, Unit

    plan = db.scalars(select(Plan).where(Plan.year == 2023)).one()
    names = {e.unit.name for e in plan.entries}
    active = set(
        db.scalars(
            select(Unit.name).where(Unit.committee_id == plan.committee_id, Unit.status == "active")
        )
    )
    assert names == active and counts["runzhou.json"]["plan_turns"] == len(plan.entries)
    post = next(e for e in plan.entries if e.unit.name == "中国邮政镇江分公司")
    assert (post.period, post.kind, str(post.led_on)) == (3, "volunteer", "2023-03-10")
    chaoyang = db.scalars(select(Unit.id).where(Unit.name == "南山街道朝阳社区")).one()
    assert len(db.scalars(select(Pairing).where(Pairing.partner_unit_id == chaoyang)).all()) == 3


def test_demo_bookings_are_deterministic(db, make):
    committee = make.committee(with_streets=False)
    unit = make.unit(committee)
    make.group(committee, unit)
    make.group(committee, None)
    make.venue(unit, capacity_units=2)
    make.venue(make.unit(committee), type="gym")
    first = seed_bookings(db, committee, today=TODAY, now=NOW)
    snapshot = db.execute(
        select(Booking.venue_id, Booking.group_id, Booking.start_at, Booking.status).order_by(
            Booking.id
        )
    ).all()
    db.rollback()
    assert seed_bookings(db, committee, today=TODAY, now=NOW) == first
    assert (
        db.execute(
            select(Booking.venue_id, Booking.group_id, Booking.start_at, Booking.status).order_by(
                Booking.id
            )
        ).all()
        == snapshot
    )
