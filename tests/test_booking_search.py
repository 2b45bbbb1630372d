"""The availability search ("free between", bench #2): what each process keeps of venues never
answers from an older state than the request's own transaction sees — a slot booked through
the API is gone from the very next search, and every change to a venue, its hours, closures,
unit or committee shows at once; allocations longer than a day (their own partial index)
still count; and the search's shortcuts give the engine's answers (live bookings, opening
hours on a local day, across a clock change)."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from mapservice.booking import availability, capacity
from mapservice.core.hours import OpeningRange
from mapservice.core.opening import is_open_throughout, is_open_weekly, local_instant
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, BookingAllocation, Closure, OpeningHours, Venue
from mapservice.operations.tokens import create_token

TZ = ZoneInfo("Asia/Shanghai")
POINT = {"near": "119.4253,32.1975", "radius_km": "3", "type": "badminton"}


def soon(days: int, hour: int, minute: int = 0) -> datetime:
    return (datetime.now(TZ) + timedelta(days=days)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )


@pytest.fixture
def city(make: Any, db: Any) -> dict[str, Any]:
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit, "移动团支部")
    booker = make.booker(group, username="booker")
    base = {"hours": "Mon-Sun 08:00-22:00", "min_notice_minutes": 0, "lat": 32.1975}
    court = make.venue(unit, name="羽毛球馆", capacity_units=1, lon=119.4263, **base)
    hall = make.venue(unit, name="体育馆", capacity_units=2, lon=119.4273, **base)
    _t, secret = create_token(db, None, booker, ["read", "book"])
    db.commit()
    return {
        "committee": committee,
        "unit": unit,
        "group": group,
        "court": court,
        "hall": hall,
        "auth": {"Authorization": f"Bearer {secret}"},
    }


def search(client: Any, start: datetime, end: datetime, **params: Any) -> list[str]:
    query = {**POINT, "free_from": start.isoformat(), "free_to": end.isoformat(), **params}
    resp = client.get("/api/v1/venues", query_string=query)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [f["properties"]["name"] for f in resp.get_json()["features"]]


def book(client: Any, city: dict[str, Any], venue: Any, start: datetime, end: datetime) -> int:
    resp = client.post(
        "/api/v1/bookings",
        json={"venue_id": venue.id, "start": start.isoformat(), "end": end.isoformat()},
        headers=city["auth"],
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    booking_id: int = resp.get_json()["bookings"][0]["id"]
    return booking_id


def test_a_slot_booked_through_the_api_is_gone_from_the_next_search(client, city):
    start, end = soon(2, 19), soon(2, 20)
    assert search(client, start, end) == ["羽毛球馆", "体育馆"]  # warms what is kept
    taken = book(client, city, city["court"], start, end)
    assert search(client, start, end) == ["体育馆"]  # at once, the court's one unit taken
    assert search(client, end, end + timedelta(hours=1)) == ["羽毛球馆", "体育馆"]  # half-open
    book(client, city, city["hall"], start - timedelta(hours=1), end)
    assert search(client, start, end) == ["体育馆"]
    assert search(client, start, end, units="2") == []  # one of its two units held
    cancelled = client.post(
        f"/api/v1/bookings/{taken}/cancel", json={"reason": "改期"}, headers=city["auth"]
    )
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    assert search(client, start, end) == ["羽毛球馆", "体育馆"]


def test_every_change_to_venues_shows_in_the_next_search(client, city, db, make):
    start, end = soon(3, 19), soon(3, 20)
    both = ["羽毛球馆", "体育馆"]
    assert search(client, start, end) == both
    court, hall, unit, committee = city["court"], city["hall"], city["unit"], city["committee"]

    court.hours = [OpeningHours(weekday=d, start_min=8 * 60, end_min=12 * 60) for d in range(7)]
    db.commit()
    assert search(client, start, end) == ["体育馆"]  # closes at noon now
    court.hours = [OpeningHours(weekday=d, start_min=8 * 60, end_min=22 * 60) for d in range(7)]
    db.commit()
    assert search(client, start, end) == both

    db.add(Closure(venue_id=hall.id, start_at=end - timedelta(minutes=1), end_at=end, reason="x"))
    db.commit()
    assert search(client, start, end) == ["羽毛球馆"]
    db.execute(Closure.__table__.delete())
    db.commit()
    assert search(client, start, end) == both

    hall.published = False
    db.commit()
    assert search(client, start, end) == ["羽毛球馆"]  # a booker no longer sees it
    hall.published = True
    court.lon = 119.60  # moved out of the circle
    db.commit()
    assert search(client, start, end) == ["体育馆"]
    court.lon = 119.4263
    hall.capacity_units = 1
    db.commit()
    assert search(client, start, end, units="2") == []
    unit.status = "suspended"
    db.commit()
    assert search(client, start, end) == []
    unit.status = "active"
    db.commit()
    assert search(client, start, end) == both

    late = (soon(3, 22, 30), soon(3, 23, 30))  # after 22:00 in Shanghai, 15:30 in Berlin
    assert search(client, *late) == []
    committee.timezone = "Europe/Berlin"
    db.commit()
    assert search(client, *late) == both

    make.venue(unit, name="新馆", hours="Mon-Sun 08:00-22:00", lon=119.4253, lat=32.1975)
    db.commit()
    assert search(client, start, end)[0] == "新馆"


def test_an_allocation_longer_than_a_day_still_holds_its_unit(client, city, wdb):
    """Read through the partial index of long allocations: it starts days before the
    window, far outside the day's width the short ones are read over."""
    start, end = soon(4, 19), soon(4, 20)
    long_start, long_end = start - timedelta(days=3), end + timedelta(days=1)
    booking = Booking(
        venue_id=city["court"].id,
        group_id=city["group"].id,
        start_at=long_start,
        end_at=long_end,
        status=BookingStatus.CONFIRMED.value,
    )
    wdb.add(booking)
    wdb.flush()
    wdb.add(
        BookingAllocation(
            booking_id=booking.id,
            venue_id=city["court"].id,
            unit_no=1,
            start_at=long_start,
            end_at=long_end,
        )
    )
    wdb.commit()
    assert search(client, start, end) == ["体育馆"]
    assert search(client, long_end, long_end + timedelta(hours=1)) == ["羽毛球馆", "体育馆"]


