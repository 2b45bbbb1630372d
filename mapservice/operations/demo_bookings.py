"""Eight weeks of plausible demo bookings for a committee (six past, two ahead), deterministic
from a seed: weekday evenings and weekends busier, cross-unit sharing common, some pending,
cancelled and no-show. Written in bulk, with unit allocations that respect capacity."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from mapservice.booking.capacity import Held, free_unit_numbers
from mapservice.core.opening import day_open_intervals
from mapservice.core.vocab import BookingStatus
from mapservice.db import utcnow
from mapservice.models import Booking, BookingAllocation, Committee, Group, Venue

PURPOSES = [
    "团员羽毛球友谊赛",
    "青年理论学习小组",
    "主题团日活动",
    "新团员入团仪式",
    "志愿服务培训",
    "青年职工技能分享会",
    "篮球联谊赛",
    "乒乓球交流赛",
    "瑜伽放松课",
    "读书分享会",
    "爱国主义教育参观",
    "创业沙龙",
    "社区青年议事会",
    "健身打卡",
    "团支部书记例会",
]


@dataclass
class _Plan:
    """Bookings and their unit allocations, built in memory before one bulk insert."""

    bookings: list[dict[str, object]] = field(default_factory=list)
    allocations: list[tuple[int, int, datetime, datetime]] = field(default_factory=list)


def seed_bookings(
    session: Session,
    committee: Committee,
    *,
    today: date,
    now: datetime | None = None,
    seed: int = 20231,
    weeks_back: int = 6,
    weeks_ahead: int = 2,
) -> int:
    """Generate the committee's demo bookings unless it has bookings already: ``weeks_back``
    weeks before ``today``'s week to ``weeks_ahead`` after, each one's status as seen at ``now``
    (default: the present; past bookings completed or no-shows, later ones confirmed or
    pending). Returns the number written."""
    existing = session.scalar(
        select(func.count(Booking.id)).join(Venue).where(Venue.committee_id == committee.id)
    )
    if existing:
        return 0
    rng = random.Random(seed + committee.id)
    venues = list(
        session.scalars(
            select(Venue)
            .where(
                Venue.committee_id == committee.id,
                Venue.published.is_(True),
                Venue.retired.is_(False),
            )
            .options(selectinload(Venue.hours), selectinload(Venue.closures))
            .order_by(Venue.id)
        )
    )
    groups = list(
        session.scalars(select(Group).where(Group.committee_id == committee.id).order_by(Group.id))
    )
    if not venues or not groups:
        return 0
    monday = today - timedelta(days=today.weekday())
    days = [monday + timedelta(days=i) for i in range(-7 * weeks_back, 7 * weeks_ahead)]
    plan = _Plan()
    now = now if now is not None else utcnow()
    for venue in venues:
        _plan_venue(plan, rng, venue, groups, days, ZoneInfo(committee.timezone), now)
    if not plan.bookings:
        return 0
    ids = list(
        session.scalars(
            insert(Booking).returning(Booking.id, sort_by_parameter_order=True), plan.bookings
        )
    )
    session.execute(
        insert(BookingAllocation),
        [
            {
                "booking_id": ids[i],
                "venue_id": plan.bookings[i]["venue_id"],
                "unit_no": n,
                "start_at": s,
                "end_at": e,
            }
            for i, n, s, e in plan.allocations
        ],
    )
    return len(plan.bookings)


def _plan_venue(
    plan: _Plan,
    rng: random.Random,
    venue: Venue,
    groups: list[Group],
    days: list[date],
    tz: ZoneInfo,
    now: datetime,
) -> None:
    """Walk the venue's open slots day by day, booking some: more on weekday evenings and
    weekends, most often by groups of other units."""
    held: list[Held] = []
    closures = [(c.start_at, c.end_at) for c in venue.closures]
    popularity = rng.uniform(0.15, 0.6)
    own = [g for g in groups if g.unit_id == venue.unit_id]
    others = [g for g in groups if g.unit_id != venue.unit_id]
    slot = timedelta(minutes=venue.slot_minutes)
    for day in days:
        opens = day_open_intervals(venue.opening_ranges, closures, day, tz)
        weekend = day.weekday() >= 5
        for a, b in opens:
            s = a
            while s + slot <= b:
                evening = not weekend and 18 <= s.astimezone(tz).hour < 21
                chance = popularity * (1.6 if weekend else 1.0) * (1.7 if evening else 1.0)
                if rng.random() >= chance * slot.total_seconds() / 10800:
                    s += slot
                    continue
                length = slot * max(1, venue.min_duration_minutes // venue.slot_minutes)
                if rng.random() < 0.4:
                    length += slot
                e = min(s + length, b, s + timedelta(minutes=venue.max_duration_minutes))
                units = 1 if venue.capacity_units == 1 or rng.random() < 0.7 else 2
                free = free_unit_numbers(venue.capacity_units, held, s, e)
                if len(free) >= units:
                    shared = not own or rng.random() < 0.6  # cross-unit sharing is common
                    group = rng.choice(others if shared else own)
                    status = _status(rng, venue, e, now)
                    index = len(plan.bookings)
                    plan.bookings.append(
                        {
                            "venue_id": venue.id,
                            "group_id": group.id,
                            "start_at": s,
                            "end_at": e,
                            "units": units,
                            "purpose": rng.choice(PURPOSES),
                            "headcount": min(venue.max_headcount or 30, rng.randint(4, 30)),
                            "status": status,
                            "status_reason": "",
                            "created_at": s - timedelta(days=rng.randint(1, 10)),
                            "updated_at": now,
                            "hold_expires_at": (
                                now + timedelta(hours=venue.hold_hours)
                                if status == BookingStatus.PENDING.value
                                else None
                            ),
                        }
                    )
                    if status != BookingStatus.CANCELLED.value:
                        for n in free[:units]:
                            held.append(Held(venue.id, n, s, e, index))
                            plan.allocations.append((index, n, s, e))
                s = e


def _status(rng: random.Random, venue: Venue, end: datetime, now: datetime) -> str:
    r = rng.random()
    if end <= now:
        if r < 0.07:
            return BookingStatus.NO_SHOW.value
        if r < 0.15:
            return BookingStatus.CANCELLED.value
        return BookingStatus.COMPLETED.value
    if r < 0.1:
        return BookingStatus.CANCELLED.value
    if venue.requires_approval and r < 0.5:
        return BookingStatus.PENDING.value
    return BookingStatus.CONFIRMED.value
