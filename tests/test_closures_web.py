"""Closures through real HTTP (issue 16, defects 3 and 7): a closure over active bookings
lists them and asks first; confirmed, it cancels every one (each group notified, with the
closure's reason) and closes, in one transaction; nothing stays "confirmed" inside a closure.
Bad closure input shows the form again with a clear message and changes nothing."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mapservice.booking import engine
from mapservice.models import AuditEntry, Booking, Closure, Notification, User
from tests.conftest import login, reload

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime.now(TZ).date() + timedelta(days=3)


def local(day: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=TZ)


def field(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}"


@pytest.fixture
def w(make: Any, wdb: Any) -> dict[str, Any]:
    """A court of 单位甲 needing approval; 乙's group holds a confirmed booking and 丙's a
    pending one inside the closure below, plus bookings outside it or no longer active."""
    committee = make.committee()
    owner, unit_b, unit_c = (make.unit(committee, n) for n in ("单位甲", "单位乙", "单位丙"))
    g_b, g_c = make.group(committee, unit_b, "乙团支部"), make.group(committee, unit_c, "丙团支部")
    make.admin(committee, username="admin")
    make.secretary(owner, username="sec-a")
    make.secretary(unit_b, username="sec-b")
    make.booker(g_b, username="booker-b")
    make.booker(g_c, username="booker-c")
    court = make.venue(
        owner, name="甲羽毛球馆", capacity_units=3, requires_approval=True, min_notice_minutes=0
    )
    other_court = make.venue(owner, name="甲乒乓球室", type="table_tennis")
    users = {u.username: u for u in wdb.scalars(select(User))}
    sec, bb, bc = users["sec-a"], users["booker-b"], users["booker-c"]

    def book(user: User, group: Any, day: date, a: str, b: str, venue: Any = court) -> Booking:
        return engine.book(wdb, user, venue.id, group.id, local(day, a), local(day, b))

    confirmed = book(bb, g_b, DAY, "19:00", "21:00")
    engine.confirm(wdb, sec, confirmed.id)
    pending = book(bc, g_c, DAY + timedelta(days=1), "08:00", "10:00")
    outside = book(bb, g_b, DAY + timedelta(days=2), "19:00", "20:00")
    engine.confirm(wdb, sec, outside.id)
    gone = book(bc, g_c, DAY, "10:00", "11:00")
    engine.cancel(wdb, bc, gone.id)
    elsewhere = book(bb, g_b, DAY, "19:00", "20:00", venue=other_court)
    wdb.commit()
    assert (confirmed.status, pending.status, elsewhere.status) == ("confirmed",) + (
        "pending",
        "confirmed",
    )
    return {
        "court": court,
        "inside": [confirmed, pending],
        "others": [outside, gone, elsewhere],
        "g_b": g_b,
        "g_c": g_c,
    }


def closure(start: str = "08:00", end: str = "12:00", reason: str = "场馆维修", **kw: Any) -> dict:
    """The closure form: ``DAY`` 08:00 until the next day's 12:00 (over both bookings)."""
    data = {
        "start_at": field(DAY, start),
        "end_at": field(DAY + timedelta(days=1), end),
        "reason": reason,
    }
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def statuses(db: Any, bookings: list[Booking]) -> list[str]:
    reload(db)
    return [db.get(Booking, b.id).status for b in bookings]


def closures(db: Any) -> int:
    reload(db)
    return int(db.scalar(select(func.count(Closure.id))))


def notices(db: Any) -> list[tuple[int, str]]:
    reload(db)
    return [tuple(r) for r in db.execute(select(Notification.group_id, Notification.kind))]


def rows_of(page: str) -> dict[int, str]:
    block = re.search(r'id="closure-hits".*?</table>', page, re.S)
    assert block, page
    return {
        int(i): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
        for i, row in re.findall(r'<tr data-booking-id="(\d+)">(.*?)</tr>', block.group(0), re.S)
    }


