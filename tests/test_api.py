"""JSON API v1: tokens and scopes, every endpoint × role, the one error shape, rate limits,
and the round trip a WeChat mini-program makes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mapservice.booking import engine
from mapservice.db import writer
from mapservice.models import ApiToken, Booking, Closure, Venue
from mapservice.operations.tokens import create_token
from tests.conftest import pending_application, reload

TZ = ZoneInfo("Asia/Shanghai")


def soon(days: int, hour: int) -> datetime:
    base = (datetime.now(TZ) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return base


@pytest.fixture
def api(make: Any, db: Any) -> dict[str, Any]:
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    other = make.unit(committee, "邮政公司")
    g_other = make.group(committee, other, "邮政团支部")
    g_owner = make.group(committee, owner, "移动团支部")
    users = {
        "admin": make.admin(committee, username="admin"),
        "sec": make.secretary(owner, username="sec"),
        "sec_other": make.secretary(other, username="sec-other"),
        "booker": make.booker(g_other, username="booker"),
        "booker_owner": make.booker(g_owner, username="booker-owner"),
    }
    court = make.venue(
        owner, name="羽毛球馆", capacity_units=1, hours="Mon-Sun 08:00-22:00", min_notice_minutes=0
    )
    make.venue(
        other,
        name="邮政羽毛球馆",
        capacity_units=2,
        hours="Mon-Sun 08:00-22:00",
        lon=119.43,
        lat=32.20,
        min_notice_minutes=0,
    )
    hidden = make.venue(owner, name="内部会议室", type="meeting_room", published=False)
    application = pending_application(db, committee.id, "申请单位")
    tokens = {}
    for name, user in users.items():
        _t, secret = create_token(db, None, user, ["read", "book", "manage"])
        tokens[name] = secret
    _t, tokens["read_only"] = create_token(db, None, users["booker"], ["read"])
    db.commit()
    return {
        "users": users,
        "tokens": tokens,
        "court": court,
        "hidden": hidden,
        "g_other": g_other,
        "application": application,
    }


def auth(api: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api['tokens'][who]}"}


def assert_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_public_venue_data_needs_no_token(client, api):
    resp = client.get("/api/v1/venues")
    assert resp.status_code == 200
    names = sorted(f["properties"]["name"] for f in resp.get_json()["features"])
    assert names == sorted(["邮政羽毛球馆", "羽毛球馆"])  # unpublished stays hidden
    assert_error(client.get(f"/api/v1/venues/{api['hidden'].id}"), 404, "venue_not_found")
    secret = client.get(f"/api/v1/venues/{api['hidden'].id}", headers=auth(api, "sec"))
    assert secret.status_code == 200 and secret.get_json()["properties"]["name"] == "内部会议室"


def test_bad_and_revoked_tokens_are_401(client, api, db):
    assert_error(
        client.get("/api/v1/venues", headers={"Authorization": "Bearer ms_nope"}),
        401,
        "invalid_token",
    )
    assert_error(client.get("/api/v1/bookings"), 401, "unauthenticated")
    token = db.scalars(
        select(ApiToken).where(ApiToken.user_id == api["users"]["booker"].id)
    ).first()
    token.revoked_at = datetime.now(TZ)
    db.commit()
    assert_error(client.get("/api/v1/bookings", headers=auth(api, "booker")), 401, "invalid_token")


def test_scopes(client, api):
    body = {
        "venue_id": api["court"].id,
        "start": soon(2, 19).isoformat(),
        "end": soon(2, 20).isoformat(),
    }
    assert_error(
        client.post("/api/v1/bookings", json=body, headers=auth(api, "read_only")),
        403,
        "insufficient_scope",
    )
    assert client.get("/api/v1/bookings", headers=auth(api, "read_only")).status_code == 200


def test_mini_program_round_trip(client, api, db):
    """List venues near a point, check availability, book, hit a conflict, take an
    alternative, cancel."""
    near = client.get("/api/v1/venues?near=119.4253,32.1975&radius_km=3&type=badminton").get_json()
    assert near["features"][0]["properties"]["name"] == "羽毛球馆"
    assert (
        near["features"][0]["properties"]["distance_m"]
        < near["features"][1]["properties"]["distance_m"]
    )
    venue_id = near["features"][0]["id"]
    start, end = soon(2, 19), soon(2, 20)
    avail = client.get(
        f"/api/v1/venues/{venue_id}/availability",
        query_string={"from": start.isoformat(), "to": end.isoformat()},
    ).get_json()
    assert avail["intervals"] == [
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "free_units": 1,
            "capacity_units": 1,
            "open": True,
        }
    ]
    first = client.post(
        "/api/v1/bookings",
        json={
            "venue_id": venue_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "purpose": "周赛",
        },
        headers=auth(api, "booker_owner"),
    )
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["bookings"][0]["unit_numbers"] == [1]
    clash = client.post(
        "/api/v1/bookings",
        json={"venue_id": venue_id, "start": start.isoformat(), "end": end.isoformat()},
        headers=auth(api, "booker"),
    )
    err = assert_error(clash, 409, "conflict")
    assert (
        err["conflicts"][0]["group"] is None if "group" in err["conflicts"][0] else True
    )  # outsiders: no names
    alt = err["alternatives"]["windows"][0]
    assert [v["name"] for v in err["alternatives"]["venues"]] == ["邮政羽毛球馆"]
    took = client.post(
        "/api/v1/bookings",
        json={"venue_id": venue_id, "start": alt["start"], "end": alt["end"]},
        headers=auth(api, "booker"),
    )
    assert took.status_code == 201
    booking_id = took.get_json()["bookings"][0]["id"]
    mine = client.get("/api/v1/bookings", headers=auth(api, "booker")).get_json()["bookings"]
    assert [b["id"] for b in mine] == [booking_id]
    cancelled = client.post(
        f"/api/v1/bookings/{booking_id}/cancel",
        json={"reason": "改期"},
        headers=auth(api, "booker"),
    )
    assert (
        cancelled.status_code == 200
        and cancelled.get_json()["bookings"][0]["status"] == "cancelled"
    )


def free_search(client: Any, start: datetime, end: datetime, **params: Any) -> list[str]:
    """Names the venue search returns for "badminton, free for [start, end), within 3 km"."""
    query = {
        "near": "119.4253,32.1975",
        "radius_km": "3",
        "type": "badminton",
        "free_from": start.isoformat(),
        "free_to": end.isoformat(),
        **params,
    }
    resp = client.get("/api/v1/venues", query_string=query)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["meta"]["total"] == len(body["features"])
    return [f["properties"]["name"] for f in body["features"]]


def test_listed_venues_show_each_its_own_hours(client, make, db):
    """The list reads hours as bare rows and formats each weekly pattern once: every feature
    still shows its own venue's hours, in the search by point and in the plain list."""
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    make.admin(committee, username="admin")
    patterns = {
        "全天": "Mon-Sun 08:00-22:00",
        "全天二": "Mon-Sun 08:00-22:00",
        "工作日": "Mon-Fri 09:00-12:00,14:00-17:00",
        "周末": "Sat-Sun 10:00-16:00",
        "无时间": "",
    }
    for i, (name, hours) in enumerate(patterns.items()):
        make.venue(unit, name=name, hours=hours, lon=119.4253 + 0.001 * i, lat=32.1975)
    db.commit()
    expected = {name: v.hours_text for name, v in ((v.name, v) for v in db.scalars(select(Venue)))}
    assert expected["工作日"] != expected["周末"] != expected["全天"]
    for query in ({"near": "119.4253,32.1975", "radius_km": "3"}, {"per_page": "50"}):
        body = client.get("/api/v1/venues", query_string=query).get_json()
        shown = {f["properties"]["name"]: f["properties"]["hours"] for f in body["features"]}
        assert shown == expected, query


