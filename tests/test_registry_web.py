"""The venue and unit registry through real HTTP: who may do what, and that a refused request
changes nothing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from mapservice.core.coords import gcj02_to_wgs84, wgs84_to_gcj02
from mapservice.models import Area, AuditEntry, Unit, Venue
from tests.conftest import RUNZHOU_POINT, login, reload


@pytest.fixture
def world(make: Any) -> dict[str, Any]:
    committee = make.committee()
    other = make.committee(slug="other", with_streets=False)
    unit_a, unit_b = make.unit(committee, "单位甲"), make.unit(committee, "单位乙")
    group = make.group(committee, unit_b, "乙团支部")
    w = {
        "committee": committee,
        "unit_a": unit_a,
        "unit_b": unit_b,
        "admin": make.admin(committee, username="admin"),
        "other_admin": make.admin(other, username="other-admin"),
        "sec_a": make.secretary(unit_a, username="sec-a"),
        "sec_b": make.secretary(unit_b, username="sec-b"),
        "booker": make.booker(group, username="booker"),
    }
    w["venue_a"] = make.venue(unit_a, name="甲羽毛球馆", capacity_units=3)
    w["venue_b"] = make.venue(
        unit_b, name="乙会议室", type="meeting_room", slot_minutes=30, min_duration_minutes=30
    )
    w["hidden_a"] = make.venue(unit_a, name="甲内部活动室", published=False)
    return w


def form_data(**kw: Any) -> dict[str, Any]:
    data = {
        "name": "新场地",
        "unit": "单位甲",
        "type": "table_tennis",
        "crs": "wgs84",
        "lon": str(RUNZHOU_POINT[0]),
        "lat": str(RUNZHOU_POINT[1]),
        "address": "解放路1号",
        "capacity_units": "2",
        "max_headcount": "8",
        "facilities": "球台2张",
        "phone": "0511-88880000",
        "hours_0": "09:00-12:00, 14:00-21:00",
        "hours_5": "08:00-20:00",
        "slot_minutes": "60",
        "min_duration_minutes": "60",
        "max_duration_minutes": "180",
        "max_days_ahead": "30",
        "min_notice_minutes": "60",
        "hold_hours": "48",
        "cancel_cutoff_minutes": "120",
        "bookable_by": "members",
        "published": "y",
    }
    data.update({k: v for k, v in kw.items() if v is not None})
    return {k: v for k, v in data.items() if v != "<drop>"}


def venue_count(db: Any) -> int:
    return int(db.scalar(select(func.count(Venue.id))))


def test_secretary_registers_a_venue_of_its_unit(client, db, world):
    login(client, "sec-a")
    resp = client.post("/venues/new", data=form_data())
    assert resp.status_code == 302
    venue = db.scalars(select(Venue).where(Venue.name == "新场地")).one()
    assert venue.unit_id == world["unit_a"].id
    assert venue.hours_text == "Mon 09:00-12:00,14:00-21:00; Sat 08:00-20:00"
    assert venue.street is not None and venue.street.name == "和平路街道"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "新场地" in page and "和平路街道" in page and "tel:0511-88880000" in page
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "venue.create", AuditEntry.object_id == venue.id
        )
    ).one()
    assert entry.actor_name == "sec-a" and entry.object_id == venue.id


def test_secretary_cannot_register_for_another_unit(client, db, world):
    login(client, "sec-a")
    before = venue_count(db)
    resp = client.post("/venues/new", data=form_data(unit="单位乙"))
    assert resp.status_code == 422
    assert venue_count(db) == before


@pytest.mark.parametrize("who", ["sec-b", "booker", "other-admin"])
def test_others_cannot_edit_a_units_venue(client, db, world, who):
    venue = world["venue_a"]
    login(client, who)
    # A published venue is public: another committee's admin sees it too (issue 16), and may
    # no more change it than the others.
    expected = 403
    assert client.get(f"/venues/{venue.id}/edit").status_code == expected
    resp = client.post(f"/venues/{venue.id}/edit", data=form_data(name="被改了", unit="单位甲"))
    assert resp.status_code == expected
    assert client.post(f"/venues/{venue.id}/retire", data={"retired": "1"}).status_code == expected
    assert (
        client.post(
            f"/venues/{venue.id}/closures",
            data={"start_at": "2026-12-01T08:00", "end_at": "2026-12-02T08:00"},
        ).status_code
        == expected
    )
    reload(db)
    fresh = db.get(Venue, venue.id)
    assert fresh.name == "甲羽毛球馆" and not fresh.retired and fresh.closures == []


def test_anonymous_is_sent_to_log_in_and_changes_nothing(client, db, world):
    venue = world["venue_a"]
    resp = client.post(f"/venues/{venue.id}/edit", data=form_data(name="匿名改"))
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert client.get("/venues/new").status_code == 302
    assert client.post("/import/venues").status_code == 302
    reload(db)
    assert db.get(Venue, venue.id).name == "甲羽毛球馆"


@pytest.mark.parametrize("who", ["sec-a", "admin"])
def test_owner_and_admin_may_edit_retire_and_close(client, db, world, who):
    venue = world["venue_a"]
    login(client, who)
    resp = client.post(
        f"/venues/{venue.id}/edit",
        data=form_data(name="甲羽毛球馆（新）", unit="单位甲", capacity_units="4"),
    )
    assert resp.status_code == 302
    year = date.today().year + 1  # a closure ahead, whatever year the suite runs in
    resp = client.post(
        f"/venues/{venue.id}/closures",
        data={
            "start_at": f"{year - 1}-12-31T00:00",
            "end_at": f"{year}-01-02T00:00",
            "reason": "元旦",
        },
    )
    assert resp.status_code == 302
    assert client.post(f"/venues/{venue.id}/retire", data={"retired": "1"}).status_code == 302
    reload(db)
    fresh = db.get(Venue, venue.id)
    assert (fresh.name, fresh.capacity_units, fresh.retired) == ("甲羽毛球馆（新）", 4, True)
    assert [c.reason for c in fresh.closures] == ["元旦"]
    assert (
        fresh.closures[0].start_at.isoformat() == f"{year - 1}-12-30T16:00:00+00:00"
    )  # 00:00 in Shanghai
    update = db.scalars(select(AuditEntry).where(AuditEntry.action == "venue.update")).one()
    assert update.changed()["capacity_units"] == [3, 4]


def test_booker_cannot_register(client, db, world):
    login(client, "booker")
    assert client.get("/venues/new").status_code == 403
    assert client.post("/venues/new", data=form_data()).status_code == 403


def test_visibility_of_unpublished_venues(client, world):
    hidden = world["hidden_a"]
    assert client.get(f"/venues/{hidden.id}").status_code == 404
    assert "甲内部活动室" not in client.get("/venues/").get_data(as_text=True)
    login(client, "booker")
    assert client.get(f"/venues/{hidden.id}").status_code == 404
    client.post("/logout")
    # Those who run it see it (issue 17): its unit's secretary, not another unit's.
    login(client, "sec-b")
    assert client.get(f"/venues/{hidden.id}").status_code == 404
    client.post("/logout")
    login(client, "sec-a")
    assert client.get(f"/venues/{hidden.id}").status_code == 200


def test_location_outside_the_district_is_refused(client, db, world):
    login(client, "sec-a")
    before = venue_count(db)
    resp = client.post("/venues/new", data=form_data(lon="116.397", lat="39.909"))  # Beijing
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'data-field="lon"' in page and "润州区范围" in page
    assert venue_count(db) == before
    resp = client.post("/venues/new?lang=en", data=form_data(lon="116.397", lat="39.909"))
    assert "outside 润州区" in resp.get_data(as_text=True)


def test_gcj02_coordinates_are_stored_in_wgs84(client, db, world):
    login(client, "sec-a")
    glon, glat = wgs84_to_gcj02(*RUNZHOU_POINT)
    resp = client.post(
        "/venues/new", data=form_data(lon=f"{glon:.7f}", lat=f"{glat:.7f}", crs="gcj02")
    )
    assert resp.status_code == 302
    venue = db.scalars(select(Venue).where(Venue.name == "新场地")).one()
    assert venue.entered_crs == "gcj02"
    assert venue.lon == pytest.approx(gcj02_to_wgs84(glon, glat)[0], abs=1e-6)
    assert venue.lon == pytest.approx(RUNZHOU_POINT[0], abs=1e-6)
    assert venue.lat == pytest.approx(RUNZHOU_POINT[1], abs=1e-6)


@pytest.mark.parametrize(
    "overrides, field, text",
    [
        ({"hours_2": "9-12"}, "hours_2", "HH:MM"),
        ({"hours_3": "14:00-12:00"}, "hours_3", "14:00-12:00"),
        ({"min_duration_minutes": "90"}, "min_duration_minutes", "60"),
        ({"max_duration_minutes": "30"}, "max_duration_minutes", "60"),
        ({"capacity_units": "0"}, "capacity_units", ""),
        ({"phone": "call me"}, "phone", ""),
        ({"name": ""}, "name", ""),
        ({"lon": "abc"}, "lon", ""),
    ],
)
def test_field_errors_show_next_to_their_field(client, db, world, overrides, field, text):
    login(client, "sec-a")
    before = venue_count(db)
    resp = client.post("/venues/new?lang=en", data=form_data(**overrides))
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert f'data-field="{field}"' in page
    assert text in page
    assert venue_count(db) == before


def test_duplicate_name_in_unit_is_refused(client, db, world):
    login(client, "sec-a")
    resp = client.post("/venues/new", data=form_data(name="甲羽毛球馆"))
    assert resp.status_code == 422
    assert 'data-field="name"' in resp.get_data(as_text=True)


def test_unit_admission_by_admin_only(client, db, world, make):
    applied = make.unit(world["committee"], "新申请单位", status="applied")
    login(client, "sec-a")
    assert client.post(f"/units/{applied.id}/status", data={"status": "active"}).status_code == 404
    assert (
        client.post(f"/units/{world['unit_b'].id}/status", data={"status": "suspended"}).status_code
        == 403
    )
    reload(db)
    assert db.get(Unit, applied.id).status == "applied"
    assert db.get(Unit, world["unit_b"].id).status == "active"
    client.post("/logout")
    login(client, "admin")
    assert client.post(f"/units/{applied.id}/status", data={"status": "active"}).status_code == 302
    reload(db)
    assert db.get(Unit, applied.id).status == "active"
    assert client.post(f"/units/{applied.id}/status", data={"status": "applied"}).status_code == 422
    reload(db)
    assert db.get(Unit, applied.id).status == "active"


def test_admin_creates_and_edits_units(client, db, world):
    login(client, "admin")
    resp = client.post(
        "/units/new",
        data={
            "name": "镇江农商行",
            "kind": "financial",
            "secretary": "王",
            "phone": "0511-1234567",
        },
    )
    assert resp.status_code == 302
    unit = db.scalars(select(Unit).where(Unit.name == "镇江农商行")).one()
    assert unit.status == "applied"
    assert client.post("/units/new", data={"name": "单位甲", "kind": "soe"}).status_code == 422
    client.post("/logout")
    login(client, "sec-a")
    assert (
        client.post(f"/units/{unit.id}/edit", data={"name": "改名", "kind": "soe"}).status_code
        == 403
    )
    reload(db)
    assert db.get(Unit, unit.id).name == "镇江农商行"


def test_suspended_unit_cannot_add_venues(client, db, world, make):
    world["unit_a"].status = "suspended"
    db.commit()
    login(client, "admin")
    resp = client.post("/venues/new", data=form_data())
    assert resp.status_code == 422
    assert 'data-field="unit"' in resp.get_data(as_text=True)


def test_list_filters_and_exports(client, world):
    page = client.get("/venues/?type=meeting_room").get_data(as_text=True)
    assert "乙会议室" in page and "甲羽毛球馆" not in page
    csv_text = client.get("/venues/export.csv?q=羽毛球").get_data(as_text=True)
    assert "甲羽毛球馆" in csv_text and "乙会议室" not in csv_text
    geo = json.loads(client.get("/venues/export.geojson").get_data(as_text=True))
    assert {f["properties"]["name"] for f in geo["features"]} == {"甲羽毛球馆", "乙会议室"}
    assert client.get("/venues/export.exe").status_code == 404


def test_streets_are_loaded_and_labelled_approximate(db, world):
    streets = db.scalars(
        select(Area).where(Area.level == "street", Area.committee_id == world["committee"].id)
    ).all()
    assert len(streets) >= 7 and all(s.approximate for s in streets)


def test_log_in_failures_and_language(client, world):
    resp = login(client, "sec-a", "wrong-password-123")
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.get_data(as_text=True) or "Wrong user name" in resp.get_data(
        as_text=True
    )
    resp = client.post("/login?lang=en", data={"username": "sec-a", "password": "nope-nope-nope"})
    assert "Wrong user name or password." in resp.get_data(as_text=True)
    assert login(client, "sec-a").status_code == 302


def test_the_venue_form_says_whether_the_unit_checks_groups_in(client, db, world):
    """Issue 21: the no-show job marks bookings only at venues whose unit checks groups in."""
    venue = world["venue_a"]
    assert venue.checks_in is False
    login(client, "sec-a")
    page = client.get(f"/venues/{venue.id}/edit").get_data(as_text=True)
    assert 'name="checks_in"' in page
    for checked, expected in (("y", True), (None, False)):
        data = form_data(name=venue.name, unit="单位甲", checks_in=checked)
        assert client.post(f"/venues/{venue.id}/edit", data=data).status_code == 302
        reload(db)
        assert db.get(Venue, venue.id).checks_in is expected
    changes = [
        e.changed().get("checks_in")
        for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "venue.update"))
    ]
    assert [c for c in changes if c] == [[False, True], [True, False]]
