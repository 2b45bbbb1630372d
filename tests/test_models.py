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

from mapservice.db import Base, make_engine
from mapservice.migrate import downgrade, upgrade
from mapservice.models import Booking, Closure, User, Venue
from tests.conftest import reload


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_migrations_down_and_up(pg_cluster, db_kind, tmp_path):
    url = (
        pg_cluster.create_database("mapservice_migrate")
        if db_kind == "postgresql"
        else f"sqlite:///{tmp_path / 'm.db'}"
    )
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