def test_live_at_is_the_engines_live_condition(city, wdb):
    """The search's condition without an IN list picks the same bookings as the engine's."""
    now = datetime.now(UTC)
    day = soon(5, 9)
    holds = (None, now - timedelta(minutes=1), now + timedelta(minutes=1))
    i = 0
    for status in BookingStatus:
        for hold in holds:
            wdb.add(
                Booking(
                    venue_id=city["court"].id,
                    group_id=city["group"].id,
                    start_at=day + timedelta(hours=i),
                    end_at=day + timedelta(hours=i, minutes=30),
                    status=status.value,
                    hold_expires_at=hold,
                )
            )
            i += 1
    wdb.commit()
    ours = set(wdb.scalars(select(Booking.id).where(availability.live_at(now))))  # type: ignore[arg-type]
    engines = set(wdb.scalars(select(Booking.id).where(capacity.live_condition(now))))
    assert ours == engines
    assert 0 < len(ours) < i


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/Sao_Paulo"])
def test_opening_on_a_local_day_is_the_engines_answer(zone):
    """:func:`availability.is_open` (the search's) and :func:`is_open_weekly` (the rules', a
    refusal's alternatives) decide a window within one local day on that weekday's merged
    ranges: the same answer as :func:`is_open_throughout`, over random weekly hours and
    windows, on days the clock changes and windows that reach midnight."""
    tz = ZoneInfo(zone)
    rnd = random.Random(22)
    days = [date(2030, 3, 31), date(2030, 10, 27), date(2030, 11, 3), date(2030, 6, 12)]
    days += [date(2030, 1, 1) + timedelta(days=rnd.randrange(365)) for _ in range(8)]
    checked = 0
    for _ in range(300):
        ranges = []
        for weekday in range(7):
            at = 0
            while at < 1440 and rnd.random() < 0.7:
                a = at + rnd.choice((0, 0, 30, 60, 90))
                b = min(1440, a + rnd.choice((30, 60, 120, 240, 600)))
                if a < b:
                    ranges.append(OpeningRange(weekday, a, b))
                at = b
        raw = ",".join(f"{r.weekday}:{r.start_min}-{r.end_min}" for r in ranges)
        day = rnd.choice(days)
        a = rnd.randrange(0, 1440, 15)
        b = min(1440, a + rnd.choice((15, 60, 120, 240, 1440)))
        start, end = local_instant(day, a, tz), local_instant(day, b, tz)
        expected = is_open_throughout(sorted(ranges), [], start, end, tz)
        assert availability.is_open(zone, raw, start, end) == expected, (raw, start, end)
        assert is_open_weekly(ranges, start, end, tz) == expected, (raw, start, end)
        checked += expected
    assert checked > 10  # some windows were open, not only refusals


