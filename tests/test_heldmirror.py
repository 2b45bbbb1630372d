"""The mirror of live allocations each process keeps for the venue search
(:mod:`mapservice.booking.heldmirror`): it answers as the database does, a write is seen by
the next search of the process that committed it, a commit elsewhere reaches it (PostgreSQL:
by notification; SQLite: read in the searching transaction), a lost listener leaves the
searches to the database until everything is read again, and without its triggers it would
go stale (the check can fail)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from mapservice.booking import availability, heldmirror
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, BookingAllocation, Venue
from mapservice.operations.venue_search import FreeWindow, VenueFilter, find
from tests.test_booking_search import soon

POINT = (119.4253, 32.1975)


@pytest.fixture
def city(make: Any, db: Any) -> dict[str, Any]:
    """A unit with its group and two venues near :data:`POINT`: a court of one unit and a
    hall of two."""
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit, "移动团支部")
    base = {"hours": "Mon-Sun 06:00-23:00", "min_notice_minutes": 0, "lat": POINT[1]}
    court = make.venue(unit, name="羽毛球馆", capacity_units=1, lon=POINT[0] + 0.001, **base)
    hall = make.venue(unit, name="体育馆", capacity_units=2, lon=POINT[0] + 0.002, **base)
    db.commit()
    return {"unit": unit, "group": group.id, "court": court.id, "hall": hall.id}


def allocate(wdb: Any, venue: int, group: int, start: datetime, end: datetime, **kw: Any) -> int:
    """A booking of the venue ``venue`` holding unit ``unit_no`` (1) over [start, end),
    committed. Ids, not objects: an object expired by a rollback would be read again in a
    new transaction of its session, whose SQLite snapshot would then predate this commit."""
    unit_no = kw.pop("unit_no", 1)
    booking = Booking(
        venue_id=venue,
        group_id=group,
        start_at=start,
        end_at=end,
        status=kw.pop("status", BookingStatus.CONFIRMED.value),
        **kw,
    )
    wdb.add(booking)
    wdb.flush()
    wdb.add(
        BookingAllocation(
            booking_id=booking.id, venue_id=venue, unit_no=unit_no, start_at=start, end_at=end
        )
    )
    wdb.commit()
    return booking.id


def random_world(city: dict[str, Any], make: Any, db: Any, wdb: Any) -> list[Any]:
    """Sixteen venues of 1–3 units and random allocations over the next days: every status,
    holds expired, running or none, some longer than a day."""
    rnd = random.Random(37)
    for i in range(14):
        make.venue(
            city["unit"],
            name=f"馆{i}",
            capacity_units=rnd.choice((1, 2, 3)),
            hours="Mon-Sun 06:00-23:00",
            lon=POINT[0] + rnd.uniform(-0.01, 0.01),
            lat=POINT[1] + rnd.uniform(-0.01, 0.01),
        )
    db.commit()
    venues = [(v.id, v.capacity_units) for v in db.scalars(select(Venue).order_by(Venue.id))]
    db.rollback()
    now = datetime.now(UTC)
    day = soon(3, 0)
    for vid, capacity in venues:
        for _ in range(rnd.randrange(0, 9)):
            long = rnd.random() < 0.1
            s = day + timedelta(hours=rnd.randrange(-30 if long else 6, 23))
            e = s + (timedelta(days=2) if long else timedelta(minutes=rnd.choice((30, 60, 120))))
            try:
                allocate(
                    wdb,
                    vid,
                    city["group"],
                    s,
                    e,
                    unit_no=rnd.randrange(1, capacity + 1),
                    status=rnd.choice(list(BookingStatus)).value,
                    hold_expires_at=rnd.choice(
                        (None, now - timedelta(minutes=5), now + timedelta(minutes=5))
                    ),
                )
            except Exception:  # noqa: BLE001 — the unit already held then: the guard refuses
                wdb.rollback()
    return [vid for vid, _c in venues]


def from_database(db: Any, ids: list[int], start: datetime, end: datetime, now: datetime) -> Any:
    held = availability.held_units(db, ids, start, end, now)
    db.rollback()
    return held


def mirrored(db: Any, ids: list[int], start: datetime, end: datetime, now: datetime) -> Any:
    got = heldmirror.units(db, ids, start, end, now)
    db.rollback()
    return got


def test_the_mirror_answers_as_the_database_does(city, make, db, wdb, engine):
    """Over random windows of the next days at random venues, the mirror's units held (and
    the catalogue's token) equal the database's; every answer came from the mirror."""
    venues = random_world(city, make, db, wdb)
    now = datetime.now(UTC)
    assert heldmirror.wait_ready(engine)
    rnd = random.Random(7)
    day = soon(3, 0)
    held_any = 0
    for _ in range(80):
        start = day + timedelta(hours=rnd.randrange(-20, 30), minutes=rnd.choice((0, 30)))
        end = start + timedelta(minutes=rnd.choice((30, 60, 120, 300)))
        ids = sorted(rnd.sample(venues, rnd.randrange(1, len(venues) + 1)))
        got = mirrored(db, ids, start, end, now)
        assert got is not None, "the mirror left a search to the database"
        assert got == from_database(db, ids, start, end, now), (start, end, ids)
        held_any += bool(got[0])
    assert held_any > 20


def test_a_write_is_seen_by_the_next_search_of_its_process(city, db, wdb, engine, client):
    """A booking committed in this process is in the very next search's answer (the mirror
    waits for its notification, or the search reads the database), and the mirror answers
    again once it has it."""
    court, group = city["court"], city["group"]
    now = datetime.now(UTC)
    assert heldmirror.wait_ready(engine)
    for i in range(12):
        start = soon(4, 8) + timedelta(hours=i)
        end = start + timedelta(hours=1)
        assert heldmirror.wait_ready(engine)
        before = heldmirror.counts["answered"]
        flt = VenueFilter(types=["badminton"], near=POINT, radius_km=3)
        found = [f.id for f in find(db, None, flt, FreeWindow(start, end, 1), now)]
        db.rollback()
        assert court in found and heldmirror.counts["answered"] > before
        allocate(wdb, court, group, start, end)
        found = [f.id for f in find(db, None, flt, FreeWindow(start, end, 1), now)]
        db.rollback()
        assert court not in found, f"booking {i} not seen by the next search"
        got = mirrored(db, [court], start, end, now)
        assert got is None or got[0] == {court: {1}}
    assert heldmirror.wait_ready(engine)
    got = mirrored(db, [court], soon(4, 8), soon(4, 20), now)
    assert got is not None and got[0] == {court: {1}}


def test_a_transaction_that_has_written_reads_the_database(city, db, engine):
    """A search in a transaction that has written is answered by the database (the mirror
    holds committed allocations only), and sees that transaction's own allocation."""
    court, group = city["court"], city["group"]
    now = datetime.now(UTC)
    start, end = soon(5, 10), soon(5, 11)
    assert heldmirror.wait_ready(engine)
    booking = Booking(venue_id=court, group_id=group, start_at=start, end_at=end)
    db.add(booking)
    db.flush()
    db.add(
        BookingAllocation(
            booking_id=booking.id, venue_id=court, unit_no=1, start_at=start, end_at=end
        )
    )
    db.flush()
    assert heldmirror.units(db, [court], start, end, now) is None
    assert availability.held_units(db, [court], start, end, now)[0] == {court: {1}}
    db.rollback()