@pytest.mark.parametrize("who", ["sec-a", "admin"])
def test_a_closure_over_bookings_lists_them_and_changes_nothing(client, db, w, who):
    login(client, who)
    before = notices(db)
    resp = client.post(f"/venues/{w['court'].id}/closures", data=closure())
    assert resp.status_code == 200
    page = html.unescape(resp.get_data(as_text=True))
    confirmed, pending = w["inside"]
    rows = rows_of(page)
    assert list(rows) == [confirmed.id, pending.id]
    assert "甲羽毛球馆" in rows[confirmed.id] and "乙团支部" in rows[confirmed.id]
    assert f"{DAY.isoformat()} 19:00–21:00" in rows[confirmed.id] and "已确认" in rows[confirmed.id]
    assert "丙团支部" in rows[pending.id] and "待审批" in rows[pending.id]
    assert "闭馆并取消这 2 个预约" in page  # the confirming button
    assert 'id="closure-form"' in page  # or change the dates
    assert statuses(db, w["inside"] + w["others"]) == [
        "confirmed",
        "pending",
        "confirmed",
        "cancelled",
        "confirmed",
    ]
    assert closures(db) == 0 and notices(db) == before


def test_confirmed_the_bookings_are_cancelled_and_each_group_is_told_why(client, db, w):
    login(client, "sec-a")
    confirmed, pending = w["inside"]
    before = notices(db)
    ids = f"{confirmed.id},{pending.id}"
    resp = client.post(f"/venues/{w['court'].id}/closures", data=closure(cancel_ids=ids))
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已取消预约：2 个" in page and "场馆维修" in page
    assert statuses(db, w["inside"] + w["others"]) == [
        "cancelled",
        "cancelled",
        "confirmed",
        "cancelled",
        "confirmed",
    ]
    assert closures(db) == 1
    for booking in w["inside"]:
        assert db.get(Booking, booking.id).status_reason == "闭馆：场馆维修"
    new = [n for n in notices(db) if n not in before]
    assert sorted(new) == sorted(
        [(w["g_b"].id, "cancelled_by_owner"), (w["g_c"].id, "cancelled_by_owner")]
    )
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "closure.create")).one()
    assert sorted(__import__("json").loads(entry.details)["cancelled"]) == sorted(
        [confirmed.id, pending.id]
    )
    # The booker sees the notice, with the closure's reason, in either language.
    client.post("/logout")
    login(client, "booker-b")
    for lang, text in (("zh_CN", "场馆维修"), ("en", "场馆维修")):
        page = html.unescape(client.get(f"/notifications?lang={lang}").get_data(as_text=True))
        assert "甲羽毛球馆" in page and text in page and f"{DAY.isoformat()} 19:00" in page


def test_a_booking_made_after_the_list_was_shown_is_not_cancelled_unseen(client, db, w, wdb):
    """The owner confirmed two; a third came in meanwhile: nothing is done, the new list is
    shown to confirm again."""
    confirmed, pending = w["inside"]
    booker = wdb.scalars(select(User).where(User.username == "booker-b")).one()
    late = engine.book(
        wdb, booker, w["court"].id, w["g_b"].id, local(DAY, "12:00"), local(DAY, "13:00")
    )
    wdb.commit()
    login(client, "sec-a")
    resp = client.post(
        f"/venues/{w['court'].id}/closures",
        data=closure(cancel_ids=f"{confirmed.id},{pending.id}"),
    )
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert 'id="closure-hits-changed"' in page
    assert set(rows_of(page)) == {confirmed.id, pending.id, late.id}
    assert statuses(db, [confirmed, pending, late]) == ["confirmed", "pending", "pending"]
    assert closures(db) == 0


def test_a_booking_its_group_cancelled_meanwhile_does_not_stop_the_closure(client, db, w, wdb):
    """The owner agreed to cancel two; one group cancelled its own meanwhile: the other is
    cancelled, the closure added, and the message counts what was really cancelled."""
    confirmed, pending = w["inside"]
    booker = wdb.scalars(select(User).where(User.username == "booker-c")).one()
    engine.cancel(wdb, booker, pending.id)
    wdb.commit()
    login(client, "sec-a")
    resp = client.post(
        f"/venues/{w['court'].id}/closures",
        data=closure(cancel_ids=f"{confirmed.id},{pending.id}"),
    )
    assert resp.status_code == 302
    assert "已取消预约：1 个" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert statuses(db, w["inside"]) == ["cancelled", "cancelled"] and closures(db) == 1
    assert db.get(Booking, pending.id).status_reason == ""  # cancelled by its group