def test_a_transaction_searching_after_its_own_change_neither_uses_nor_keeps_it(
    client, city, engine
):
    """A transaction that changed a venue and searches before committing sees its change,
    and what it read is not kept: after it rolls back, searches answer as before."""
    from sqlalchemy.orm import Session

    from mapservice.operations.venue_search import FreeWindow, VenueFilter, find

    start, end = soon(3, 19), soon(3, 20)
    both = ["羽毛球馆", "体育馆"]
    assert search(client, start, end) == both  # warms what is kept
    court, hall = city["court"], city["hall"]
    flt = VenueFilter(types=["badminton"], near=(119.4253, 32.1975), radius_km=3)
    with Session(engine) as s:
        s.execute(Venue.__table__.update().where(Venue.id == court.id).values(published=False))
        found = find(s, None, flt, FreeWindow(start, end), datetime.now(UTC))
        assert [f.id for f in found] == [hall.id]  # its own change, before committing
        s.rollback()
    assert search(client, start, end) == both


def test_two_writers_in_opposite_orders_wait_only_on_each_others_rows(
    client, city, engine, db_kind
):
    """PostgreSQL: the search epoch's token is replaced at each writer's commit (a deferred
    constraint trigger), so two transactions editing two venues in opposite orders wait only
    on each other's rows, as plain SQL would — never on the token's row (held from the first
    change to the commit, it made the second writer wait on the first, and this order a
    deadlock). A search sees a writer's change once it commits, not before."""
    if db_kind != "postgresql":
        pytest.skip("SQLite has one writer at a time: its writers never wait on each other's rows")
    start, end = soon(3, 19), soon(3, 20)
    court, hall = city["court"].id, city["hall"].id
    assert search(client, start, end) == ["羽毛球馆", "体育馆"]  # warms what is kept
    venues = Venue.__table__
    a, b = engine.connect(), engine.connect()
    try:
        for conn in (a, b):
            conn.begin()
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
        a_pid = a.execute(text("SELECT pg_backend_pid()")).scalar_one()
        b_pid = b.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # A edits the court first, B the hall first: B does not wait (on the token's row).
        # (Not its name: unique with its unit's, a key, which a closure's reference locks.)
        a.execute(venues.update().where(venues.c.id == court).values(capacity_units=3))
        b.execute(venues.update().where(venues.c.id == hall).values(name="新体育馆"))
        assert search(client, start, end) == ["羽毛球馆", "体育馆"]  # nothing committed yet

        # A then edits the hall: it waits on B's row, and on nothing else.
        errors: list[BaseException] = []
        a_may_commit = threading.Event()

        def a_goes_on() -> None:
            try:
                a.execute(venues.update().where(venues.c.id == hall).values(capacity_units=1))
                assert a_may_commit.wait(60)
                a.commit()
            except BaseException as exc:  # noqa: BLE001 — reported below
                errors.append(exc)

        waiter = threading.Thread(target=a_goes_on)
        waiter.start()
        blocked: list[int] = []
        for _ in range(200):
            with engine.connect() as watch:
                blocked = list(
                    watch.execute(text("SELECT pg_blocking_pids(:p)"), {"p": a_pid}).scalar_one()
                )
            if blocked:
                break
            time.sleep(0.05)
        assert blocked == [b_pid]
        # B then closes the hall for the window (another table): it does not wait on A,
        # though A's change of the court has its token trigger pending.
        b.execute(
            Closure.__table__.insert().values(
                venue_id=hall, start_at=start, end_at=end, reason="维修"
            )
        )
        b.commit()
        later = (end, end + timedelta(hours=1))
        assert search(client, start, end) == ["羽毛球馆"]  # B's changes, at once
        assert search(client, *later) == ["羽毛球馆", "新体育馆"]
        assert search(client, *later, units="3") == []  # not A's, still open
        a_may_commit.set()
        waiter.join(timeout=30)
        assert not waiter.is_alive() and errors == [], str(errors[0]) if errors else ""
    finally:
        a.close()
        b.close()
    assert search(client, *later, units="3") == ["羽毛球馆"]  # A's: 3 units now
    assert search(client, *later, units="2") == ["羽毛球馆"]  # and the hall 1


