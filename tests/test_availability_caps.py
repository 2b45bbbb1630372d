"""Issue 23, item 4: one anonymous request must not cost a second of CPU. The venue of the
report — 100 units, ~1,500 bookings over a month — answers a visitor at most 7 days and at
most 1,000 intervals (beyond: a 422 saying so, before any interval is serialised); a token's
caller still gets 31 days. The occupancy timeline is one sweep, equal to the per-piece count
it replaced on random holds (Hypothesis)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from mapservice.api.venues import PUBLIC_MAX_INTERVALS, PUBLIC_WINDOW_DAYS
from mapservice.booking.capacity import Held, timeline
from mapservice.models import Booking, BookingAllocation
from mapservice.operations import tokens

TZ = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


def busy_venue(db: Any, make: Any) -> tuple[int, datetime, str]:
    committee = make.committee()
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit, "移动团支部")
    admin = make.admin(committee, username="admin")
    venue = make.venue(unit, name="百场馆", capacity_units=100, hours="Mon-Sun 00:00-24:00")
    day0 = (datetime.now(TZ) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(23)
    bookings, allocations = [], []
    for i in range(1500):
        # Unit 1 + i % 100 holds 15 bookings, one every other day (a unit never overlaps
        # itself: the database refuses that), each at its own minute.
        day = 2 * (i // 100)
        start = day0 + timedelta(days=day, minutes=rng.randrange(0, 22 * 60))
        end = start + timedelta(minutes=rng.randrange(15, 120))
        bookings.append(
            {
                "id": 100000 + i,
                "venue_id": venue.id,
                "group_id": group.id,
                "start_at": start,
                "end_at": end,
                "units": 1,
                "status": "confirmed",
            }
        )
        allocations.append(
            {
                "booking_id": 100000 + i,
                "venue_id": venue.id,
                "unit_no": 1 + i % 100,
                "start_at": start,
                "end_at": end,
            }
        )
    db.execute(insert(Booking), bookings)
    db.execute(insert(BookingAllocation), allocations)
    _tok, secret = tokens.create_token(db, admin, admin, ["read"], "caps")
    db.commit()
    assert len(db.scalars(select(Booking.id).where(Booking.venue_id == venue.id)).all()) == 1500
    return venue.id, day0, secret


def ask(client: Any, venue_id: int, start: datetime, days: int, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(
        f"/api/v1/venues/{venue_id}/availability",
        query_string={
            "from": start.isoformat(),
            "to": (start + timedelta(days=days)).isoformat(),
        },
        headers=headers,
    )


def test_a_visitor_gets_a_bounded_answer(client: Any, db: Any, make: Any) -> None:
    venue_id, day0, token = busy_venue(db, make)
    month = ask(client, venue_id, day0, 31, token)
    assert month.status_code == 200
    assert len(month.get_json()["intervals"]) > PUBLIC_MAX_INTERVALS  # the report's case
    refused = ask(client, venue_id, day0, 31)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["to"]
    week = ask(client, venue_id, day0, PUBLIC_WINDOW_DAYS)
    assert week.status_code in (200, 422)
    if week.status_code == 200:
        assert len(week.get_json()["intervals"]) <= PUBLIC_MAX_INTERVALS
    else:
        assert week.get_json()["error"]["code"] == "too_many_intervals"
    day = ask(client, venue_id, day0, 1)
    assert day.status_code == 200
    free = {iv["free_units"] for iv in day.get_json()["intervals"]}
    assert min(free) < 100  # the bookings are there


def _per_piece(
    capacity: int, holds: list[Held], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int]]:
    """The timeline as it was computed before: each piece scans every hold."""
    points = {start, end}
    for h in holds:
        if h.start < end and start < h.end:
            points.add(max(h.start, start))
            points.add(min(h.end, end))
    cuts = sorted(points)
    out: list[tuple[datetime, datetime, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        taken = min(len({h.unit_no for h in holds if h.start < b and a < h.end}), capacity)
        if out and out[-1][2] == taken and out[-1][1] == a:
            out[-1] = (out[-1][0], b, taken)
        else:
            out.append((a, b, taken))
    return out


T0 = datetime(2026, 12, 7, tzinfo=UTC)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.integers(1, 4),
    st.lists(st.tuples(st.integers(1, 5), st.integers(-4, 40), st.integers(1, 12)), max_size=25),
    st.integers(0, 10),
    st.integers(11, 40),
)
def test_the_sweep_equals_the_per_piece_count(
    capacity: int, raw: list[tuple[int, int, int]], a: int, b: int
) -> None:
    holds = [
        Held(1, unit, T0 + timedelta(hours=s), T0 + timedelta(hours=s + n), i + 1)
        for i, (unit, s, n) in enumerate(raw)
    ]
    start, end = T0 + timedelta(hours=a), T0 + timedelta(hours=b)
    assert timeline(capacity, holds, start, end) == _per_piece(capacity, holds, start, end)
