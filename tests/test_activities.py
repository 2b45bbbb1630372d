"""Activities and sign-ups through the API (issue 20 items 2, 3, 6): a site or a venue booked
in the same transaction, the waitlist, withdrawals, cancellation, and every refusal the issue
lists answered with a clear message and nothing changed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import feeds
from mapservice.models import Activity, Booking, Notification, SignUp
from mapservice.operations.tokens import create_token
from tests.conftest import PASSWORD, Factory, module_world
from tests.test_access_matrix_web import changed_tables, snapshot

TZ = ZoneInfo("Asia/Shanghai")


def soon(days: int, hour: int) -> datetime:
    return (datetime.now(TZ) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        self.session, self.engine = session, engine
        make = Factory(session, areas)
        committee = make.committee("runzhou")
        self.post = make.unit(committee, "中国邮政镇江分公司")
        self.mobile = make.unit(committee, "中国移动镇江分公司")
        self.g_post = make.group(committee, self.post, "邮政团支部")
        self.g_mobile = make.group(committee, self.mobile, "移动团支部")
        self.g_extra = [make.group(committee, self.mobile, f"移动青年{i}") for i in range(3)]
        users = {
            "admin": make.admin(committee, username="admin"),
            "sec_post": make.secretary(self.post, username="sec-post"),
            "sec_mobile": make.secretary(self.mobile, username="sec-mobile"),
            "booker": make.booker(self.g_mobile, username="booker"),
        }
        self.court = make.venue(
            self.mobile,
            name="移动羽毛球馆",
            capacity_units=1,
            hours="Mon-Sun 08:00-22:00",
            min_notice_minutes=0,
        )
        self.admin = users["admin"]
        self.tokens = {}
        for name, user in users.items():
            _t, self.tokens[name] = create_token(session, None, user, ["read", "book", "manage"])
        session.commit()


world, web = module_world(World, lambda app, _w: app, csrf=False)


def call(web: Any, world: World, who: str, method: str, url: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    return web.test_client().open(f"/api/v1{url}", method=method, json=body, headers=headers)


def site_body(**kw: Any) -> dict[str, Any]:
    body = {
        "title": "青年公益林植树",
        "kind": "volunteer",
        "start": soon(10, 9).isoformat(),
        "end": soon(10, 12).isoformat(),
        "capacity": 10,
        "site": {"lon": 119.46, "lat": 32.19, "name": "朝阳社区公益林", "street": "南山街道"},
    }
    body.update(kw)
    return body


def unchanged(world: World, web: Any, who: str, method: str, url: str, body: Any) -> Any:
    """The request is refused and nothing in the database changed; returns the error."""
    before = snapshot(world.engine)
    resp = call(web, world, who, method, url, body)
    assert resp.status_code in (403, 404, 409, 422), resp.get_data(as_text=True)
    changed = changed_tables(before, snapshot(world.engine))
    assert [t for t in changed if t != "api_tokens"] == []  # (a token's last use is noted)
    return resp.status_code, resp.get_json()["error"]


def test_site_activity_signups_waitlist_and_withdrawal(web: Any, world: World) -> None:
    resp = call(web, world, "sec_post", "POST", "/activities", site_body())
    assert resp.status_code == 201, resp.get_data(as_text=True)
    a = resp.get_json()
    assert a["status"] == "open" and a["lead_unit"] == "中国邮政镇江分公司"
    assert a["site"]["name"] == "朝阳社区公益林" and a["venue_id"] is None
    url = f"/activities/{a['id']}/signups"
    first = call(web, world, "booker", "POST", url, {"headcount": 6})
    assert first.status_code == 201 and first.get_json()["state"] == "confirmed"
    unit = call(web, world, "sec_post", "POST", url, {"headcount": 4, "note": "举手"})
    assert unit.get_json()["state"] == "confirmed" and unit.get_json()["group_id"] is None
    late = call(web, world, "admin", "POST", url, {"headcount": 2, "group_id": world.g_extra[0].id})
    assert late.status_code == 201 and late.get_json()["state"] == "waitlisted"
    got = call(web, world, "booker", "GET", f"/activities/{a['id']}").get_json()
    assert (got["confirmed_headcount"], got["waitlisted_headcount"], got["status"]) == (
        10,
        2,
        "full",
    )
    # The same group twice, headcount 0 or 100,000: refused, nothing changed.
    assert unchanged(world, web, "booker", "POST", url, {"headcount": 1})[1]["code"] == (
        "already_signed_up"
    )
    for n in (0, 100000):
        assert unchanged(world, web, "booker", "POST", url, {"headcount": n})[0] == 422
    # The booker withdraws: the waitlisted group is promoted and told.
    resp = call(web, world, "booker", "DELETE", f"{url}/{first.get_json()['id']}")
    assert resp.status_code == 204
    world.session.rollback()
    promoted = world.session.get(SignUp, late.get_json()["id"])
    assert promoted is not None and promoted.state == "confirmed"
    kinds = world.session.scalars(
        select(Notification.kind).where(Notification.group_id == world.g_extra[0].id)
    ).all()
    assert "activity_promoted" in kinds
    confirmed = world.session.scalars(
        select(Notification.params).where(
            Notification.group_id == world.g_mobile.id, Notification.kind == "activity_confirmed"
        )
    ).all()
    assert len(confirmed) == 1 and "朝阳社区公益林" in confirmed[0]
    got = call(web, world, "booker", "GET", f"/activities?month={soon(10, 9):%Y-%m}").get_json()
    assert [x["confirmed_headcount"] for x in got["activities"] if x["id"] == a["id"]] == [6]
    # The promoted group's iCalendar feed shows the activity.
    _t, secret = feeds.create_token(world.session, world.admin, group_id=world.g_extra[0].id)
    world.session.commit()
    cal = Calendar.from_ical(web.test_client().get(f"/feeds/{secret}.ics").data)
    (event,) = cal.walk("VEVENT")
    assert str(event["summary"]).startswith("青年公益林植树") and event["status"] == "CONFIRMED"


def test_refusals_change_nothing(web: Any, world: World) -> None:
    bad_end = site_body(end=soon(10, 8).isoformat())
    status, err = unchanged(world, web, "sec_post", "POST", "/activities", bad_end)
    assert status == 422 and "end" in err["fields"]
    other = site_body(lead_unit_id=world.mobile.id)
    assert unchanged(world, web, "sec_post", "POST", "/activities", other)[0] == 403
    closed_hours = site_body(
        venue_id=world.court.id,
        site=None,
        start=soon(11, 5).isoformat(),
        end=soon(11, 7).isoformat(),
    )
    status, err = unchanged(world, web, "sec_mobile", "POST", "/activities", closed_hours)
    assert status == 422, err
    # A deadline passed and a cancelled activity: sign-up refused with a message.
    with Session(world.engine) as s:
        past = Activity(
            committee_id=world.post.committee_id,
            title="读书会",
            kind="reading_club",
            lead_unit_id=world.post.id,
            start_at=soon(3, 19),
            end_at=soon(3, 21),
            capacity=5,
            signup_deadline=soon(-1, 9),
            status="open",
            site_lon=119.4,
            site_lat=32.2,
        )
        s.add(past)
        s.commit()
        past_id = past.id
    status, err = unchanged(
        world, web, "booker", "POST", f"/activities/{past_id}/signups", {"headcount": 1}
    )
    assert (status, err["code"]) == (422, "signup_closed")
    resp = call(web, world, "sec_post", "PATCH", f"/activities/{past_id}", {"status": "cancelled"})
    assert resp.status_code == 422  # a reason is required
    resp = call(
        web,
        world,
        "sec_post",
        "PATCH",
        f"/activities/{past_id}",
        {"status": "cancelled", "cancel_reason": "天气原因"},
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    status, err = unchanged(
        world, web, "booker", "POST", f"/activities/{past_id}/signups", {"headcount": 1}
    )
    assert (status, err["code"]) == (422, "activity_cancelled")


def test_venue_activity_holds_its_booking(web: Any, world: World) -> None:
    body = site_body(
        title="羽毛球友谊赛",
        kind="sports",
        venue_id=world.court.id,
        site=None,
        start=soon(12, 14).isoformat(),
        end=soon(12, 16).isoformat(),
    )
    resp = call(web, world, "sec_mobile", "POST", "/activities", body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    a = resp.get_json()
    world.session.rollback()
    booking = world.session.get(Booking, a["booking_id"])
    assert booking is not None and booking.status == "confirmed"
    assert booking.group_id == world.g_mobile.id and booking.purpose == "羽毛球友谊赛"
    # The same time again: the engine's conflict with its alternatives, nothing written.
    status, err = unchanged(world, web, "sec_mobile", "POST", "/activities", body)
    assert status == 409 and "alternatives" in err
    # Moving the activity moves its booking; cancelling it cancels the booking.
    moved = {"start": soon(12, 18).isoformat(), "end": soon(12, 20).isoformat()}
    resp = call(web, world, "sec_mobile", "PATCH", f"/activities/{a['id']}", moved)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    world.session.rollback()
    world.session.expire_all()
    assert world.session.get(Booking, a["booking_id"]).start_at == soon(12, 18)  # type: ignore[union-attr]
    assert call(web, world, "sec_post", "PATCH", f"/activities/{a['id']}", moved).status_code == 403
    sec = logged_in(web, "sec-mobile")  # capacity 0 from the page: refused, not ignored
    page = sec.get(f"/activities/{a['id']}/edit").get_data(as_text=True)
    assert 'name="title"' in page
    form = {"title": "羽毛球友谊赛", "kind": "sports", "date": f"{soon(12, 18):%Y-%m-%d}"}
    form.update(start="18:00", end="20:00", capacity="0", status="open")
    assert sec.post(f"/activities/{a['id']}/edit", data=form).status_code == 422
    resp = call(
        web,
        world,
        "sec_mobile",
        "PATCH",
        f"/activities/{a['id']}",
        {"status": "cancelled", "cancel_reason": "场地维修"},
    )
    assert resp.status_code == 200
    world.session.rollback()
    world.session.expire_all()
    assert world.session.get(Booking, a["booking_id"]).status == "cancelled"  # type: ignore[union-attr]


def logged_in(web: Any, username: str) -> Any:
    client = web.test_client()
    assert (
        client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 302
    )
    return client


def test_pages_create_sign_up_export_and_refuse(web: Any, world: World) -> None:
    sec = logged_in(web, "sec-mobile")
    assert sec.get("/activities/new").status_code == 200
    day = soon(14, 9)
    form = {
        "title": "羽毛球联谊赛",
        "kind": "sports",
        "lead_unit_id": str(world.mobile.id),
        "date": f"{day:%Y-%m-%d}",
        "start": "19:00",
        "end": "21:00",
        "capacity": "4",
        "place": "venue",
        "venue_id": str(world.court.id),
        "publish": "y",
    }
    resp = sec.post("/activities/new", data=form)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    url = resp.headers["Location"]
    activity_id = int(url.rstrip("/").rsplit("/", 1)[1])
    # The same time again: the engine's refusal and its free windows, nothing written.
    again = sec.post("/activities/new", data=form)
    assert again.status_code == 409 and "activity-error" in again.get_data(as_text=True)
    # Another unit's secretary may not edit it.
    other = logged_in(web, "sec-post")
    assert other.get(f"/activities/{activity_id}/edit").status_code == 403
    # A booker on the list, signs up; 0 people refused with a message in Chinese.
    booker = logged_in(web, "booker")
    assert "羽毛球联谊赛" in booker.get("/activities/?open=1").get_data(as_text=True)
    bad = booker.post(
        f"/activities/{activity_id}/signup",
        data={"group": str(world.g_mobile.id), "headcount": "0"},
    )
    assert bad.status_code == 422 and "至少报名1人" in bad.get_data(as_text=True)
    ok = booker.post(
        f"/activities/{activity_id}/signup",
        data={"group": str(world.g_mobile.id), "headcount": "3"},
    )
    assert ok.status_code == 303
    page = booker.get(f"/activities/{activity_id}").get_data(as_text=True)
    assert "my-signups" in page and "signup-table" not in page
    unit = other.post(f"/activities/{activity_id}/signup", data={"group": "", "headcount": "2"})
    assert unit.status_code == 303
    assert "候补" in other.get(f"/activities/{activity_id}").get_data(as_text=True)
    # The lead unit exports the list.
    csv = sec.get(f"/activities/{activity_id}/signups.csv")
    assert csv.status_code == 200 and "移动团支部" in csv.get_data(as_text=True)
    xlsx = sec.get(f"/activities/{activity_id}/signups.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    assert booker.get(f"/activities/{activity_id}/signups.csv").status_code == 403


def test_waitlist_is_strict_first_come_first_served() -> None:
    """Pure rules: nobody overtakes the waitlist's head, even one who would fit."""
    from mapservice.core import activities as rules

    assert rules.place(10, 8, 0, 2) == "confirmed"
    assert rules.place(10, 8, 0, 3) == "waitlisted"
    assert rules.place(10, 5, 1, 1) == "waitlisted"  # someone waits: no overtaking
    # Room for 4: the head (3) goes, the next (2) does not fit, so the one after (1) waits too.
    assert rules.promotions(10, 6, [(1, 3), (2, 2), (3, 1)]) == [1]
    assert rules.promotions(10, 9, [(1, 3), (2, 1)]) == []
    assert rules.fill_status("open", 10, 10, 0) == "full"
    assert rules.fill_status("full", 10, 7, 0) == "open"
    assert rules.fill_status("closed", 10, 10, 0) == "closed"