def test_the_kept_search_gives_the_engines_answers(city, make, db, wdb):
    """Over random venues (sizes, hours, closures, places in and out of the circle) and random
    allocations (every status, holds expired or not, some longer than a day), each search's
    answer from the venues kept equals the engine's own: within the radius, open throughout
    (:func:`is_open_throughout` with the closures) and with ``units`` of
    :func:`capacity.free_unit_numbers` over :func:`capacity.held`."""
    from mapservice.booking import loading
    from mapservice.core.geo import haversine_m
    from mapservice.models import Venue as VenueModel
    from mapservice.operations.venue_search import FreeWindow, VenueFilter, find

    rnd = random.Random(2222)
    unit, group = city["unit"], city["group"]
    hours = [
        "Mon-Sun 08:00-22:00",
        "Mon-Fri 09:00-12:00,14:00-21:00",
        "Sat-Sun 06:00-23:00",
        "Mon-Sun 18:00-24:00",
    ]
    for i in range(14):
        make.venue(
            unit,
            name=f"馆{i}",
            capacity_units=rnd.choice((1, 2, 3)),
            hours=rnd.choice(hours),
            lon=119.4253 + rnd.uniform(-0.012, 0.012),
            lat=32.1975 + rnd.uniform(-0.01, 0.01),
        )
    db.commit()
    venues = list(db.scalars(select(VenueModel).order_by(VenueModel.id)))
    now = datetime.now(UTC)
    day = soon(6, 0)
    for v in venues:
        if rnd.random() < 0.3:
            a = day + timedelta(hours=rnd.randrange(8, 22))
            db.add(Closure(venue_id=v.id, start_at=a, end_at=a + timedelta(hours=2), reason="x"))
    db.commit()
    statuses = list(BookingStatus)
    for v in venues:
        for _ in range(rnd.randrange(0, 8)):
            long = rnd.random() < 0.1
            s = day + timedelta(hours=rnd.randrange(-30 if long else 6, 23))
            e = s + (timedelta(days=2) if long else timedelta(minutes=rnd.choice((30, 60, 120))))
            hold = rnd.choice((None, now - timedelta(minutes=5), now + timedelta(minutes=5)))
            booking = Booking(
                venue_id=v.id,
                group_id=group.id,
                start_at=s,
                end_at=e,
                status=rnd.choice(statuses).value,
                hold_expires_at=hold,
            )
            wdb.add(booking)
            wdb.flush()
            n = rnd.randrange(1, v.capacity_units + 1)
            wdb.add(
                BookingAllocation(
                    booking_id=booking.id, venue_id=v.id, unit_no=n, start_at=s, end_at=e
                )
            )
            try:
                wdb.commit()
            except Exception:  # noqa: BLE001 — the unit already held then: the guard refuses
                wdb.rollback()
    point = (119.4253, 32.1975)
    checked = found_any = 0
    for _ in range(60):
        start = day + timedelta(hours=rnd.randrange(6, 23), minutes=rnd.choice((0, 30)))
        end = start + timedelta(minutes=rnd.choice((30, 60, 120, 180)))
        units, radius = rnd.choice((1, 1, 2, 3)), rnd.choice((0.5, 0.8, 2.0))
        flt = VenueFilter(types=["badminton"], near=point, radius_km=radius)
        with db.begin():
            got = [f.id for f in find(db, None, flt, FreeWindow(start, end, units), now)]
        expected = []
        for v in venues:
            d = haversine_m(point[0], point[1], v.lon, v.lat)
            if d > radius * 1000:
                continue
            closures = [(c.start_at, c.end_at) for c in v.closures]
            if not is_open_throughout(v.opening_ranges, closures, start, end, loading.venue_tz(v)):
                continue
            holds = capacity.held(db, [v.id], start, end, now)
            if len(capacity.free_unit_numbers(v.capacity_units, holds, start, end)) >= units:
                expected.append((d, v.id))
        db.rollback()
        assert got == [i for _d, i in sorted(expected)], (start, end, units, radius)
        checked += 1
        found_any += bool(got)
    assert checked == 60 and found_any > 10


