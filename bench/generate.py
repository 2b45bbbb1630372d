"""A city-scale dataset, fast: venues across the seed districts and a year of bookings.

One committee (``city``, a city committee hosting its districts) with the seed districts'
boundaries (Runzhou, Qiqihar-Jianhua, Saihan, Jincheng-Chengqu) and their streets; member
units and their groups; ``venues`` venues at random points inside the district polygons, with
types, capacities, opening hours and booking rules drawn from realistic profiles; and
``bookings`` bookings over a year centred on today (half past, half ahead), every live one
holding one allocation row per unit, never two overlapping on one unit (the PostgreSQL
exclusion constraint / SQLite trigger stay on while loading, and a check counts overlaps).

Written with Core ``insert()`` executemany on SQLite and ``COPY`` on PostgreSQL, never the ORM
row by row; primary keys are assigned here, so nothing needs ``RETURNING``.

    .venv/bin/python bench/generate.py sqlite:///tmp/city.db --venues 10000 --bookings 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import shapely  # noqa: E402
from shapely.geometry import mapping  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mapservice.core import geo  # noqa: E402
from mapservice.core.opening import local_instant  # noqa: E402
from mapservice.db import make_engine, sqlite_instant  # noqa: E402
from mapservice.migrate import upgrade  # noqa: E402
from mapservice.models import (  # noqa: E402
    Area,
    Booking,
    BookingAllocation,
    Closure,
    Committee,
    Group,
    OpeningHours,
    Unit,
    User,
    Venue,
    user_groups,
)
from mapservice.stats.aggregates import rebuild  # noqa: E402

GEODATA = ROOT / "geodata"
TZ_NAME = "Asia/Shanghai"
COMMITTEE_SLUG = "city"
PASSWORD = "bench-password"

#: (folder, district file, district name, street file or None, share of the venues)
DISTRICTS: list[tuple[str, str, str, str | None, float]] = [
    ("runzhou", "district.geojson", "润州区", "streets.geojson", 0.4),
    ("qiqihar", "districts.geojson", "建华区", "jianhua-streets.geojson", 0.2),
    ("saihan", "district.geojson", "赛罕区", None, 0.2),
    ("jincheng", "districts.geojson", "城区", None, 0.2),
]

#: type: (weight, capacity choices, slot minutes, hours profile)
TYPES: dict[str, tuple[float, Sequence[int], int, str]] = {
    "meeting_room": (0.22, (1,), 60, "office"),
    "badminton": (0.12, (1, 2, 3, 4, 6), 60, "sport"),
    "table_tennis": (0.10, (2, 3, 4, 6, 8), 60, "sport"),
    "basketball": (0.06, (1, 2), 60, "sport"),
    "football": (0.02, (1,), 120, "sport"),
    "gym": (0.06, (1,), 60, "sport"),
    "yoga_dance": (0.06, (1,), 60, "sport"),
    "lecture_hall": (0.06, (1,), 60, "office"),
    "reading_room": (0.05, (1, 2), 60, "long"),
    "youth_home": (0.10, (1, 2), 60, "long"),
    "patriotic_base": (0.03, (1,), 120, "museum"),
    "entrepreneurship_base": (0.04, (1, 2, 3), 60, "office"),
    "social_practice_base": (0.03, (1,), 120, "museum"),
    "public_land": (0.02, (1, 2), 120, "sport"),
    "other": (0.03, (1,), 60, "office"),
}

#: weekly opening ranges (weekday, start_min, end_min) by profile
HOURS: dict[str, list[tuple[int, int, int]]] = {
    "office": [(d, 8 * 60 + 30, 17 * 60 + 30) for d in range(5)],
    "sport": [(d, 9 * 60, 21 * 60) for d in range(5)] + [(d, 8 * 60, 20 * 60) for d in (5, 6)],
    "long": [(d, 8 * 60, 21 * 60) for d in range(7)],
    "museum": [(d, 9 * 60, 17 * 60) for d in range(1, 7)],
}

UNIT_KINDS = ["government", "soe", "financial", "school", "community", "two_new", "other"]
PURPOSES = ["团员羽毛球友谊赛", "青年理论学习小组", "主题团日活动", "志愿服务培训", "读书分享会"]


@dataclass
class Dataset:
    """What the benchmarks need to know about what was generated (ids, the year, users)."""

    url: str
    committee_id: int
    venues: int
    bookings: int
    allocations: int
    first_day: date
    last_day: date
    now: datetime
    admin_id: int
    booker_ids: list[int]
    seconds: dict[str, float] = field(default_factory=dict)
    overlaps: int = -1

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url.split("@")[-1],
            "venues": self.venues,
            "bookings": self.bookings,
            "allocations": self.allocations,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "overlapping_allocations": self.overlaps,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


# ---------------------------------------------------------------- writing


def _bulk(conn: Connection, table: Any, rows: list[dict[str, Any]], chunk: int = 50_000) -> None:
    """Core executemany (SQLite) or COPY (PostgreSQL) of full rows (every column given)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        cols = list(rows[0])
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [_pg_value(row[c]) for c in cols]  # naive UTC, as UTCDateTime stores
                    )
        return
    # SQLite: the driver's executemany on values already in the form the models store
    # (instants as integer microseconds, booleans as 0/1), inside the same transaction.
    cols = list(rows[0])
    marks = ", ".join("?" * len(cols))
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})"  # noqa: S608 (our names)
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for i in range(0, len(rows), chunk):
        cur.executemany(sql, [[_sqlite_value(r[c]) for c in cols] for r in rows[i : i + chunk]])
    cur.close()


