"""Issue 19, item 6: phone bookings (一个电话) and the notice of a new pending request to the
venue's unit secretaries. One world per module, HTTP through the test client (both
databases); the roles of the new route: the access matrix; the browser journey:
tests/test_phone_bookings_browser.py."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mapservice.booking import notices
from mapservice.models import AuditEntry, Booking, Group, Notification, User
from mapservice.operations.tokens import create_token
from tests.conftest import Factory, module_world
from tests.test_audit_settings import build_clients

TZ = ZoneInfo("Asia/Shanghai")


class World:
    def __init__(self, session: Session, engine: Any, areas: Any) -> None:
        make = Factory(session, areas)
        self.session = session
        self.committee = make.committee("runzhou")
        self.other = make.committee("other", with_streets=False)
        unit_a, unit_b = make.unit(self.committee, "甲单位"), make.unit(self.committee, "乙单位")
        unit_x = make.unit(self.other, "外会单位")
        self.unit_a, self.unit_b = unit_a, unit_b
        self.group_a = make.group(self.committee, unit_a, "甲团支部")
        self.users: dict[str, User] = {
            "admin": make.admin(self.committee, username="admin"),
            "sec_a": make.secretary(unit_a, username="sec-a", email="sec-a@example.org"),
            "sec_b": make.secretary(unit_b, username="sec-b", email="sec-b@example.org"),
            "booker_a": make.booker(self.group_a, username="booker-a"),
            "other_admin": make.admin(self.other, username="other-admin"),
        }
        rules = {"hours": "Mon-Sun 00:00-24:00", "min_notice_minutes": 0, "capacity_units": 1}
        self.venue_a = make.venue(unit_a, self.users["sec_a"], name="甲场地", **rules)
        self.venue_a2 = make.venue(unit_a, self.users["sec_a"], name="甲小厅", **rules)
        self.venue_b = make.venue(
            unit_b, self.users["sec_b"], name="乙场地", requires_approval=True, **rules
        )
        self.venue_x = make.venue(unit_x, self.users["other_admin"], name="外会场地", **rules)
        session.commit()
        self.day = (datetime.now(TZ) + timedelta(days=3)).date().isoformat()


world, web = module_world(World, build_clients, csrf=False)


def text(resp: Any) -> str:
    return str(resp.get_data(as_text=True))


def count(world: World, model: Any) -> int:
    world.session.rollback()
    return int(world.session.scalar(select(func.count()).select_from(model)) or 0)


def form(world: World, venue: Any, hour: int, **kw: Any) -> dict[str, Any]:
    data = {
        "date": world.day,
        "start": f"{hour:02d}:00",
        "end": f"{hour + 1:02d}:00",
        "venue_id": str(venue.id),
        "caller_name": "王小明",
        "caller_phone": "138 0000 1234",
        "group": "",
    }
    return {**data, **kw}


def test_the_screen_lists_the_units_free_venues_then_any_venue(world: World, web: Any) -> None:
    sec = web["sec_a"]
    page = text(sec.get("/bookings/phone?lang=en"))
    # The default window: the next whole hour, for one hour.
    start = (datetime.now(TZ) + timedelta(hours=1)).strftime("%H:00")
    assert f'name="start" value="{start}"' in page
    body = text(sec.get(f"/bookings/phone?date={world.day}&start=10:00&end=11:00"))
    listed = set(re.findall(r'data-venue-id="(\d+)"', body))
    assert listed == {str(world.venue_a.id), str(world.venue_a2.id)}
    body = text(sec.get(f"/bookings/phone?date={world.day}&start=10:00&end=11:00&all=1"))
    listed = set(re.findall(r'data-venue-id="(\d+)"', body))
    ids = {world.venue_a.id, world.venue_a2.id, world.venue_b.id}
    assert listed == {str(i) for i in ids}  # never another committee's
    admin = text(web["admin"].get(f"/bookings/phone?date={world.day}&start=10:00&end=11:00"))
    assert set(re.findall(r'data-venue-id="(\d+)"', admin)) == {str(i) for i in ids}
    assert 'id="nav-phone"' in body and 'id="nav-phone"' not in text(web["booker_a"].get("/"))


def test_bad_input_is_refused_with_a_message_and_nothing_changes(world: World, web: Any) -> None:
    sec = web["sec_a"]
    before = (count(world, Booking), count(world, AuditEntry), count(world, Group))
    past = (datetime.now(TZ) - timedelta(days=1)).date().isoformat()
    cases = [
        (form(world, world.venue_a, 9, caller_name=""), "Enter the caller's name."),
        (form(world, world.venue_a, 9, caller_phone=""), "Enter the caller's phone number."),
        (form(world, world.venue_a, 9, caller_phone="call me"), "This is not a phone number"),
        (form(world, world.venue_a, 9, date=past), "This time has already passed"),
        (form(world, world.venue_a, 9, end="08:00"), "The end must be after the start."),
        (form(world, world.venue_a, 9, start="9h"), "Enter a time as HH:MM."),
    ]
    for data, message in cases:
        resp = sec.post("/bookings/phone?lang=en", data=data)
        assert resp.status_code == 422, data
        assert message in text(resp).replace("&#39;", "'"), message
    # In Chinese by default.
    resp = sec.post(
        "/bookings/phone?lang=zh_CN", data=form(world, world.venue_a, 9, caller_name="")
    )
    assert resp.status_code == 422 and "请填写来电人姓名" in text(resp)
    other = sec.post("/bookings/phone", data=form(world, world.venue_x, 9))
    assert other.status_code == 403 and "另一个" in text(other)
    assert (
        sec.post("/bookings/phone", data=form(world, world.venue_a, 9, group="999999")).status_code
        == 404
    )
    assert web["booker_a"].get("/bookings/phone").status_code == 403
    assert (
        web["booker_a"].post("/bookings/phone", data=form(world, world.venue_a, 9)).status_code
        == 403
    )
    anon = web["anon"].get("/bookings/phone")
    assert anon.status_code == 302 and "/login" in anon.headers["Location"]
    assert (count(world, Booking), count(world, AuditEntry), count(world, Group)) == before


def test_own_venue_confirmed_with_the_caller_shown_to_the_owner_only(
    world: World, web: Any
) -> None:
    sec = web["sec_a"]
    resp = sec.post("/bookings/phone?lang=en", data=form(world, world.venue_a, 14))
    assert resp.status_code == 303, text(resp)
    world.session.rollback()
    b = world.session.scalars(select(Booking).where(Booking.caller_name == "王小明")).one()
    assert (b.status, b.caller_phone, b.entered_by_id) == (
        "confirmed",
        "138 0000 1234",
        world.users["sec_a"].id,
    )
    assert b.group.name == "甲单位·来电预约" and b.group.unit_id == world.unit_a.id
    entry = world.session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "booking.create", AuditEntry.object_id == b.id
        )
    ).one()
    assert json.loads(entry.changes or "{}")["caller_phone"] == [None, "138 0000 1234"]
    flashed = text(sec.get(resp.headers["Location"]))
    assert "Booked for 王小明 (138 0000 1234)" in flashed
    # The owner sees the caller in its lists; nobody else does.
    assert "138 0000 1234" in text(sec.get(f"/venues/{world.venue_a.id}/calendar?week={world.day}"))
    assert "138 0000 1234" in text(sec.get("/bookings/?scope=unit"))
    assert "138 0000 1234" in text(
        web["sec_a"].get(f"/audit/?object_type=booking&object_id={b.id}")
    )
    for role in ("sec_b", "booker_a", "other_admin"):
        assert "138 0000 1234" not in text(web[role].get("/bookings/")), role
    # The same slot again: the engine's conflict, with its alternatives, nothing written.
    before = count(world, Booking)
    again = sec.post("/bookings/phone?lang=en", data=form(world, world.venue_a, 14))
    assert again.status_code == 409 and 'id="book-conflict"' in text(again)
    assert count(world, Booking) == before


def test_another_units_venue_is_a_request_and_its_secretaries_are_told(
    world: World, web: Any
) -> None:
    sec = web["sec_a"]
    data = form(world, world.venue_b, 16, group=str(world.group_a.id), all="1")
    resp = sec.post("/bookings/phone?lang=en", data=data)
    assert resp.status_code == 303, text(resp)
    assert "The venue&#39;s unit has been told." in text(sec.get(resp.headers["Location"]))
    world.session.rollback()
    b = world.session.scalars(select(Booking).where(Booking.venue_id == world.venue_b.id)).one()
    assert b.status == "pending" and b.group_id == world.group_a.id
    note = world.session.scalars(select(Notification).where(Notification.booking_id == b.id)).one()
    assert (note.kind, note.unit_id, note.group_id) == ("new_request", world.unit_b.id, None)
    page = text(web["sec_b"].get("/notifications?lang=en"))
    assert 'data-kind="new_request"' in page and 'id="unread-badge">1<' in page
    assert "New request for 乙场地" in page and "Caller: 王小明, 138 0000 1234." in page
    assert "乙场地" not in text(sec.get("/notifications"))  # A is not told B's requests
    requests = text(web["sec_b"].get("/bookings/requests"))
    assert f'data-booking-id="{b.id}"' in requests and "138 0000 1234" in requests
    # The e-mail: to B's secretaries.
    mails = notices.mails_for(world.session, [note.id], "en")
    assert [m.to for m in mails] == [("sec-b@example.org",)]
    assert "New request for 乙场地" in mails[0].body


def test_api_takes_the_caller_from_staff_and_shows_it_to_the_owner(world: World, web: Any) -> None:
    world.session.rollback()
    secret = {}
    for role, scopes in (("sec_a", ["read", "book", "manage"]), ("booker_a", ["read", "book"])):
        _t, secret[role] = create_token(world.session, None, world.users[role], scopes, "phone")
    _t, secret["sec_b"] = create_token(
        world.session, None, world.users["sec_b"], ["read", "book"], "phone"
    )
    world.session.commit()

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret[role]}"}

    start = datetime.fromisoformat(f"{world.day}T18:00:00+08:00")
    body = {
        "venue_id": world.venue_a2.id,
        "group_id": world.group_a.id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "caller_name": "李四",
        "caller_phone": "0511-8888 0000",
    }
    api = web["anon"]
    refused = api.post("/api/v1/bookings", json=body, headers=auth("booker_a"))
    assert refused.status_code == 403
    bad = api.post("/api/v1/bookings", json={**body, "caller_phone": "x"}, headers=auth("sec_a"))
    assert bad.status_code == 422 and "caller_phone" in bad.get_json()["error"]["fields"]
    ok = api.post("/api/v1/bookings", json=body, headers=auth("sec_a"))
    assert ok.status_code == 201, ok.get_json()
    (out,) = ok.get_json()["bookings"]
    assert (out["caller_name"], out["caller_phone"]) == ("李四", "0511-8888 0000")
    mine = api.get("/api/v1/bookings?scope=unit", headers=auth("sec_a")).get_json()["bookings"]
    assert any(b["caller_phone"] == "0511-8888 0000" for b in mine)
    theirs = api.get("/api/v1/bookings", headers=auth("booker_a")).get_json()["bookings"]
    shown = [b for b in theirs if b["id"] == out["id"]]
    assert shown and shown[0]["caller_name"] is None and shown[0]["caller_phone"] is None
    # A series of requests is announced once to the venue's unit, with its number of dates.
    series = {**body, "venue_id": world.venue_b.id, "repeat": {"freq": "daily", "count": 3}}
    done = api.post("/api/v1/bookings", json=series, headers=auth("sec_a"))
    assert done.status_code == 201, done.get_json()
    world.session.rollback()
    ids = [b["id"] for b in done.get_json()["bookings"]]
    notes = world.session.scalars(
        select(Notification).where(Notification.booking_id.in_(ids))
    ).all()
    assert [(n.unit_id, json.loads(n.params)["count"]) for n in notes] == [(world.unit_b.id, 3)]
    assert "共 3 次" in notices.notice_text(notes[0].kind, notes[0].params)
    schema = api.get("/api/v1/openapi.json").get_json()
    assert "caller_phone" in schema["components"]["schemas"]["BookingIn"]["properties"]