def test_a_closure_cannot_begin_inside_a_booking_under_way(client, db, w, wdb):
    """A booking that has begun cannot be cancelled: the closure must start after it."""
    confirmed = w["inside"][0]
    now = datetime.now(UTC)
    running = wdb.get(Booking, confirmed.id)
    running.start_at, running.end_at = now - timedelta(minutes=30), now + timedelta(minutes=90)
    for a in running.allocations:
        a.start_at, a.end_at = running.start_at, running.end_at
    wdb.commit()
    login(client, "sec-a")
    start = (now + timedelta(minutes=10)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
    resp = client.post(
        f"/venues/{w['court'].id}/closures",
        data={"start_at": start, "end_at": field(DAY + timedelta(days=1), "08:00")},
    )
    assert resp.status_code == 422
    message = re.search(r'data-field="start_at">([^<]*)<', resp.get_data(as_text=True))
    ends = running.end_at.astimezone(TZ).strftime("%H:%M")
    assert message and "乙团支部" in message.group(1) and ends in message.group(1)
    assert statuses(db, w["inside"]) == ["confirmed", "pending"] and closures(db) == 0


def test_a_closure_over_no_booking_is_added_at_once(client, db, w):
    login(client, "sec-a")
    later = DAY + timedelta(days=5)
    resp = client.post(
        f"/venues/{w['court'].id}/closures",
        data={"start_at": field(later, "00:00"), "end_at": field(later, "23:00"), "reason": ""},
    )
    assert resp.status_code == 302 and closures(db) == 1


def test_only_the_venues_managers_may_confirm(client, db, w):
    confirmed, pending = w["inside"]
    for who, status in (("sec-b", 403), ("booker-b", 403)):
        login(client, who)
        resp = client.post(
            f"/venues/{w['court'].id}/closures",
            data=closure(cancel_ids=f"{confirmed.id},{pending.id}"),
        )
        assert resp.status_code == status
        client.post("/logout")
    assert statuses(db, w["inside"]) == ["confirmed", "pending"] and closures(db) == 0


NOW = datetime.now(TZ)
BAD = [
    # (form overrides, field, Chinese message part, English message part)
    (
        {"start_at": field(DAY, "18:00"), "end_at": field(DAY, "09:00")},
        "end_at",
        "结束时间须晚于开始时间",
        "The end must be after the start",
    ),
    ({"start_at": ""}, "start_at", "请填写闭馆开始时间", "Enter when the closure begins"),
    ({"end_at": None}, "end_at", "请填写闭馆结束时间", "Enter when the closure ends"),
    ({"start_at": "tomorrow"}, "start_at", "2026-12-31 08:00", "2026-12-31 08:00"),
    ({"reason": "修" * 201}, "reason", "最多 200 个字", "at most 200 characters"),
    (
        {"start_at": f"{NOW.year - 2}-01-01T08:00"},
        "start_at",
        "最早只能从一年前开始",
        "at most a year ago",
    ),
    ({"start_at": "0001-01-01T00:00"}, "start_at", "最早只能从一年前开始", "at most a year ago"),
    ({"end_at": f"{NOW.year + 3}-01-01T08:00"}, "end_at", "最晚只能到两年后", "two years ahead"),
]


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
@pytest.mark.parametrize(
    "overrides, name, zh, en", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_closure_input_shows_the_form_again_and_changes_nothing(
    client, db, w, lang, overrides, name, zh, en
):
    login(client, "sec-a")
    data = closure(**overrides)
    resp = client.post(f"/venues/{w['court'].id}/closures?lang={lang}", data=data)
    assert resp.status_code == 422
    page = html.unescape(resp.get_data(as_text=True))
    assert 'id="closure-form"' in page and "甲羽毛球馆" in page  # the venue's form, not "422"
    message = re.search(rf'data-field="{name}">([^<]*)<', page)
    assert message and (zh if lang == "zh_CN" else en) in message.group(1), page
    for key, value in data.items():  # what was typed is still there to correct
        if key != name and value:
            assert f'value="{value}"' in page
    assert statuses(db, w["inside"]) == ["confirmed", "pending"] and closures(db) == 0
