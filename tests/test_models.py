"""The schema: migrations match the models and run both ways; the database itself refuses
rows that break the rules; instants round-trip with their time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mapservice.db import Base, make_engine
from mapservice.migrate import downgrade, upgrade
from mapservice.models import Booking, Closure, LoginAttempt, User, Venue
from tests.conftest import reload


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def fresh_database(pg_cluster, db_kind, tmp_path, name="mapservice_migrate"):
    """The URL of a new empty database of the kind under test."""
    if db_kind == "postgresql":
        return pg_cluster.create_database(name)
    return f"sqlite:///{tmp_path / 'm.db'}"


def test_migrations_down_and_up(pg_cluster, db_kind, tmp_path):
    url = fresh_database(pg_cluster, db_kind, tmp_path)
    upgrade(url)
    eng = make_engine(url)
    assert "venues" in inspect(eng).get_table_names()
    eng.dispose()
    downgrade(url, "base")
    eng = make_engine(url)
    assert "venues" not in inspect(eng).get_table_names()
    eng.dispose()
    upgrade(url)
    eng = make_engine(url)
    assert {"venues", "bookings", "audit_log", "users", "units"} <= set(
        inspect(eng).get_table_names()
    )
    eng.dispose()


def test_sqlite_instants_migrate_to_integer_microseconds_and_back(db_kind, tmp_path):
    """0008: SQLite's instants, ISO text until 0007, become integer microseconds since the
    epoch and read back as the same instants; downgrading gives the same text again."""
    if db_kind != "sqlite":
        pytest.skip("PostgreSQL keeps timestamp columns; 0008 changes nothing there")
    url = f"sqlite:///{tmp_path / 'instants.db'}"
    upgrade(url)
    when = [
        datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai")),  # 16:00 UTC the day before
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch
    ]
    eng = make_engine(url)
    with Session(eng) as session:
        session.add_all(
            LoginAttempt(username=f"u{i}", address="127.0.0.1", at=at) for i, at in enumerate(when)
        )
        session.commit()
    with eng.connect() as conn:
        stored = conn.exec_driver_sql("SELECT at, typeof(at) FROM login_attempts ORDER BY id").all()
    assert stored == [
        (1_796_203_815_123_456, "integer"),
        (1_772_294_400_000_000, "integer"),
        (-500_000, "integer"),
    ]
    eng.dispose()

    downgrade(url, "0007")
    eng = make_engine(url)
    with eng.connect() as conn:
        texts = conn.exec_driver_sql("SELECT at FROM login_attempts ORDER BY id").scalars().all()
    eng.dispose()
    assert texts == [
        "2026-12-02 09:30:15.123456",
        "2026-02-28 16:00:00.000000",
        "1969-12-31 23:59:59.500000",
    ]

    upgrade(url)
    eng = make_engine(url)
    with Session(eng) as session:
        back = session.scalars(select(LoginAttempt.at).order_by(LoginAttempt.id)).all()
        # Compared as numbers: the instant of the second row, not the text, is the earlier.
        earlier = session.scalars(
            select(LoginAttempt.username).where(LoginAttempt.at < when[0])
        ).all()
    eng.dispose()
    assert back == when and all(b.tzinfo is not None for b in back)
    assert sorted(earlier) == ["u1", "u2"]


def test_sqlite_instant_left_as_text_is_refused_with_the_command_that_fixes_it(db_kind, tmp_path):
    """An instant still stored as text (a database not yet migrated to 0008) is not read as
    some other instant: reading it fails and names `mapservice db upgrade`."""
    if db_kind != "sqlite":
        pytest.skip("the instants' storage changed on SQLite only")
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    upgrade(url)
    eng = make_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO login_attempts (username, address, at, success)"
            " VALUES ('u', '127.0.0.1', '2026-12-02 09:30:15.000000', 0)"
        )
    with Session(eng) as session, pytest.raises(TypeError, match="mapservice db upgrade"):
        session.scalars(select(LoginAttempt.at)).all()
    eng.dispose()


@pytest.mark.parametrize(
    "field, value",
    [
        ("capacity_units", 0),
        ("capacity_units", 101),
        ("slot_minutes", 45),
        ("type", "casino"),
        ("max_headcount", 0),
        ("bookable_by", "anyone"),
    ],
)
def test_database_refuses_bad_venue_values(db, make, field, value):
    committee = make.committee(with_streets=False)
    venue = make.venue(make.unit(committee))
    setattr(venue, field, value)
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_user_role_must_match_its_scope(db, make):
    committee = make.committee(with_streets=False)
    db.add(
        User(committee_id=committee.id, username="x-sec", password_hash="h", role="unit_secretary")
    )
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_booking_must_end_after_start_and_keeps_its_instant(db, make):
    committee = make.committee(with_streets=False)
    unit = make.unit(committee)
    group = make.group(committee, unit)
    venue = make.venue(unit)
    start = datetime(2026, 12, 1, 19, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    db.add(
        Booking(
            venue_id=venue.id, group_id=group.id, start_at=start, end_at=start + timedelta(hours=1)
        )
    )
    db.commit()
    reload(db)
    stored = db.scalars(select(Booking)).one()
    assert stored.start_at == start and stored.start_at.tzinfo is not None
    assert stored.start_at.astimezone(UTC).hour == 11
    db.add(Booking(venue_id=venue.id, group_id=group.id, start_at=start, end_at=start))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_naive_datetimes_are_refused(db, make):
    committee = make.committee(with_streets=False)
    venue = make.venue(make.unit(committee))
    db.add(Closure(venue_id=venue.id, start_at=datetime(2026, 12, 1), end_at=datetime(2026, 12, 2)))
    with pytest.raises(Exception, match="naive"):
        db.commit()
    db.rollback()


def test_venue_unit_and_name_unique(db, make):
    committee = make.committee(with_streets=False)
    unit = make.unit(committee)
    first = make.venue(unit, name="羽毛球馆")
    db.add(
        Venue(
            committee_id=committee.id,
            unit_id=unit.id,
            name="羽毛球馆",
            type="gym",
            lon=first.lon,
            lat=first.lat,
            entered_lon=first.lon,
            entered_lat=first.lat,
        )
    )
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_migration_0010_keeps_the_data_and_refuses_rows_outside(
    pg_cluster, db_kind, tmp_path, runzhou_areas
):
    """0010 on a database with venues: their hours, closures and triggers survive (SQLite
    edits the stored definition in place instead of rebuilding the table); a row outside
    the new ranges stops the upgrade, naming it; down and up again both work."""
    from sqlalchemy import text

    from mapservice.models import OpeningHours
    from tests.conftest import Factory

    url = fresh_database(pg_cluster, db_kind, tmp_path, "mapservice_0010")
    upgrade(url)
    eng = make_engine(url)
    with Session(eng) as session:
        make = Factory(session, runzhou_areas)
        venue = make.venue(make.unit(make.committee(with_streets=False)), max_headcount=50)
        venue_id = venue.id
    eng.dispose()
    downgrade(url, "0009")
    eng = make_engine(url)
    with eng.begin() as conn:  # allowed before 0010
        conn.execute(
            text("UPDATE venues SET max_headcount = 20000 WHERE id = :id"), {"id": venue_id}
        )
    eng.dispose()
    with pytest.raises(RuntimeError, match=rf"venues \[{venue_id}\] break ck_venues_max_headcount"):
        upgrade(url)
    eng = make_engine(url)
    with eng.begin() as conn:
        conn.execute(
            text("UPDATE venues SET max_headcount = 10000 WHERE id = :id"), {"id": venue_id}
        )
    eng.dispose()
    upgrade(url)
    eng = make_engine(url)
    with Session(eng) as session:
        assert session.scalars(select(OpeningHours).where(OpeningHours.venue_id == venue_id)).all()
        v = session.get(Venue, venue_id)
        assert v is not None and v.max_headcount == 10000
        version = v.rules_version
        v.max_headcount = 10001
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        v = session.get(Venue, venue_id)
        assert v is not None
        v.max_headcount = 9999
        session.commit()
        assert v.rules_version > version  # the venue's trigger is still there
    eng.dispose()