def _pg_value(v: Any) -> Any:
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return sqlite_instant(v)
    if isinstance(v, bool):
        return int(v)
    return v


def _password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)


# ---------------------------------------------------------------- geography


def _districts() -> list[tuple[geo.Area, list[geo.Area], float]]:
    out = []
    for folder, fname, name, streets, share in DISTRICTS:
        areas = geo.read_areas(GEODATA / folder / fname, level="district")
        district = next(a for a in areas if a.name == name)
        street_areas = geo.read_areas(GEODATA / folder / streets, level="street") if streets else []
        out.append((district, street_areas, share))
    return out


def _points_inside(shape: Any, n: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """``n`` uniform random points inside ``shape`` (vectorised rejection sampling)."""
    minx, miny, maxx, maxy = shape.bounds
    shapely.prepare(shape)
    out: list[tuple[float, float]] = []
    while len(out) < n:
        k = max(64, 2 * (n - len(out)))
        xs, ys = rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)
        inside = shapely.contains_xy(shape, xs, ys)
        out.extend(zip(xs[inside].round(7).tolist(), ys[inside].round(7).tolist(), strict=True))
    return out[:n]


# ---------------------------------------------------------------- the dataset


def generate(
    url: str,
    venues: int = 10_000,
    bookings: int = 1_000_000,
    *,
    seed: int = 7,
    bookers: int = 32,
    today: date | None = None,
    migrate: bool = True,
    quiet: bool = False,
) -> Dataset:
    """Create the schema (if ``migrate``) and fill an empty database at ``url``."""
    t_all = time.perf_counter()
    seconds: dict[str, float] = {}
    if migrate:
        t0 = time.perf_counter()
        upgrade(url)
        seconds["migrate"] = time.perf_counter() - t0
    engine = make_engine(url)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    tz = ZoneInfo(TZ_NAME)
    now = datetime.now(UTC).replace(microsecond=0)
    today = today or now.astimezone(tz).date()
    first_day = today - timedelta(days=182)
    days = [first_day + timedelta(days=i) for i in range(365)]
    last_day = days[-1]
    created = now - timedelta(days=400)

    t0 = time.perf_counter()
    districts = _districts()
    with engine.begin() as conn:
        committee_id = 1
        _bulk(
            conn,
            Committee.__table__,
            [
                {
                    "id": committee_id,
                    "slug": COMMITTEE_SLUG,
                    "name": "城市青工委（基准数据）",
                    "name_en": "City youth work committee (benchmark data)",
                    "city": "",
                    "timezone": TZ_NAME,
                    "created_at": created,
                }
            ],
        )
        area_rows: list[dict[str, Any]] = []
        street_shapes: list[tuple[int, Any]] = []
        for district, streets, _share in districts:
            for a in [district, *streets]:
                aid = len(area_rows) + 1
                minx, miny, maxx, maxy = a.geometry.bounds
                area_rows.append(
                    {
                        "id": aid,
                        "committee_id": committee_id,
                        "level": a.level,
                        "name": a.name,
                        "name_en": a.name_en,
                        "approximate": a.approximate,
                        "geometry": json.dumps(mapping(a.geometry), separators=(",", ":")),
                        "min_lon": minx,
                        "min_lat": miny,
                        "max_lon": maxx,
                        "max_lat": maxy,
                    }
                )
                if a.level == "street":
                    street_shapes.append((aid, a.geometry))
        _bulk(conn, Area.__table__, area_rows)

        n_units = max(20, venues // 30)
        unit_rows = [
            {
                "id": i + 1,
                "committee_id": committee_id,
                "name": f"成员单位{i + 1:04d}",
                "name_en": "",
                "kind": UNIT_KINDS[i % len(UNIT_KINDS)],
                "secretary": "",
                "phone": f"0511-6{i:07d}",
                "status": "active" if i % 50 else "suspended",
                "is_demo": False,
                "created_at": created,
            }
            for i in range(n_units)
        ]
        _bulk(conn, Unit.__table__, unit_rows)
        group_rows: list[dict[str, Any]] = []
        for i in range(n_units * 2 + 50):
            unit_id = (i % n_units) + 1 if i < n_units * 2 else None
            group_rows.append(
                {
                    "id": i + 1,
                    "committee_id": committee_id,
                    "unit_id": unit_id,
                    "name": f"团支部{i + 1:05d}",
                    "contact_name": "",
                    "contact_phone": "",
                    "active": True,
                    "created_at": created,
                }
            )
        _bulk(conn, Group.__table__, group_rows)
        # Bookers get a group of their own each (the last ones: units that are active).
        pw = _password_hash()
        user_rows = [
            _user(1, committee_id, "bench-admin", "committee_admin", None, None, pw, created)
        ]
        booker_ids: list[int] = []
        active_groups = [
            g
            for g in group_rows
            if g["unit_id"] is not None and unit_rows[g["unit_id"] - 1]["status"] == "active"
        ]
        for k in range(bookers):
            g = active_groups[-(k + 1)]
            uid = len(user_rows) + 1
            user_rows.append(
                _user(
                    uid, committee_id, f"bench-booker-{k:02d}", "booker", None, g["id"], pw, created
                )
            )
            booker_ids.append(uid)
        _bulk(conn, User.__table__, user_rows)
        # A booker books for the groups it is a member of (its default one here).
        _bulk(
            conn,
            user_groups,
            [{"user_id": u["id"], "group_id": u["group_id"]} for u in user_rows if u["group_id"]],
        )
    seconds["committee_units_groups_users"] = time.perf_counter() - t0

    # Venues: points per district, streets by one spatial join, types and rules by profile.
    t0 = time.perf_counter()
    points: list[tuple[float, float]] = []
    counts = [round(venues * share) for *_x, share in districts]
    counts[0] += venues - sum(counts)
    for (district, _streets, _share), n in zip(districts, counts, strict=True):
        points.extend(_points_inside(district.geometry, n, nrng))
    street_of = geo.assign_streets(points, street_shapes)
    type_names = list(TYPES)
    type_weights = [TYPES[t][0] for t in type_names]
    venue_rows: list[dict[str, Any]] = []
    hour_rows: list[dict[str, Any]] = []
    closure_rows: list[dict[str, Any]] = []
    profiles: list[_VenuePlan] = []
    for i, (lon, lat) in enumerate(points):
        vid = i + 1
        vtype = rng.choices(type_names, type_weights)[0]
        _w, caps, slot, profile = TYPES[vtype]
        cap = rng.choice(caps)
        unit_id = rng.randrange(n_units) + 1
        approval = rng.random() < 0.15
        venue_rows.append(
            {
                "id": vid,
                "committee_id": committee_id,
                "unit_id": unit_id,
                "name": f"{vtype}-{vid:05d}",
                "type": vtype,
                "lon": lon,
                "lat": lat,
                "entered_crs": "wgs84",
                "entered_lon": lon,
                "entered_lat": lat,
                "address": f"某路{vid}号",
                "street_id": street_of[i],
                "capacity_units": cap,
                "max_headcount": rng.choice((None, 20, 40, 80, 200)),
                "facilities": "空调, 投影" if i % 3 else "",
                "phone": f"0511-8{vid:07d}",
                "slot_minutes": slot,
                "min_duration_minutes": slot,
                "max_duration_minutes": max(240, slot * 2),
                "max_days_ahead": rng.choice((30, 60, 90)),
                "min_notice_minutes": 60,
                "requires_approval": approval,
                "hold_hours": 48,
                "cancel_cutoff_minutes": 120,
                "bookable_by": "public" if rng.random() < 0.25 else "members",
                "weekly_quota_hours": 8 if rng.random() < 0.1 else None,
                "published": rng.random() > 0.01,
                "retired": rng.random() < 0.005,
                "is_demo": False,
                "created_at": created,
                "updated_at": created,
            }
        )
        ranges = HOURS[profile]
        for wd, lo, hi in ranges:
            hour_rows.append(
                {
                    "id": len(hour_rows) + 1,
                    "venue_id": vid,
                    "weekday": wd,
                    "start_min": lo,
                    "end_min": hi,
                }
            )
        closed: set[int] = set()
        if rng.random() < 0.02:  # a week's closure (maintenance) somewhere in the year
            d0 = rng.randrange(len(days) - 7)
            closed = set(range(d0, d0 + 7))
            closure_rows.append(
                {
                    "id": len(closure_rows) + 1,
                    "venue_id": vid,
                    "start_at": local_instant(days[d0], 0, tz),
                    "end_at": local_instant(days[d0 + 7], 0, tz),
                    "reason": "设备维护",
                }
            )
        by_day: dict[int, tuple[int, int]] = {wd: (a, b) for wd, a, b in ranges}
        profiles.append(_VenuePlan(vid, unit_id, cap, slot, approval, by_day, closed))
    with engine.begin() as conn:
        _bulk(conn, Venue.__table__, venue_rows)
        _bulk(conn, OpeningHours.__table__, hour_rows)
        _bulk(conn, Closure.__table__, closure_rows)
    seconds["venues"] = time.perf_counter() - t0

    # Bookings: a popularity per venue (long-tailed), then a greedy placement per venue.
    t0 = time.perf_counter()
    weights = nrng.lognormal(0.0, 0.8, len(profiles))
    per_venue = nrng.multinomial(bookings, weights / weights.sum())
    groups_by_unit: dict[int | None, list[int]] = {}
    for g in group_rows:
        groups_by_unit.setdefault(g["unit_id"], []).append(g["id"])
    all_groups = [g["id"] for g in group_rows]
    midnights = [local_instant(d, 0, tz) for d in days]
    booking_rows: list[dict[str, Any]] = []
    alloc_rows: list[dict[str, Any]] = []
    carry = 0  # what a full venue could not take goes to the next one
    for plan, n in zip(profiles, per_venue.tolist(), strict=True):
        placed = _place(
            plan,
            n + carry,
            rng,
            days,
            midnights,
            now,
            groups_by_unit,
            all_groups,
            booking_rows,
            alloc_rows,
        )
        carry = n + carry - placed
    seconds["plan_bookings"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with engine.begin() as conn:
        _bulk(conn, Booking.__table__, booking_rows)
    seconds["insert_bookings"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.begin() as conn:
        _bulk(conn, BookingAllocation.__table__, alloc_rows)
    seconds["insert_allocations"] = time.perf_counter() - t0
    # The statistics' daily aggregates: the triggers logged every booking inserted; one
    # rebuild counts them all (as `mapservice stats rebuild` does), timed on its own.
    t0 = time.perf_counter()
    with Session(engine) as session:
        aggregate_rows = rebuild(session)
        session.commit()
    seconds["aggregates_rebuild"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
            _sync_sequences(conn)
        else:
            conn.execute(text("ANALYZE"))
    seconds["analyze"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    overlaps = count_overlaps(engine)
    seconds["overlap_check"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_all
    engine.dispose()
    ds = Dataset(
        url=url,
        committee_id=committee_id,
        venues=len(venue_rows),
        bookings=len(booking_rows),
        allocations=len(alloc_rows),
        first_day=first_day,
        last_day=last_day,
        now=now,
        admin_id=1,
        booker_ids=booker_ids,
        seconds=seconds,
        overlaps=overlaps,
    )
    if not quiet:
        print(
            f"generate: {ds.venues} venues, {ds.bookings} bookings, {ds.allocations} allocations"
            f" on {engine.dialect.name} in {seconds['total']:.1f} s"
            f" (plan {seconds['plan_bookings']:.1f} s,"
            f" bookings {seconds['insert_bookings']:.1f} s,"
            f" allocations {seconds['insert_allocations']:.1f} s,"
            f" daily aggregates {seconds['aggregates_rebuild']:.1f} s for {aggregate_rows} rows);"
            f" overlapping allocations: {overlaps}",
            flush=True,
        )
    return ds


def _user(
    uid: int,
    committee_id: int,
    username: str,
    role: str,
    unit_id: int | None,
    group_id: int | None,
    pw: str,
    created: datetime,
) -> dict[str, Any]:
    return {
        "id": uid,
        "committee_id": committee_id,
        "username": username,
        "display_name": username,
        "phone": "",
        "email": "",
        "password_hash": pw,
        "role": role,
        "unit_id": unit_id,
        "group_id": group_id,
        "active": True,
        "created_at": created,
        "last_login_at": None,
    }


@dataclass
class _VenuePlan:
    venue_id: int
    unit_id: int
    capacity: int
    slot: int
    approval: bool
    hours: dict[int, tuple[int, int]]  # weekday -> (open, close) minutes
    closed_days: set[int]


def _place(
    plan: _VenuePlan,
    n: int,
    rng: random.Random,
    days: list[date],
    midnights: list[datetime],
    now: datetime,
    groups_by_unit: dict[int | None, list[int]],
    all_groups: list[int],
    booking_rows: list[dict[str, Any]],
    alloc_rows: list[dict[str, Any]],
) -> int:
    """Place up to ``n`` bookings at one venue: a random open day and slot, 1–3 slots long, units
    taken from those free for the whole time. Allocations are appended latest first, so the
    SQLite trigger's range scan (earlier allocations of the venue) stays short."""
    open_days = [
        i for i, d in enumerate(days) if d.weekday() in plan.hours and i not in plan.closed_days
    ]
    if not open_days:
        return 0
    held: dict[int, list[tuple[int, int, int]]] = {}  # day -> (start_min, end_min, unit)
    own = groups_by_unit.get(plan.unit_id, [])
    placed: list[tuple[int, int, int, list[int]]] = []
    slot = plan.slot
    tries = 0
    while len(placed) < n and tries < 10 * n:  # a full venue gives up after 10 tries each
        tries += 1
        di = rng.choice(open_days)
        a, b = plan.hours[days[di].weekday()]
        a = -(-a // slot) * slot  # starts on the venue's slot grid (08:30 opens → 09:00)
        steps = (b - a) // slot
        length = slot * rng.choice((1, 1, 2, 2, 3))
        s = a + slot * rng.randrange(steps)
        e = min(s + length, a + steps * slot)
        units = 1 if plan.capacity == 1 or rng.random() < 0.75 else 2
        busy = {u for (x, y, u) in held.get(di, ()) if x < e and s < y}
        free = [u for u in range(1, plan.capacity + 1) if u not in busy]
        if len(free) >= units:
            placed.append((di, s, e, free[:units]))
            held.setdefault(di, []).extend((s, e, u) for u in free[:units])
    placed.sort(key=lambda p: (p[0], p[1]), reverse=True)
    count = len(placed)
    for di, s, e, numbers in placed:
        start = midnights[di] + timedelta(minutes=s)
        end = midnights[di] + timedelta(minutes=e)
        r = rng.random()
        if end <= now:
            status = "no_show" if r < 0.05 else "cancelled" if r < 0.12 else "completed"
        elif r < 0.08:
            status = "cancelled"
        else:
            status = "pending" if plan.approval and r < 0.4 else "confirmed"
        shared = not own or rng.random() < 0.6
        group = rng.choice(all_groups if shared else own)
        bid = len(booking_rows) + 1
        made = start - timedelta(days=rng.randint(1, 20), minutes=rng.randrange(600))
        booking_rows.append(
            {
                "id": bid,
                "venue_id": plan.venue_id,
                "group_id": group,
                "entered_by_id": None,
                "start_at": start,
                "end_at": end,
                "units": len(numbers),
                "purpose": PURPOSES[bid % len(PURPOSES)],
                "headcount": None,
                "status": status,
                "series_id": None,
                "hold_expires_at": now + timedelta(hours=48) if status == "pending" else None,
                "status_reason": "",
                "decided_by_id": None,
                "decided_at": None,
                "created_at": made,
                "updated_at": made,
            }
        )
        if status != "cancelled":
            for u in numbers:
                alloc_rows.append(
                    {
                        "id": len(alloc_rows) + 1,
                        "booking_id": bid,
                        "venue_id": plan.venue_id,
                        "unit_no": u,
                        "start_at": start,
                        "end_at": end,
                    }
                )
    return count


def _sync_sequences(conn: Connection) -> None:
    """Explicit ids were written: move each serial sequence past them."""
    for table in (
        "committees",
        "areas",
        "units",
        "groups",
        "users",
        "venues",
        "opening_hours",
        "closures",
        "bookings",
        "booking_allocations",
    ):
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                f" COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
        )


def count_overlaps(engine: Engine, venue_ids: Iterable[int] | None = None) -> int:
    """Allocations of one venue unit overlapping the one before them in time (0 when the
    allocations are consistent: sorted by start, any overlap shows between neighbours)."""
    where = ""
    if venue_ids is not None:
        ids = ",".join(str(int(v)) for v in venue_ids) or "0"
        where = f"WHERE venue_id IN ({ids})"
    inner = (
        "SELECT start_at, LAG(end_at) OVER"
        " (PARTITION BY venue_id, unit_no ORDER BY start_at, id) AS prev_end"
        " FROM booking_allocations "
    )
    sql = "SELECT count(*) FROM (" + inner + where + ") t WHERE prev_end > start_at"  # noqa: S608
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def load_dataset(url: str) -> Dataset:
    """Describe a database this module filled earlier (to rerun benchmarks on it)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        venues = conn.execute(text("SELECT count(*) FROM venues")).scalar_one()
        bookings = conn.execute(text("SELECT count(*) FROM bookings")).scalar_one()
        allocations = conn.execute(text("SELECT count(*) FROM booking_allocations")).scalar_one()
        bookers = list(
            conn.execute(text("SELECT id FROM users WHERE role = 'booker' ORDER BY id")).scalars()
        )
        first = conn.execute(select(func.min(Booking.start_at), func.max(Booking.start_at))).one()
    engine.dispose()
    tz = ZoneInfo(TZ_NAME)
    return Dataset(
        url=url,
        committee_id=1,
        venues=venues,
        bookings=bookings,
        allocations=allocations,
        first_day=first[0].astimezone(tz).date(),
        last_day=first[1].astimezone(tz).date(),
        now=datetime.now(UTC),
        admin_id=1,
        booker_ids=bookers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="an empty database (it is migrated first)")
    parser.add_argument("--venues", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    ds = generate(args.url, args.venues, args.bookings, seed=args.seed)
    print(json.dumps(ds.as_dict(), indent=2))


if __name__ == "__main__":
    main()