def test_listed_features_equal_each_venues_own(client, make, db):
    """The list builds its features from bare rows, the single venue from its object: the
    two agree on every property (street, unit, hours, rules); the search by point gives the
    same features as the plain list, in either CRS."""
    committee = make.committee()
    unit = make.unit(committee, "移动公司")
    make.admin(committee, username="admin")
    make.venue(unit, name="球馆", hours="Mon-Fri 09:00-12:00,14:00-17:00", max_headcount=30)
    make.venue(unit, name="会议室", type="meeting_room", hours="", requires_approval=True)
    db.commit()
    for crs in ("wgs84", "gcj02"):
        listed = client.get("/api/v1/venues", query_string={"crs": crs}).get_json()["features"]
        assert len(listed) == 2
        for feature in listed if crs == "wgs84" else ():  # one venue: WGS-84 only
            assert feature == client.get(f"/api/v1/venues/{feature['id']}").get_json()
        near = client.get(
            "/api/v1/venues",
            query_string={"crs": crs, "near": f"{listed[0]['geometry']['coordinates'][0]},32.2"},
        ).get_json()["features"]
        assert {f["id"]: {**f["properties"], "distance_m": None} for f in near} == {
            f["id"]: f["properties"] for f in listed
        }


def test_venue_search_by_free_window(client, make, db, wdb):
    """Capacity by unit, live holds only, closures and hours (half-open), radius, nearest
    first, and the page: what a booker searching for a free court sees."""
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit)
    booker_user = make.booker(group, username="booker")
    admin_user = make.admin(committee, username="admin")
    base = {"hours": "Mon-Sun 08:00-22:00", "min_notice_minutes": 0}
    venues = {
        name: make.venue(
            unit, name=name, lon=119.4253 + dlon, lat=32.1975 + dlat, capacity_units=cap, **kw
        )
        for name, dlon, dlat, cap, kw in (
            ("满场", 0.001, 0, 1, base),
            ("三片场", 0.002, 0, 3, base),
            ("修缮中", 0.003, 0, 2, base),
            ("刚修好", 0.004, 0, 2, base),
            ("只开上午", 0.005, 0, 2, {**base, "hours": "Mon-Sun 08:00-12:00"}),
            ("待审批", 0.006, 0, 1, {**base, "requires_approval": True}),
            ("审批过期", 0.007, 0, 1, {**base, "requires_approval": True}),
            ("角落", -0.025, -0.02, 2, base),  # inside the 3 km box but 3.2 km away
        )
    }
    start = soon(3, 19)
    end = start + timedelta(hours=1)
    everything = ["满场", "三片场", "修缮中", "刚修好", "待审批", "审批过期"]
    assert free_search(client, start, end) == everything  # nearest first, the corner out
    booker, admin = wdb.merge(booker_user), wdb.merge(admin_user)
    engine.book(wdb, admin, venues["满场"].id, group.id, start, end)
    engine.book(wdb, admin, venues["三片场"].id, group.id, start - timedelta(hours=1), end, units=2)
    engine.book(wdb, booker, venues["待审批"].id, group.id, start, end)  # pending, held
    expired = engine.book(wdb, booker, venues["审批过期"].id, group.id, start, end)
    assert expired.status == "pending"
    expired.hold_expires_at = datetime.now(TZ) - timedelta(minutes=1)  # its hold has run out
    wdb.add(
        Closure(
            venue_id=venues["修缮中"].id,
            start_at=start + timedelta(minutes=30),
            end_at=start + timedelta(days=2),
            reason="修缮",
        )
    )
    wdb.add(
        Closure(
            venue_id=venues["刚修好"].id,
            start_at=start - timedelta(days=2),
            end_at=start,
            reason="修缮",
        )
    )  # ends as the window begins
    wdb.commit()
    assert free_search(client, start, end) == ["三片场", "刚修好", "审批过期"]
    assert free_search(client, start, end, units="2") == ["刚修好"]  # one court left of three
    assert free_search(client, start, end, units="3") == []
    # Back to back with the bookings (half-open): all free again but the closed one.
    later = (end, end + timedelta(hours=1))
    assert free_search(client, *later) == ["满场", "三片场", "刚修好", "待审批", "审批过期"]
    morning = (soon(3, 9), soon(3, 11))
    assert "只开上午" in free_search(client, *morning)
    assert "只开上午" not in free_search(client, soon(3, 11), soon(3, 13))  # closes at 12
    page = client.get(
        "/api/v1/venues",
        query_string={
            "near": "119.4253,32.1975",
            "radius_km": "3",
            "free_from": later[0].isoformat(),
            "free_to": later[1].isoformat(),
            "per_page": "2",
            "page": "2",
        },
    ).get_json()
    assert [f["properties"]["name"] for f in page["features"]] == ["刚修好", "待审批"]
    assert page["meta"]["total"] == 5
    assert 190 < page["features"][0]["properties"]["distance_m"] < 390  # 0.004° east: ~377 m
    listed = client.get("/api/v1/venues", query_string={"type": "badminton"}).get_json()
    assert listed["meta"]["total"] == 8  # without a window or a point: every one, by id