def test_a_window_beyond_the_horizon_reads_the_database(city, db, engine):
    now = datetime.now(UTC)
    assert heldmirror.wait_ready(engine)
    far = now + timedelta(days=heldmirror.HORIZON_DAYS + 3)
    assert mirrored(db, [city["court"]], now, now + timedelta(hours=1), now) is not None
    assert mirrored(db, [city["court"]], far, far + timedelta(hours=1), now) is None


WRITER = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
for statement in sys.argv[2].split(";"):
    conn.execute(statement)
"""


def elsewhere(database_url: str, sql: str) -> None:
    """``sql`` run by another process (its commit counted by no write of ours)."""
    if database_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        conn.executescript(f"BEGIN; {sql}; COMMIT")
        conn.close()
        return
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run([sys.executable, "-c", WRITER, url, sql], check=True, timeout=60)


def until(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_commit_in_another_process_reaches_the_mirror(city, db, wdb, engine, database_url):
    """Another process removes an allocation and moves another: SQLite's next search reads
    the changes in its own transaction; PostgreSQL's mirror has them once the notification
    arrives (and a search meeting the venue meanwhile reads the database)."""
    court, hall, group = city["court"], city["hall"], city["group"]
    now = datetime.now(UTC)
    start, end = soon(6, 9), soon(6, 10)
    allocate(wdb, court, group, start, end)
    allocate(wdb, hall, group, start, end, unit_no=2)
    assert heldmirror.wait_ready(engine)
    ids = [court, hall]
    assert mirrored(db, ids, start, end, now)[0] == {court: {1}, hall: {2}}
    elsewhere(
        database_url,
        f"DELETE FROM booking_allocations WHERE venue_id = {court};"
        f" UPDATE booking_allocations SET unit_no = 1 WHERE venue_id = {hall}",
    )
    if engine.dialect.name == "sqlite":
        assert mirrored(db, ids, start, end, now)[0] == {hall: {1}}
    else:
        assert until(lambda: (mirrored(db, ids, start, end, now) or [None])[0] == {hall: {1}})
    assert from_database(db, ids, start, end, now)[0] == {hall: {1}}


def test_without_its_triggers_the_mirror_goes_stale(city, db, wdb, engine, database_url):
    """The negative control: with the allocations' insert trigger dropped, an allocation
    written by another process never reaches the mirror, and the agreement with the database
    (the check of the tests above) fails; the trigger back, the next change reaches it."""
    import importlib

    migration = importlib.import_module("migrations.versions.0027_held_mirror")
    court = city["court"]
    now = datetime.now(UTC)
    start, end = soon(6, 14), soon(6, 15)
    assert heldmirror.wait_ready(engine)
    assert mirrored(db, [court], start, end, now)[0] == {}
    name = "tr_booking_allocations_held_insert"
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(text(f"DROP TRIGGER {name}" + (" ON booking_allocations" if pg else "")))
    try:
        booking_id = allocate(wdb, court, city["group"], start, end)  # counted: wait for it
        assert heldmirror.wait_ready(engine)
        time.sleep(0.2)
        assert from_database(db, [court], start, end, now)[0] == {court: {1}}
        assert mirrored(db, [court], start, end, now)[0] == {}, "stale, as it should be"
    finally:
        with engine.begin() as conn:
            if pg:
                conn.execute(
                    text(
                        f"CREATE TRIGGER {name} AFTER INSERT ON booking_allocations"
                        " REFERENCING NEW TABLE AS changed"
                        " FOR EACH STATEMENT EXECUTE FUNCTION held_notify_rows()"
                    )
                )
            else:
                conn.execute(text(f"CREATE TRIGGER {name} {migration.SQLITE_TRIGGERS[name]}"))
    # The trigger back: the next change of that venue (its booking made pending, without a
    # hold: still live) brings the mirror level with the database again.
    elsewhere(
        database_url,
        f"UPDATE bookings SET status = 'pending', hold_expires_at = NULL WHERE id = {booking_id}",
    )
    level = {court: {1}}
    assert until(lambda: (mirrored(db, [court], start, end, now) or [None])[0] == level)
    assert from_database(db, [court], start, end, now)[0] == level


def test_a_lost_listener_leaves_searches_to_the_database_then_reads_all_again(
    city, db, wdb, engine, database_url, db_kind
):
    """PostgreSQL: the listening connection killed, searches read the database; a change
    made while it was down is in the mirror once it has connected and read all again."""
    if db_kind != "postgresql":
        pytest.skip("SQLite's mirror has no listener: it is read in the searching transaction")
    court, group = city["court"], city["group"]
    now = datetime.now(UTC)
    start, end = soon(7, 9), soon(7, 10)
    allocate(wdb, court, group, start, end)
    assert heldmirror.wait_ready(engine)
    assert mirrored(db, [court], start, end, now)[0] == {court: {1}}
    with engine.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": heldmirror.APPLICATION_NAME},
        ).scalar_one()
    assert killed == 1
    elsewhere(database_url, f"DELETE FROM booking_allocations WHERE venue_id = {court}")
    # Meanwhile never the allocation removed: the database's answer, or the mirror read again.
    seen = set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        got = mirrored(db, [court], start, end, now)
        assert got is None or got[0] == {}, got
        seen.add(got is None)
    assert heldmirror.wait_ready(engine, 20)
    assert mirrored(db, [court], start, end, now)[0] == {}
    with engine.begin() as conn:
        listening = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": heldmirror.APPLICATION_NAME},
        ).scalar_one()
    assert listening == 1  # connected again


def this_mirror(engine: Any) -> Any:
    """This process's mirror of ``engine``'s database (read once a search has asked it)."""
    from mapservice.booking.catalogue import engine_key

    return heldmirror._MIRRORS[engine_key(engine)]


def test_a_mirror_a_week_old_is_read_again_whole(city, db, wdb, engine):
    """Its horizon moves with the days: a mirror read more than :data:`heldmirror.REFRESH`
    ago is read again whole (a new reading, dated now) and answers as the database does;
    one younger is kept as it is, search after search."""
    court, group = city["court"], city["group"]
    now = datetime.now(UTC)
    start, end = soon(8, 9), soon(8, 10)
    allocate(wdb, court, group, start, end)
    assert heldmirror.wait_ready(engine)
    assert mirrored(db, [court], start, end, now)[0] == {court: {1}}
    mirror = this_mirror(engine)
    first = mirror.held
    for _ in range(3):
        assert mirrored(db, [court], start, end, now)[0] == {court: {1}}
    assert mirror.held is first, "a young mirror was read again"
    first.read_at -= heldmirror.REFRESH + timedelta(hours=1)
    if engine.dialect.name == "postgresql":
        mirror._wake()  # the listener checks the age whenever it wakes
        assert until(lambda: mirror.held is not first)
        assert heldmirror.wait_ready(engine)
    got = mirrored(db, [court], start, end, now)
    assert mirror.held is not first
    assert datetime.now(UTC) - mirror.held.read_at < timedelta(minutes=5)
    assert got is not None and got[0] == from_database(db, [court], start, end, now)[0]
    assert got[0] == {court: {1}}


def test_changes_in_a_burst_are_read_again_at_most_every_50_ms(
    city, db, wdb, engine, database_url, db_kind
):
    """PostgreSQL: another process changes a venue's allocations 30 times over about half
    a second; the listener reads the venue again at most every
    :data:`heldmirror.REREAD_EVERY` (one reading for several changes), and ends level with
    the database."""
    if db_kind != "postgresql":
        pytest.skip("SQLite's mirror reads what changed in the searching transaction")
    hall, group = city["hall"], city["group"]
    now = datetime.now(UTC)
    start, end = soon(8, 14), soon(8, 15)
    allocate(wdb, hall, group, start, end)
    assert heldmirror.wait_ready(engine)
    assert mirrored(db, [hall], start, end, now)[0] == {hall: {1}}
    mirror = this_mirror(engine)
    reads: list[tuple[float, list[int]]] = []
    read = mirror._read

    def counted(conn: Any, venues: list[int]) -> None:
        reads.append((time.monotonic(), list(venues)))
        read(conn, venues)

    mirror._read = counted  # the listener's own reading, timed (it still reads)
    try:
        statements = [
            f"UPDATE booking_allocations SET unit_no = {1 if i % 2 == 0 else 2}"
            f" WHERE venue_id = {hall}; SELECT pg_sleep(0.015)"
            for i in range(30)
        ]
        elsewhere(database_url, ";".join(statements))  # 30 commits: unit 2 at the end
        level = {hall: {2}}
        assert until(lambda: (mirrored(db, [hall], start, end, now) or [None])[0] == level)
    finally:
        del mirror._read
    assert from_database(db, [hall], start, end, now)[0] == level
    times = [t for t, venues in reads if hall in venues]
    assert 2 <= len(times) < 30, times
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= heldmirror.REREAD_EVERY, gaps


def test_turned_off_every_search_reads_the_database(city, db, wdb, engine, monkeypatch):
    """``MAPSERVICE_HELD_MIRROR=0`` (a pooler by transaction) turns the mirror off in the
    process: every search then reads the database, and answers as before."""
    env = {"MAPSERVICE_HELD_MIRROR": "0", "PATH": "/usr/bin:/bin"}
    probe = "from mapservice.booking import heldmirror; print(heldmirror.enabled)"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    env["MAPSERVICE_HELD_MIRROR"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"

    court, group = city["court"], city["group"]
    now = datetime.now(UTC)
    start, end = soon(9, 9), soon(9, 10)
    flt = VenueFilter(types=["badminton"], near=POINT, radius_km=3)
    monkeypatch.setattr(heldmirror, "enabled", False)
    answered, database = heldmirror.counts["answered"], heldmirror.counts["database"]
    assert court in [f.id for f in find(db, None, flt, FreeWindow(start, end, 1), now)]
    db.rollback()
    allocate(wdb, court, group, start, end)
    assert court not in [f.id for f in find(db, None, flt, FreeWindow(start, end, 1), now)]
    db.rollback()
    # Each search asked at least once (twice when the venues kept were read again first).
    assert heldmirror.counts["answered"] == answered
    assert heldmirror.counts["database"] >= database + 2
