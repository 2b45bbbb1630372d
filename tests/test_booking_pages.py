"""What users hit on the booking pages (issue 16), through real HTTP: "my bookings" with a
series (no 500, Chinese labels), an honest error page, bad form input answered at its field in
both languages, proxy bookings listed for the secretary who took them and refused in the
group's name, a second booking of the same time asked about first, and cancelling a booking or
suspending a unit confirmed before it happens."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.models import Booking, Unit
from tests.conftest import login, reload

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime.now(TZ).date() + timedelta(days=2)


@pytest.fixture
def w(make: Any) -> dict[str, Any]:
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    other = make.unit(committee, "邮政公司")
    third = make.unit(committee, "华电公司")
    g_owner = make.group(committee, owner, "移动团支部")
    g_other = make.group(committee, other, "邮政团支部")
    g_third = make.group(committee, third, "华电团支部")
    users = {
        "admin": make.admin(committee, username="admin"),
        "sec": make.secretary(owner, username="sec"),
        "sec_other": make.secretary(other, username="sec-other"),
        "booker": make.booker(g_other, username="booker"),
        "booker3": make.booker(g_third, username="booker3"),
    }
    court = make.venue(owner, name="移动羽毛球馆", capacity_units=2, max_headcount=10)
    single = make.venue(owner, name="移动乒乓球室", type="table_tennis", capacity_units=1)
    paired = make.venue(
        owner,
        name="移动健身房",
        type="gym",
        capacity_units=1,
        bookable_by="paired",
    )
    paired.paired_units = [other]
    make.session.commit()
    return {
        **users,
        "committee": committee,
        "owner": owner,
        "other": other,
        "third": third,
        "court": court,
        "single": single,
        "paired": paired,
        "g_owner": g_owner,
        "g_other": g_other,
        "g_third": g_third,
    }


def as_user(client: Any, username: str, lang: str = "zh_CN") -> Any:
    client.set_cookie("lang", lang)
    assert login(client, username).status_code == 302
    return client


def post_book(
    client: Any, venue: Any, day: date = DAY, start: str = "19:00", end: str = "20:00", **kw: Any
) -> Any:
    data = {"date": day.isoformat(), "start": start, "end": end, "units": "1", **kw}
    return client.post(f"/venues/{venue.id}/book", data=data)


def text(resp: Any) -> str:
    return html.unescape(resp.get_data(as_text=True))


def field_errors(page: str, name: str) -> list[str]:
    return re.findall(rf'data-field="{name}">([^<]*)<', page)


def options_of(page: str, name: str) -> list[tuple[str, str]]:
    select_ = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select_ is not None, f"no <select name={name}>"
    return re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)</option>', select_.group(1))


def bookings(db: Any) -> list[Booking]:
    reload(db)
    return list(db.scalars(select(Booking).order_by(Booking.id)))


def row_of(page: str, booking_id: int) -> str:
    m = re.search(
        rf'<li class="list-group-item[^"]*" data-booking-id="{booking_id}"(.*?)</li>', page, re.S
    )
    assert m is not None, f"booking {booking_id} not listed"
    return m.group(1)


# ---------------------------------------------------------------- 1: my bookings with a series


def test_my_bookings_with_a_series_for_the_booker_and_the_secretary(client, db, w):
    taken = DAY + timedelta(days=7)
    assert post_book(as_user(client, "booker3"), w["single"], day=taken).status_code == 303
    booker = client.application.test_client()
    as_user(booker, "booker")
    resp = post_book(booker, w["single"], repeat="weekly", count="3", policy="skip_conflicts")
    assert resp.status_code == 303
    resp = booker.get("/bookings/")
    assert resp.status_code == 200
    page = text(resp)
    assert "已在移动乒乓球室预约3个日期中的2个。" in page
    series = [b for b in bookings(db) if b.series_id]
    assert len(series) == 2
    for b in series:
        assert options_of(row_of(page, b.id), "scope") == [
            ("one", "仅此一次"),
            ("following", "此次及之后"),
            ("series", "整个周期预约"),
        ]
    # The unit's secretary and the committee admin list the same series.
    for username in ("sec-other", "admin"):
        other = client.application.test_client()
        resp = as_user(other, username).get("/bookings/")
        assert resp.status_code == 200, username
        assert all(f'data-booking-id="{b.id}"' in text(resp) for b in series)
    # In English the same choices read in English.
    english = client.application.test_client()
    page = text(as_user(english, "booker", "en").get("/bookings/"))
    assert [label for _v, label in options_of(row_of(page, series[0].id), "scope")] == [
        "Only this one",
        "This and the following",
        "The whole series",
    ]


def test_an_unexpected_error_says_what_happened(app, client, w):
    """A crash while showing a page does not claim "nothing was changed" (a reader may think
    their booking was lost); a crash during a change says whether it was saved."""
    from mapservice.web.database import end_write_phase, get_db

    def show() -> Any:
        raise RuntimeError("bug while showing")

    def change_then_fail() -> Any:
        get_db()
        end_write_phase()  # the change is committed (as the booking route does)
        raise RuntimeError("bug after saving")

    def fail_before_saving() -> Any:
        get_db()
        raise RuntimeError("bug before saving")

    app.add_url_rule("/test-crash/show", "crash_show", show)
    app.add_url_rule("/test-crash/saved", "crash_saved", change_then_fail, methods=["POST"])
    app.add_url_rule("/test-crash/unsaved", "crash_unsaved", fail_before_saving, methods=["POST"])
    as_user(client, "booker")
    resp = client.get("/test-crash/show")
    assert resp.status_code == 500
    page = text(resp)
    assert "未做任何更改" not in page
    assert "显示此页面时系统出错" in page
    resp = client.post("/test-crash/unsaved")
    assert resp.status_code == 500 and "系统出错，未做任何更改。" in text(resp)
    resp = client.post("/test-crash/saved")
    assert resp.status_code == 500
    assert "未做任何更改" not in text(resp) and "更改已保存" in text(resp)
    client.set_cookie("lang", "en")
    page = text(client.get("/test-crash/show"))
    assert "went wrong on our side while showing this page" in page
    assert "nothing was changed" not in page


# ---------------------------------------------------------------- 7: words and bad input


def test_the_booking_forms_choices_follow_the_language(client, w):
    page = text(as_user(client, "booker").get(f"/venues/{w['court'].id}"))
    assert options_of(page, "repeat") == [
        ("", "不重复"),
        ("daily", "每天"),
        ("weekly", "每周"),
        ("biweekly", "每两周"),
    ]
    assert options_of(page, "policy") == [
        ("all_or_nothing", "全部不预约"),
        ("skip_conflicts", "仅预约空闲日期"),
    ]
    client.set_cookie("lang", "en")
    page = text(client.get(f"/venues/{w['court'].id}"))
    assert [label for _v, label in options_of(page, "repeat")] == [
        "Does not repeat",
        "Daily",
        "Weekly",
        "Every two weeks",
    ]
    assert [label for _v, label in options_of(page, "policy")] == [
        "Book none of them",
        "Book the free dates only",
    ]


BAD_INPUT = [
    # field, posted values, the message at the field (zh, en)
    (
        "purpose",
        {"purpose": "羽" * 2001},
        ("用途最多 2000 个字（现有 2001 个）。", "The purpose may have at most 2000 characters"),
    ),
    ("units", {"units": "0"}, ("数值大小必须介于 1 到 100 之间。", "between 1 and 100")),
    ("units", {"units": "101"}, ("数值大小必须介于 1 到 100 之间。", "between 1 and 100")),
    ("units", {"units": "two"}, ("不是有效的整数。", "Not a valid integer value.")),
    ("headcount", {"headcount": "0"}, ("介于 1 到 10000 之间", "between 1 and 10000")),
    ("headcount", {"headcount": "99999"}, ("介于 1 到 10000 之间", "between 1 and 10000")),
    ("count", {"repeat": "weekly", "count": "0"}, ("介于 1 到 104 之间", "between 1 and 104")),
    ("count", {"repeat": "weekly", "count": "500"}, ("介于 1 到 104 之间", "between 1 and 104")),
    (
        "until",
        {"repeat": "weekly", "until": "2026-02-30"},
        ("不是有效的日期值。", "Not a valid date"),
    ),
    (
        "until",
        {"repeat": "weekly", "until": "9999-12-31"},
        ("请填写 2000 年至 2099 年之间的日期。", "Enter a date between 2000 and 2099."),
    ),
    (
        "until",
        {"repeat": "weekly", "until": (DAY - timedelta(days=1)).isoformat()},
        ("最后日期不能早于第一个日期。", "The last date cannot be before the first date."),
    ),
    (
        "date",
        {"date": "9999-12-31"},
        ("请填写 2000 年至 2099 年之间的日期。", "Enter a date between 2000 and 2099."),
    ),
    (
        "date",
        {"date": "0001-01-01"},
        ("请填写 2000 年至 2099 年之间的日期。", "Enter a date between 2000 and 2099."),
    ),
    ("date", {"date": "tomorrow"}, ("不是有效的日期值。", "Not a valid date")),
    ("start", {"start": "25:00"}, ("请填写时间，如 19:00。", "Use a time like 19:00.")),
    ("end", {"end": "7pm"}, ("请填写时间，如 19:00。", "Use a time like 19:00.")),
    ("repeat", {"repeat": "monthly", "count": "2"}, ("不是有效的选择。", "Not a valid choice")),
    (
        "policy",
        {"policy": "some", "repeat": "weekly", "count": "2"},
        ("不是有效的选择。", "Not a valid choice"),
    ),
]


@pytest.mark.parametrize(
    "field, data, messages", BAD_INPUT, ids=[f"{f}-{i}" for i, (f, _d, _m) in enumerate(BAD_INPUT)]
)
def test_bad_booking_input_shows_the_form_with_a_message(client, db, w, field, data, messages):
    as_user(client, "booker")
    for lang, message in zip(("zh_CN", "en"), messages, strict=True):
        client.set_cookie("lang", lang)
        resp = post_book(client, w["court"], **data)
        assert resp.status_code == 422, (lang, resp.status_code)
        page = text(resp)
        assert 'id="book-form"' in page
        errors = field_errors(page, field)
        assert errors and message in errors[0], (lang, errors, field_errors(page, ".*?"))
        # The general note above the form points at the marked fields.
        assert 'id="book-errors"' in page
    assert bookings(db) == []


# ---------------------------------------------------------------- 5: proxy bookings


def test_the_secretary_finds_a_proxy_booking_in_my_bookings(client, db, w):
    as_user(client, "sec")
    resp = post_book(client, w["court"], group=str(w["g_third"].id), purpose="电话预约")
    assert resp.status_code == 303
    (b,) = bookings(db)
    assert b.group_id == w["g_third"].id and b.entered_by_id == w["sec"].id
    page = text(client.get("/bookings/"))
    row = row_of(page, b.id)
    assert "华电团支部" in row and "电话预约" in row
    assert "代为预约" in row  # marked as made for another group
    assert f'action="/bookings/{b.id}/cancel"' in row  # and still the secretary's to change
    # The caller's own booker sees it too, not marked as entered by them.
    booker = client.application.test_client()
    row = row_of(text(as_user(booker, "booker3").get("/bookings/")), b.id)
    assert "代为预约" not in row


def test_the_group_list_offers_only_groups_that_may_book(client, w):
    as_user(client, "sec")
    # The gym is for the owner's unit and its paired unit (邮政公司) only.
    page = text(client.get(f"/venues/{w['paired'].id}"))
    names = [label for _v, label in options_of(page, "group")]
    assert "移动团支部" in names and "邮政团支部" in names
    assert "华电团支部" not in names
    # Every group may book the court (committee members).
    page = text(client.get(f"/venues/{w['court'].id}"))
    names = [label for _v, label in options_of(page, "group")]
    assert {"移动团支部", "邮政团支部", "华电团支部"} <= set(names)


def test_a_refused_proxy_booking_names_the_callers_group(client, db, w):
    as_user(client, "sec")
    resp = post_book(client, w["paired"], group=str(w["g_third"].id))
    assert resp.status_code == 422
    page = text(resp)
    assert field_errors(page, "group") == ["华电团支部不能预约该场地（见“可预约对象”）。"]
    assert "您的团体" not in page
    client.set_cookie("lang", "en")
    page = text(post_book(client, w["paired"], group=str(w["g_third"].id)))
    assert field_errors(page, "group") == [
        "华电团支部 may not book this venue (see 'who may book')."
    ]
    assert bookings(db) == []


def test_a_secretary_of_another_unit_without_an_allowed_group_is_told(client, db, make, w):
    # 华电公司's secretary: its only group may not book the paired gym.
    make.secretary(w["third"], username="sec-third")
    as_user(client, "sec-third")
    page = text(client.get(f"/venues/{w['paired'].id}"))
    assert 'id="no-group"' in page and 'id="book-submit"' not in page
    resp = post_book(client, w["paired"], group=str(w["g_third"].id))
    assert resp.status_code == 422
    assert "华电团支部不能预约该场地" in text(resp)
    assert bookings(db) == []


# ---------------------------------------------------------------- 8: asking before acting


def test_booking_the_same_time_again_is_asked_about(client, db, w):
    as_user(client, "booker")
    assert post_book(client, w["court"]).status_code == 303
    (first,) = bookings(db)
    resp = post_book(client, w["court"])
    assert resp.status_code == 409
    page = text(resp)
    warning = re.search(r'id="own-overlap"(.*?)</div>', page, re.S)
    assert warning is not None
    assert "邮政团支部已预约该场地" in warning.group(1)
    assert f"{DAY.isoformat()} 19:00–20:00" in warning.group(1)
    assert 'name="confirm_overlap" value="1"' in page
    assert len(bookings(db)) == 1  # nothing booked yet
    # Confirmed: the second court is taken for the same group.
    resp = post_book(client, w["court"], confirm_overlap="1")
    assert resp.status_code == 303
    second = bookings(db)[1]
    assert (second.group_id, second.unit_numbers) == (first.group_id, [2])
    # A different time is not asked about; another group's booking neither.
    assert post_book(client, w["court"], start="20:00", end="21:00").status_code == 303
    other = client.application.test_client()
    assert post_book(as_user(other, "booker3"), w["single"]).status_code == 303
    assert post_book(client, w["single"], start="20:00", end="21:00").status_code == 303
    assert len(bookings(db)) == 5


def test_a_series_over_an_own_booking_is_asked_about(client, db, w):
    as_user(client, "booker", "en")
    week2 = DAY + timedelta(days=7)
    assert post_book(client, w["court"], day=week2).status_code == 303
    resp = post_book(client, w["court"], repeat="weekly", count="3")
    assert resp.status_code == 409
    warning = re.search(r'id="own-overlap"(.*?)</div>', text(resp), re.S).group(1)
    assert "邮政团支部 already holds this venue" in warning
    assert f"{week2.isoformat()} 19:00–20:00" in warning
    assert len(bookings(db)) == 1
    resp = post_book(client, w["court"], repeat="weekly", count="3", confirm_overlap="1")
    assert resp.status_code == 303
    assert len(bookings(db)) == 4


def test_cancelling_asks_first_and_lists_what_goes(client, db, w):
    as_user(client, "booker")
    post_book(client, w["court"], repeat="daily", count="3")
    first, second, third = bookings(db)
    resp = client.post(
        f"/bookings/{second.id}/cancel", data={"reason": "下雨", "scope": "following"}
    )
    assert resp.status_code == 200
    page = text(resp)
    asked = re.search(r'id="cancel-confirm"(.*?)</form>', page, re.S).group(1)
    assert "确定取消以下 2 个预约吗？" in page
    for b in (second, third):
        assert f"{(b.start_at.astimezone(TZ)):%Y-%m-%d %H:%M}" in asked
    assert f"{(first.start_at.astimezone(TZ)):%Y-%m-%d}" not in asked
    assert 'name="confirmed" value="1"' in asked and 'value="下雨"' in asked
    assert [b.status for b in bookings(db)] == ["confirmed"] * 3
    # A reason longer than the form allows is said, not answered with a bare 400.
    resp = client.post(f"/bookings/{second.id}/cancel", data={"reason": "x" * 201, "scope": "one"})
    assert resp.status_code == 303
    assert "原因最多 200 个字（现有 201 个）。" in text(client.get("/bookings/"))
    assert [b.status for b in bookings(db)] == ["confirmed"] * 3
    resp = client.post(
        f"/bookings/{second.id}/cancel",
        data={"reason": "下雨", "scope": "following", "confirmed": "1"},
    )
    assert resp.status_code == 303
    assert [b.status for b in bookings(db)] == ["confirmed", "cancelled", "cancelled"]
    assert bookings(db)[1].status_reason == "下雨"
    # The form on "my bookings" asks in the browser too (a dialog) and says what it does.
    page = text(client.get("/bookings/"))
    form = re.search(rf'<form[^>]*action="/bookings/{first.id}/cancel"[^>]*>', page).group(0)
    assert "data-confirm=" in form


def test_suspending_a_unit_asks_first_and_says_what_it_does(client, db, w):
    booker = client.application.test_client()
    post_book(as_user(booker, "booker"), w["court"])
    as_user(client, "admin")
    page = text(client.get("/units/"))
    form = re.search(
        rf'<form[^>]*action="/units/{w["owner"].id}/status"[^>]*data-confirm="([^"]*)"', page
    )
    assert form is not None and "3 个场地" in form.group(1)
    resp = client.post(f"/units/{w['owner'].id}/status", data={"status": "suspended"})
    assert resp.status_code == 200
    page = text(resp)
    asked = re.search(r'id="suspend-confirm"(.*?)</form>', page, re.S).group(1)
    assert "移动公司" in asked and "3 个场地" in asked and "1 个未来预约" in asked
    reload(db)
    assert db.get(Unit, w["owner"].id).status == "active"
    resp = client.post(
        f"/units/{w['owner'].id}/status", data={"status": "suspended", "confirmed": "1"}
    )
    assert resp.status_code == 302
    reload(db)
    assert db.get(Unit, w["owner"].id).status == "suspended"
    # Reinstating needs no question.
    assert (
        client.post(f"/units/{w['owner'].id}/status", data={"status": "active"}).status_code == 302
    )
    reload(db)
    assert db.get(Unit, w["owner"].id).status == "active"