def test_venue_search_free_window_in_local_time_across_dst(client, make):
    """Opening hours are the committee's wall clock: on the morning Berlin moves to summer
    time, a venue opening at 08:00 opens at 08:00 CEST (06:00 UTC), not 08:00 CET."""
    committee = make.committee(slug="berlin", with_streets=False, timezone="Europe/Berlin")
    unit = make.unit(committee, "Sportverein")
    make.venue(unit, name="Halle", hours="Mon-Sun 08:00-12:00")
    cest = ZoneInfo("Europe/Berlin")
    day = datetime(2030, 3, 31, tzinfo=cest)  # clocks go 02:00 → 03:00
    at = lambda h: day.replace(hour=h)  # noqa: E731
    assert at(8).utcoffset() == timedelta(hours=2)
    assert free_search(client, at(8), at(9)) == ["Halle"]
    assert free_search(client, at(7), at(9)) == []  # 07:00 CEST: not open yet
    assert free_search(client, at(11), at(12)) == ["Halle"]
    assert free_search(client, at(11), at(13)) == []
    # The same instants asked in UTC give the same answer.
    utc = ZoneInfo("UTC")
    assert free_search(client, at(8).astimezone(utc), at(9).astimezone(utc)) == ["Halle"]


def test_rule_violation_names_rule_and_field(client, api):
    resp = client.post(
        "/api/v1/bookings",
        json={
            "venue_id": api["court"].id,
            "start": soon(2, 19).isoformat(),
            "end": soon(2, 19).replace(minute=30).isoformat(),
        },
        headers=auth(api, "booker"),
    )
    err = assert_error(resp, 422)
    assert err["code"] in ("misaligned", "too_short") and (
        "end" in err["fields"] or "start" in err["fields"]
    )
    naive = client.post(
        "/api/v1/bookings",
        json={
            "venue_id": api["court"].id,
            "start": "2026-12-02T19:00:00",
            "end": "2026-12-02T20:00:00",
        },
        headers=auth(api, "booker"),
    )
    assert "start" in assert_error(naive, 422, "invalid")["fields"]
    assert_error(
        client.post("/api/v1/bookings", data="not json", headers=auth(api, "booker")),
        400,
        "invalid_json",
    )


