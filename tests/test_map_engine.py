"""The map's "free between FROM and TO" is answered by the booking engine: capacity-aware."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.booking import engine
from mapservice.models import Venue
from tests.test_map_data import same_as_geojson

TZ = ZoneInfo("Asia/Shanghai")


def names(client, params):
    """Names shown for ``params`` (the page's columns checked to agree with the GeoJSON)."""
    return sorted(v["n"] for v in same_as_geojson(client, params))


def test_free_filter_counts_bookings_and_units(client, make, wdb):
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit)
    make.venue(unit, name="单片场", capacity_units=1, min_notice_minutes=0)
    make.venue(unit, name="三片场", capacity_units=3, min_notice_minutes=0)
    admin = wdb.merge(make.admin(committee, username="admin"))
    day = (datetime.now(TZ) + timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, 19, tzinfo=TZ)
    window = {"free_from": f"{day.isoformat()}T19:00", "free_to": f"{day.isoformat()}T20:00"}
    assert names(client, window) == ["三片场", "单片场"]
    for venue_name, units in (("单片场", 1), ("三片场", 2)):
        venue = wdb.scalars(select(Venue).where(Venue.name == venue_name)).one()
        engine.book(wdb, admin, venue.id, group.id, start, start + timedelta(hours=1), units=units)
        wdb.commit()
    assert names(client, window) == ["三片场"]  # one of three courts still free
    assert names(client, {**window, "min_units": "2"}) == []  # but not two
    later = {"free_from": f"{day.isoformat()}T20:00", "free_to": f"{day.isoformat()}T21:00"}
    assert names(client, later) == ["三片场", "单片场"]  # back-to-back is free


def test_popup_free_today_comes_from_the_engine(client, make, wdb):
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit)
    venue = make.venue(
        unit, name="单片场", capacity_units=1, hours="Mon-Sun 00:00-24:00", min_notice_minutes=0
    )
    admin = wdb.merge(make.admin(committee, username="admin"))
    now = datetime.now(TZ)
    if now.hour >= 21:
        pytest.skip("too late in the local day to have two future hours to compare")
    first = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    engine.book(wdb, admin, venue.id, group.id, first, first + timedelta(hours=1))
    wdb.commit()
    body = client.get(f"/map/venues/{venue.id}/free-today").get_json()
    assert body["free"][0][0] != f"{first:%H:%M}"  # the booked hour is not offered
    starts = [w[0] for w in body["free"]]
    assert f"{first + timedelta(hours=1):%H:%M}" in starts
    assert client.get("/map/venues/99999/free-today").status_code == 404
