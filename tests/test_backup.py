"""`mapservice backup` / `mapservice restore`: a round trip gives back the same data and the
same figures; a bad backup is refused with a reason and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import MetaData, func, select, text

from mapservice.cli import main
from mapservice.db import Base
from mapservice.models import Booking, BookingAllocation, Venue
from mapservice.operations.seed import seed_demo
from tests.conftest import reload


def run(app, *args):
    return CliRunner().invoke(
        main, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False
    )


def figures(db):
    reload(db)
    return (
        db.scalar(select(func.count(Venue.id))),
        db.scalar(select(func.count(Booking.id))),
        db.scalar(select(func.count(BookingAllocation.id))),
        sorted(
            db.execute(
                select(Booking.status, func.count(Booking.id)).group_by(Booking.status)
            ).all()
        ),
    )


def contents(db) -> dict[str, list[tuple]]:
    """Every row of every table in the database (reflected: the migrations' bookkeeping and
    any table the models do not name included), every column, as stored, in a fixed order."""
    reload(db)
    meta = MetaData()
    meta.reflect(bind=db.connection())
    out = {}
    for table in meta.sorted_tables:
        # Raw values, as stored (no type's conversion in between).
        rows = db.connection().exec_driver_sql(f'SELECT * FROM "{table.name}"').all()
        out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    db.rollback()
    return out


def test_backup_and_restore_round_trip(app, db, tmp_path: Path):
    from datetime import date

    seed_demo(db, today=date(2026, 11, 18))
    db.commit()
    before = figures(db)
    assert before[1] > 1000
    every_row = contents(db)
    assert len(every_row) >= len(Base.metadata.tables)
    empty = sorted(name for name, rows in every_row.items() if not rows)
    backup_file = tmp_path / "backup.dump"
    result = run(app, "backup", "--output", str(backup_file))
    assert result.exit_code == 0, result.output
    assert backup_file.stat().st_size > 10_000
    # Damage: lose every booking.
    db.execute(text("DELETE FROM notifications"))
    db.execute(text("DELETE FROM activity_signups"))
    db.execute(text("DELETE FROM activities"))
    db.execute(text("DELETE FROM booking_allocations"))
    db.execute(text("DELETE FROM bookings"))
    # … and change a field without changing any count (only a full comparison sees it).
    db.execute(
        text(
            "UPDATE venues SET name = name || ' (changed)' WHERE id = (SELECT min(id) FROM venues)"
        )
    )
    db.commit()
    assert figures(db)[1] == 0
    app.extensions["db_engine"].dispose()
    db.close()
    db.get_bind().dispose()
    result = run(app, "restore", str(backup_file))
    assert result.exit_code == 0, result.output
    assert figures(db) == before
    after = contents(db)
    assert sorted(after) == sorted(every_row), "the tables differ"
    for name, rows in every_row.items():
        assert after[name] == rows, f"{name}: its rows differ after the restore"
    print(
        f"backup round trip: {len(every_row)} tables, {sum(map(len, every_row.values()))} rows"
        f" identical (empty in the demo: {', '.join(empty) or 'none'})"
    )


def test_restore_refuses_a_bad_file(app, db, tmp_path: Path, make):
    make.committee(with_streets=False)
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"this is not a backup at all" * 100)
    result = run(app, "restore", str(bad))
    assert result.exit_code == 1 and "restore failed" in result.output
    result = run(app, "restore", str(tmp_path / "missing.dump"))
    assert result.exit_code == 1 and "no such backup" in result.output
    reload(db)
    assert db.scalar(text("SELECT count(*) FROM committees")) == 1


def test_restore_brings_an_older_backup_up_to_date(app, db, db_kind, tmp_path: Path):
    """A SQLite backup made before migration 0008 (instants stored as ISO text) is restored
    and migrated: its instants read back as the same aware datetimes and compare as such."""
    import sqlite3
    from datetime import UTC, datetime

    from mapservice.migrate import upgrade
    from mapservice.models import LoginAttempt

    if db_kind != "sqlite":
        pytest.skip("the instants' storage changed on SQLite only")
    old = tmp_path / "old.db"
    upgrade(f"sqlite:///{old}", "0007")
    with sqlite3.connect(old) as conn:
        conn.executemany(
            "INSERT INTO login_attempts (username, address, at, success) VALUES (?, ?, ?, 0)",
            [
                ("a", "10.0.0.1", "2026-11-30 23:59:59.250000"),
                ("b", "10.0.0.2", "2026-12-01 00:00:00.000000"),
            ],
        )
    conn.close()
    app.extensions["db_engine"].dispose()
    db.close()
    db.get_bind().dispose()
    result = run(app, "restore", str(old))
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    reload(db)
    rows = db.execute(
        select(LoginAttempt.username, LoginAttempt.at).order_by(LoginAttempt.id)
    ).all()
    assert rows == [
        ("a", datetime(2026, 11, 30, 23, 59, 59, 250000, tzinfo=UTC)),
        ("b", datetime(2026, 12, 1, tzinfo=UTC)),
    ]
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert db.scalars(select(LoginAttempt.username).where(LoginAttempt.at >= december)).all() == [
        "b"
    ]