@pytest.mark.parametrize(
    "who, status",
    [("sec", 200), ("admin", 200), ("sec_other", 403), ("booker", 403)],
)
def test_patch_venue_by_role(client, api, db, who, status):
    resp = client.patch(
        f"/api/v1/venues/{api['court'].id}", json={"capacity_units": 2}, headers=auth(api, who)
    )
    assert resp.status_code == status
    reload(db)
    assert db.get(Venue, api["court"].id).capacity_units == (2 if status == 200 else 1)


def test_create_venue_and_missing(client, api, db):
    body = {
        "name": "新会议室",
        "type": "meeting_room",
        "lon": 119.4253,
        "lat": 32.1975,
        "hours": "Mon-Fri 09:00-17:00",
        "slot_minutes": 30,
        "min_duration_minutes": 30,
    }
    resp = client.post("/api/v1/venues", json=body, headers=auth(api, "sec"))
    assert resp.status_code == 201 and resp.get_json()["properties"]["unit"] == "移动公司"
    assert_error(client.post("/api/v1/venues", json=body, headers=auth(api, "booker")), 403)
    outside = dict(body, name="北京会议室", lon=116.39, lat=39.9)
    assert (
        "lon"
        in assert_error(client.post("/api/v1/venues", json=outside, headers=auth(api, "sec")), 422)[
            "fields"
        ]
    )
    assert_error(client.get("/api/v1/venues/99999"), 404)
    assert_error(client.post("/api/v1/bookings/99999/confirm", headers=auth(api, "sec")), 404)
    assert db.scalar(select(func.count(Venue.id)).where(Venue.name == "北京会议室")) == 0