def test_a_kept_search_by_staff_sees_their_unpublished_venues_within_the_radius(
    city, make, db, wdb
):
    """The kept search as a committee admin (who runs every venue, published or not): an
    unpublished free venue is found, a booked one is not, nor one inside the circle's bounding
    box but beyond the radius (its corner); nearest first, each at its haversine distance."""
    from mapservice.core.geo import haversine_m
    from mapservice.operations.venue_search import FreeWindow, VenueFilter, find

    admin = make.admin(city["committee"])
    unit, point = city["unit"], (119.4253, 32.1975)
    hidden = make.venue(unit, name="未发布馆", lon=119.4258, lat=32.1975, published=False)
    # ~0.9 km north and ~0.9 km east: inside the 1 km circle's box, ~1.3 km away.
    corner = make.venue(unit, name="角落馆", lon=119.4349, lat=32.2056)
    start = soon(3, 10)
    end = start + timedelta(hours=1)
    book_at = Booking(
        venue_id=city["court"].id, group_id=city["group"].id, start_at=start, end_at=end
    )
    book_at.status = BookingStatus.CONFIRMED.value
    wdb.add(book_at)
    wdb.flush()
    wdb.add(
        BookingAllocation(
            booking_id=book_at.id, venue_id=city["court"].id, unit_no=1, start_at=start, end_at=end
        )
    )
    wdb.commit()
    flt = VenueFilter(types=["badminton"], near=point, radius_km=1.0)
    now = datetime.now(UTC)
    for _ in range(2):  # the first reads the venues, the second answers from those kept
        with db.begin():
            found = find(db, admin, flt, FreeWindow(start, end, 1), now)
        db.rollback()
        assert [f.id for f in found] == [hidden.id, city["hall"].id]
        assert corner.id not in [f.id for f in found]
        assert [f.distance_m for f in found] == [
            haversine_m(*point, 119.4258, 32.1975),
            haversine_m(*point, 119.4273, 32.1975),
        ]
    with db.begin():
        public = find(db, None, flt, FreeWindow(start, end, 1), now)
    db.rollback()
    assert [f.id for f in public] == [city["hall"].id]


def _destination(lon: float, lat: float, bearing_deg: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lon, lat) along ``bearing_deg`` on the haversine's sphere."""
    import math

    from mapservice.core.geo import EARTH_RADIUS_M

    d, b = metres / EARTH_RADIUS_M, math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(l2), math.degrees(p2)


def test_the_public_kept_search_keeps_exactly_the_venues_within_the_radius(city, make, db):
    """The public search around a point narrows the kept venues by the angle between places
    (with a metre's slack) before the exact distance decides: venues half a metre inside the
    radius in every direction are found, those half a metre beyond it are not; each at
    :func:`haversine_m`'s distance, nearest first; too small or unpublished venues never; and
    a window when nothing is open answers nothing (no venue left to ask the database about)."""
    from mapservice.core.geo import haversine_m
    from mapservice.operations.venue_search import FreeWindow, VenueFilter, find

    unit, point = city["unit"], (119.4253, 32.1975)
    base = {"hours": "Mon-Sun 08:00-22:00", "min_notice_minutes": 0}
    made = []
    for bearing in (0, 45, 90, 135, 180, 225, 270, 315):
        for metres in (999.5, 1000.5, 400 + bearing):
            lon, lat = _destination(*point, bearing, metres)
            venue = make.venue(
                unit, name=f"馆{bearing}-{metres}", capacity_units=2, lon=lon, lat=lat, **base
            )
            made.append(venue)
    small = make.venue(unit, name="小馆", capacity_units=1, lon=119.4254, lat=32.1975, **base)
    hidden = make.venue(unit, name="未发布", lon=119.4252, lat=32.1975, published=False, **base)
    db.commit()
    everyone = [*made, small, hidden, city["court"], city["hall"]]
    now = datetime.now(UTC)
    start = soon(4, 10)
    flt = VenueFilter(types=["badminton"], near=point, radius_km=1.0)
    expected = sorted(
        (haversine_m(*point, v.lon, v.lat), v.id)
        for v in everyone
        if v.published and v.capacity_units >= 2 and haversine_m(*point, v.lon, v.lat) <= 1000
    )
    assert len(expected) == 8 + 8 + 1  # the 400 m ring, the 999.5 m ring and the hall
    for _ in range(2):  # the first reads the venues, the second answers from those kept
        with db.begin():
            found = find(db, None, flt, FreeWindow(start, start + timedelta(hours=1), 2), now)
        db.rollback()
        assert [(f.distance_m, f.id) for f in found] == expected
    with db.begin():  # 23:00-23:30: every venue closed, so none is asked about
        late = soon(4, 23)
        assert find(db, None, flt, FreeWindow(late, late + timedelta(minutes=30), 1), now) == []
    db.rollback()
