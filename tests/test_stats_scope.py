"""What the figures count: only the venues the public map shows (a unit not admitted counts in
no figure), and only what has happened (the API's /stats/utilization cuts its range at now)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mapservice.models import Booking
from mapservice.operations.tokens import create_token
from mapservice.operations.utilization import utilization_table
from mapservice.stats.frames import Scope
from mapservice.stats.periods import period_for
from mapservice.stats.report import build_report, coverage_for, coverage_points

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=TZ)


def _book(db: Any, venue: Any, group: Any, start: datetime, hours: int, status: str) -> None:
    db.add(
        Booking(
            venue_id=venue.id,
            group_id=group.id,
            start_at=start,
            end_at=start + timedelta(hours=hours),
            units=1,
            status=status,
            created_at=start - timedelta(days=3),
        )
    )


@pytest.mark.parametrize("unit_status", ["applied", "suspended"])
def test_a_venue_of_a_unit_not_admitted_counts_in_no_figure(db, make, unit_status):
    """A court of an admitted unit half used by another unit's group; a court of a unit whose
    application is pending (or was refused: suspended) fully booked, also by another unit's
    group. The figures are those of the admitted court alone, before and after."""
    committee = make.committee()
    owner = make.unit(committee, "业主单位")
    guest = make.group(committee, make.unit(committee, "兄弟单位"))
    court = make.venue(owner, name="球场", type="badminton", hours="Mon-Sun 08:00-20:00")
    outsider = make.unit(committee, "申请单位")  # admitted while its venue is entered
    hidden = make.venue(
        outsider, name="申请单位球场", type="badminton", hours="Mon-Sun 08:00-20:00"
    )
    for day in (2, 3):
        _book(db, court, guest, at(day, 8), 6, "completed")
    db.commit()
    period = period_for("custom", date(2026, 3, 2), TZ, last_day=date(2026, 3, 3))
    outsider.status = unit_status
    db.commit()
    before = build_report(db, Scope(committee.id), period)
    for day in (2, 3):
        _book(db, hidden, guest, at(day, 8), 12, "completed")
        _book(db, hidden, guest, at(day, 20) - timedelta(hours=1), 1, "cancelled")
    db.commit()
    after = build_report(db, Scope(committee.id), period)
    for report in (before, after):
        assert list(report.venues["venue_id"]) == [court.id]
        assert report.totals["venues"] == 1
        assert report.totals["open_cap_hours"] == pytest.approx(24)
        assert report.totals["booked_cap_hours"] == pytest.approx(12)
        assert report.totals["utilization"] == pytest.approx(0.5)
        assert report.totals["sharing_rate"] == pytest.approx(1.0)
        assert report.totals["bookings"] == 2 and report.totals["cancelled"] == 0
        assert report.heat.to_numpy().sum() == pytest.approx(12)
        assert list(report.by_type["venues"]) == [1]
        assert report.sharing["shared_cap_hours"].sum() == pytest.approx(12)
    # the unit's own secretary sees none of it either
    mine = build_report(db, Scope(committee.id, outsider.id), period)
    assert mine.venues.empty and mine.totals["booked_cap_hours"] == 0
    # coverage counts public venues only: the hidden court is no youth home of the map
    hidden.type = "youth_home"
    db.commit()
    assert coverage_points(db, Scope(committee.id), "youth_home") == []
    assert all(
        s.venues == 0 for s in coverage_for(db, Scope(committee.id), "youth_home", 1e3).streets
    )
    # admitted: it counts (the filter is the admission, not the venue)
    outsider.status = "active"
    db.commit()
    admitted = build_report(db, Scope(committee.id), period)
    assert sorted(admitted.venues["venue_id"]) == sorted([court.id, hidden.id])
    assert admitted.totals["booked_cap_hours"] == pytest.approx(12 + 24)


def test_api_utilization_counts_no_booking_still_to_come(db, make, client):
    """Yesterday 10-12 and tomorrow 10-14, both confirmed, at a court open 08:00-22:00: asked
    for yesterday..tomorrow the API counts yesterday's 2 hours of its 14 open, and today's
    open hours up to now; asked for tomorrow alone, nothing. The core does the same when told
    the time."""
    committee = make.committee()
    owner = make.unit(committee, "业主单位")
    guest = make.group(committee, make.unit(committee, "兄弟单位"))
    court = make.venue(owner, name="球场", capacity_units=1, hours="Mon-Sun 08:00-22:00")
    admin = make.admin(committee, username="admin")
    _t, secret = create_token(db, None, admin, ["read"])
    today = datetime.now(TZ).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    _book(db, court, guest, datetime(*yesterday.timetuple()[:3], 10, tzinfo=TZ), 2, "confirmed")
    _book(db, court, guest, datetime(*tomorrow.timetuple()[:3], 10, tzinfo=TZ), 4, "confirmed")
    db.commit()
    headers = {"Authorization": f"Bearer {secret}"}

    def ask(first: date, last: date) -> dict[str, Any]:
        q = {"from": first.isoformat(), "to": last.isoformat(), "group_by": "venue"}
        resp = client.get("/api/v1/stats/utilization", query_string=q, headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()["total"]

    span = ask(yesterday, tomorrow)
    assert span["booked_cap_hours"] == 2.0  # tomorrow's 4 hours are not use yet
    now = datetime.now(TZ)
    open_today = min(
        max(0.0, (now - now.replace(hour=8, minute=0, second=0)).total_seconds()), 14 * 3600
    )
    assert span["open_cap_hours"] == pytest.approx(14 + open_today / 3600, abs=0.02)
    assert span["utilization"] == pytest.approx(2 / (14 + open_today / 3600), abs=1e-3)
    future = ask(tomorrow, tomorrow)
    assert future["booked_cap_hours"] == 0.0 and future["open_cap_hours"] == 0.0
    assert future["utilization"] == 0.0
    # the core, told the time: at the end of tomorrow all six hours are use
    later = datetime(*tomorrow.timetuple()[:3], 23, tzinfo=TZ)
    table = utilization_table(db, admin, yesterday, tomorrow, now=later)
    assert table.total["booked_cap_hours"] == 6.0
    assert table.total["open_cap_hours"] == 42.0
    early = utilization_table(db, admin, yesterday, tomorrow, now=later - timedelta(days=3))
    assert early.total["booked_cap_hours"] == 0.0  # 23:00 the day before yesterday
    assert early.period.not_started
    assert later.astimezone(UTC) > datetime.now(UTC)