def test_owner_actions_and_booking_scopes(client, api, db):
    start, end = soon(3, 19), soon(3, 20)
    made = client.post(
        "/api/v1/bookings",
        json={"venue_id": api["court"].id, "start": start.isoformat(), "end": end.isoformat()},
        headers=auth(api, "booker"),
    )
    booking_id = made.get_json()["bookings"][0]["id"]
    assert_error(
        client.post(f"/api/v1/bookings/{booking_id}/check-in", headers=auth(api, "booker")), 403
    )
    assert_error(
        client.post(f"/api/v1/bookings/{booking_id}/check-in", headers=auth(api, "sec")),
        422,
        "too_early",
    )
    unit_view = client.get("/api/v1/bookings?scope=unit", headers=auth(api, "sec")).get_json()[
        "bookings"
    ]
    assert [b["id"] for b in unit_view] == [booking_id] and unit_view[0]["group"] == "邮政团支部"
    assert_error(client.get("/api/v1/bookings?scope=all", headers=auth(api, "sec")), 403)
    assert (
        len(
            client.get("/api/v1/bookings?scope=all", headers=auth(api, "admin")).get_json()[
                "bookings"
            ]
        )
        == 1
    )
    moved = client.post(
        f"/api/v1/bookings/{booking_id}/reschedule",
        json={"start": soon(3, 20).isoformat(), "end": soon(3, 21).isoformat()},
        headers=auth(api, "booker"),
    )
    assert moved.status_code == 200 and moved.get_json()["start"] == soon(3, 20).isoformat()


def test_series_through_the_api(client, api, db):
    start, end = soon(2, 10), soon(2, 11)
    resp = client.post(
        "/api/v1/bookings",
        json={
            "venue_id": api["court"].id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "repeat": {"freq": "daily", "count": 3},
        },
        headers=auth(api, "booker"),
    )
    assert resp.status_code == 201
    body = resp.get_json()
    assert (
        len(body["bookings"]) == 3
        and all(o["ok"] for o in body["occurrences"])
        and body["series_id"]
    )
    again = client.post(
        "/api/v1/bookings",
        json={
            "venue_id": api["court"].id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "repeat": {"freq": "daily", "count": 3},
        },
        headers=auth(api, "booker_owner"),
    )
    err = assert_error(again, 409, "series_rejected")
    assert [o["ok"] for o in err["occurrences"]] == [False, False, False]
    assert db.scalar(select(func.count(Booking.id))) == 3


def test_rate_limit_answers_429_with_retry_after(app, client, api):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    codes = [client.get("/api/v1/venues").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    last = client.get("/api/v1/venues")
    assert_error(last, 429, "rate_limited")
    assert int(last.headers["Retry-After"]) >= 1
    # Another token has its own budget.
    assert client.get("/api/v1/venues", headers=auth(api, "sec")).status_code == 200


def test_openapi_document_and_reference_page(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert {
        "/venues",
        "/venues/{venue_id}",
        "/venues/{venue_id}/availability",
        "/bookings",
        "/bookings/{booking_id}/confirm",
        "/bookings/{booking_id}/no-show",
    } <= set(doc["paths"])
    assert "BookingIn" in doc["components"]["schemas"]
    page = client.get("/api/v1/docs?lang=en").get_data(as_text=True)
    assert "/api/v1/bookings" in page and "curl" in page


def test_token_page_and_cli(client, api, db):
    from tests.conftest import login

    login(client, "booker")
    page = client.post("/account/tokens", data={"name": "小程序", "scopes": ["read", "book"]})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="new-token"' in html
    secret = html.split('user-select-all">')[1].split("<")[0]
    assert (
        client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    stored = db.scalars(select(ApiToken).where(ApiToken.name == "小程序")).one()
    assert stored.token_hash != secret and secret not in stored.token_hash


def test_patch_refuses_nulls_for_required_fields(client, api, db):
    resp = client.patch(
        f"/api/v1/venues/{api['court'].id}",
        json={"type": None, "max_headcount": None},
        headers=auth(api, "sec"),
    )
    err = assert_error(resp, 422, "invalid")
    assert "type" in next(iter(err["fields"].values()))
    cleared = client.patch(
        f"/api/v1/venues/{api['court'].id}", json={"max_headcount": None}, headers=auth(api, "sec")
    )
    assert cleared.status_code == 200 and cleared.get_json()["properties"]["max_headcount"] is None


def test_stats_endpoints_by_role(client, api, db, make):
    from sqlalchemy.orm import Session

    from mapservice.booking import engine as booking_engine
    from mapservice.db import writer

    start = soon(2, 19)
    with Session(writer(db.get_bind())) as w:
        booker = w.merge(api["users"]["booker"])
        booking_engine.book(
            w, booker, api["court"].id, api["g_other"].id, start, start + timedelta(hours=2)
        )
        w.commit()
    day = start.date()
    q = {"from": day.isoformat(), "to": day.isoformat(), "group_by": "venue"}
    ahead = client.get(
        "/api/v1/stats/utilization", query_string=q, headers=auth(api, "admin")
    ).get_json()
    assert ahead["total"]["booked_cap_hours"] == 0.0  # still to come: not use yet
    # the same booking a week ago (moved there directly: the engine books no past)
    booking = db.scalars(select(Booking).where(Booking.venue_id == api["court"].id)).one()
    booking.start_at -= timedelta(days=9)
    booking.end_at -= timedelta(days=9)
    db.commit()
    day -= timedelta(days=9)
    q = {"from": day.isoformat(), "to": day.isoformat(), "group_by": "venue"}
    body = client.get(
        "/api/v1/stats/utilization", query_string=q, headers=auth(api, "admin")
    ).get_json()
    court = next(r for r in body["rows"] if r["name"] == "羽毛球馆")
    assert court["booked_cap_hours"] == 2.0 and court["open_cap_hours"] == 14.0
    assert court["utilization"] == pytest.approx(2 / 14) and court["sharing_rate"] == 1.0
    assert body["total"]["booked_cap_hours"] == 2.0
    mine = client.get(
        "/api/v1/stats/utilization", query_string=q, headers=auth(api, "sec_other")
    ).get_json()
    assert [r["name"] for r in mine["rows"]] == ["邮政羽毛球馆"]  # a secretary sees its own unit
    assert_error(
        client.get("/api/v1/stats/utilization", query_string=q, headers=auth(api, "booker")), 403
    )
    assert_error(client.get("/api/v1/stats/utilization", query_string=q), 401)
    bad = dict(q, to=(day - timedelta(days=1)).isoformat())
    assert (
        "to"
        in assert_error(
            client.get("/api/v1/stats/utilization", query_string=bad, headers=auth(api, "admin")),
            422,
        )["fields"]
    )
    cov = client.get(
        "/api/v1/stats/coverage?type=badminton&radius_km=1", headers=auth(api, "admin")
    ).get_json()
    assert cov["crs"] == "EPSG:4549" and 0 < cov["share"] < 1
    assert {s["name"] for s in cov["streets"]} >= {"和平路街道"}
    assert "韦岗街道" in cov["uncovered_streets"]


# Every endpoint × role: the status each role gets. {b} is a booking of the booker's group (of
# "sec_other"'s unit) at the court (owned by "sec"'s unit), {v} the court; each case also
# tries ids that don't exist.
ANON, BOOKER, OWNER, OTHER_SEC, ADMIN = "anon", "booker", "sec", "sec_other", "admin"
STRANGER = "booker_owner"  # a booker of another group: the booking is out of sight
MATRIX = [
    ("GET", "/venues", None, {ANON: 200, BOOKER: 200, OWNER: 200, ADMIN: 200}),
    ("GET", "/venues/{v}", None, {ANON: 200, BOOKER: 200, OWNER: 200, ADMIN: 200}),
    (
        "GET",
        "/venues/{v}/availability?from={t0}&to={t1}",
        None,
        {ANON: 200, BOOKER: 200, OWNER: 200},
    ),
    (
        "PATCH",
        "/venues/{v}",
        {"capacity_units": 2},
        {ANON: 401, BOOKER: 403, OTHER_SEC: 403, OWNER: 200, ADMIN: 200},
    ),
    ("GET", "/bookings", None, {ANON: 401, BOOKER: 200, OWNER: 200, ADMIN: 200}),
    (
        "POST",
        "/bookings/{b}/confirm",
        None,
        {ANON: 401, BOOKER: 403, OTHER_SEC: 403, STRANGER: 404, OWNER: 422, ADMIN: 422},
    ),
    (
        "POST",
        "/bookings/{b}/decline",
        {"reason": "x"},
        {ANON: 401, BOOKER: 403, OTHER_SEC: 403, STRANGER: 404, OWNER: 422},
    ),
    (
        "POST",
        "/bookings/{b}/check-in",
        None,
        {ANON: 401, BOOKER: 403, OTHER_SEC: 403, STRANGER: 404, OWNER: 422},
    ),
    (
        "POST",
        "/bookings/{b}/no-show",
        None,
        {ANON: 401, BOOKER: 403, OTHER_SEC: 403, STRANGER: 404, OWNER: 422},
    ),
    (
        "POST",
        "/bookings/{b}/reschedule",
        {"start": "{t2}", "end": "{t3}"},
        {ANON: 401, STRANGER: 404, OTHER_SEC: 200, BOOKER: 200},
    ),
    ("POST", "/bookings/{b}/cancel", {}, {ANON: 401, STRANGER: 404, OTHER_SEC: 200, BOOKER: 200}),
    # {g}: the booker's group, of "sec_other"'s unit
    ("GET", "/groups", None, {ANON: 401, BOOKER: 200, OWNER: 200, ADMIN: 200}),
    ("GET", "/groups/{g}", None, {ANON: 401, BOOKER: 200, OWNER: 404, OTHER_SEC: 200, ADMIN: 200}),
    (
        "POST",
        "/groups",
        {"name": "新团体"},
        {ANON: 401, BOOKER: 403, OWNER: 201, OTHER_SEC: 201, ADMIN: 201},
    ),
    (
        "PATCH",
        "/groups/{g}",
        {"contact_name": "李"},
        {ANON: 401, BOOKER: 403, OWNER: 404, OTHER_SEC: 200, ADMIN: 200},
    ),
    (
        "GET",
        "/stats/utilization?from={d}&to={d}",
        None,
        {ANON: 401, BOOKER: 403, OWNER: 200, ADMIN: 200},
    ),
    ("GET", "/stats/coverage", None, {ANON: 401, BOOKER: 403, OWNER: 200, ADMIN: 200}),
    # {a}: a pending application to join the committee (its admin decides it)
    ("GET", "/applications", None, {ANON: 401, BOOKER: 403, OWNER: 403, ADMIN: 200}),
    (
        "POST",
        "/applications/{a}/admit",
        {"username": "new-sec"},
        {ANON: 401, BOOKER: 403, OWNER: 403, ADMIN: 201},
    ),
    (
        "POST",
        "/applications/{a}/decline",
        {"reason": "x"},
        {ANON: 401, BOOKER: 403, OTHER_SEC: 403, ADMIN: 200},
    ),
]
CASES = [(m, p, body, who, status) for m, p, body, roles in MATRIX for who, status in roles.items()]


@pytest.mark.parametrize(
    "method, path, body, who, status", CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES]
)
def test_endpoint_role_matrix(client, api, db, method, path, body, who, status):
    from sqlalchemy.orm import Session

    from mapservice.booking import engine as booking_engine
    from mapservice.db import writer

    start = soon(3, 19)
    with Session(writer(db.get_bind())) as w:
        booker = w.merge(api["users"]["booker"])
        booking = booking_engine.book(
            w, booker, api["court"].id, api["g_other"].id, start, start + timedelta(hours=1)
        )
        w.commit()
        booking_id = booking.id
    values = {
        "v": api["court"].id,
        "b": booking_id,
        "g": api["g_other"].id,
        "a": api["application"].id,
        "d": start.date().isoformat(),
        "t0": quote(start.isoformat()),
        "t1": quote((start + timedelta(hours=2)).isoformat()),
        "t2": (start + timedelta(hours=1)).isoformat(),
        "t3": (start + timedelta(hours=2)).isoformat(),
    }
    url = "/api/v1" + path.format(**values)
    payload = (
        None
        if body is None
        else {k: v.format(**values) if isinstance(v, str) else v for k, v in body.items()}
    )
    headers = {} if who == ANON else auth(api, who)
    resp = client.open(url, method=method, json=payload, headers=headers)
    assert resp.status_code == status, resp.get_data(as_text=True)
    if status >= 400:
        assert set(resp.get_json()) == {"error"}
    if "{" in path and status not in (401,):
        missing = "/api/v1" + path.format(
            **{**values, "v": 99999, "b": 99999, "g": 99999, "a": 99999}
        )
        if missing != url:
            gone = client.open(missing, method=method, json=payload, headers=headers)
            assert gone.status_code in (404, 403), gone.get_data(as_text=True)


def test_token_last_use_is_noted_without_write_locking_reads(client, api, db):
    token = db.scalars(select(ApiToken).where(ApiToken.user_id == api["users"]["sec"].id)).first()
    assert token.last_used_at is None
    assert client.get("/api/v1/bookings", headers=auth(api, "sec")).status_code == 200
    reload(db)
    first = db.get(ApiToken, token.id).last_used_at
    assert first is not None
    assert client.get("/api/v1/bookings", headers=auth(api, "sec")).status_code == 200
    reload(db)
    assert db.get(ApiToken, token.id).last_used_at == first  # at most once a minute


@pytest.mark.parametrize("repeat", [None, {"freq": "daily", "count": 2}])
def test_booking_answer_is_built_after_the_lock_is_released(
    client, api, db, engine, monkeypatch, repeat
):
    """The booking is committed before its answer is built: meanwhile another writer can take
    SQLite's write lock (PostgreSQL: the venue's row lock) at once, and sees the booking."""
    from mapservice.api import bookings as routes

    seen: list[int] = []
    build = routes.created_out

    def probe(bookings: list[Booking]) -> Any:
        with writer(engine).connect() as other:
            raw = other.connection.dbapi_connection
            sqlite = other.dialect.name == "sqlite"
            if sqlite:  # BEGIN IMMEDIATE fails at once ("database is locked") if still held
                raw.execute("PRAGMA busy_timeout=0")
            try:
                with other.begin() as trans:
                    if not sqlite:
                        other.exec_driver_sql("SET LOCAL lock_timeout = '1ms'")
                        other.execute(
                            select(Venue.id).where(Venue.id == api["court"].id).with_for_update()
                        )
                    seen.append(other.scalar(select(func.count(Booking.id))) or 0)
                    trans.rollback()
            finally:
                if sqlite:
                    raw.execute("PRAGMA busy_timeout=30000")
        return build(bookings)

    monkeypatch.setattr(routes, "created_out", probe)
    start, end = soon(2, 14), soon(2, 15)
    body: dict[str, Any] = {
        "venue_id": api["court"].id,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    if repeat:
        body["repeat"] = repeat
    resp = client.post("/api/v1/bookings", json=body, headers=auth(api, "booker"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    booked = len(resp.get_json()["bookings"])
    assert booked == (2 if repeat else 1)
    assert seen == [booked]
    for out in resp.get_json()["bookings"]:
        assert (out["venue"], out["group"], out["entered_by"]) == (
            "羽毛球馆",
            "邮政团支部",
            "booker",
        )
        assert out["unit_numbers"] == [1] and out["status"] == "confirmed"
