"""Booking through real HTTP: the venue page's form and week view, rule errors at their
fields, conflicts with alternatives that pre-fill the form, proxy booking, the owner's queue,
cancel and reschedule, permissions, notifications (in-app and e-mail), iCalendar feeds, the
skipped hour of a clock change, and the expiry command."""

from __future__ import annotations

import html
import re
import socket
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from mapservice.models import AuditEntry, Booking, FeedToken, Notification, User
from tests.conftest import login, reload
from tests.test_cli import Cli

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime.now(TZ).date() + timedelta(days=2)


def local(day: date, hhmm: str, tz: ZoneInfo = TZ) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz)


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
        "booker": make.booker(g_other, username="booker", email="post@example.com"),
        "booker3": make.booker(g_third, username="booker3"),
    }
    court = make.venue(
        owner,
        name="移动羽毛球馆",
        capacity_units=2,
        max_headcount=10,
        hours="Mon-Sun 08:00-22:00",
        min_notice_minutes=60,
    )
    single = make.venue(owner, name="移动乒乓球室", type="table_tennis", capacity_units=1)
    near = make.venue(
        other, name="邮政乒乓球室", type="table_tennis", capacity_units=1, lon=119.43, lat=32.2
    )
    hall = make.venue(
        owner,
        name="移动报告厅",
        type="lecture_hall",
        requires_approval=True,
        hours="Mon-Sun 08:00-22:00",
    )
    return {
        **users,
        "committee": committee,
        "court": court,
        "single": single,
        "near": near,
        "hall": hall,
        "g_owner": g_owner,
        "g_other": g_other,
        "g_third": g_third,
    }


def en(client: Any, username: str) -> Any:
    client.set_cookie("lang", "en")
    resp = login(client, username)
    assert resp.status_code == 302
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


def input_value(page: str, name: str) -> str | None:
    m = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    if not m:
        return None
    v = re.search(r'value="([^"]*)"', m.group(0))
    return v.group(1) if v else ""


def bookings(db: Any) -> list[Booking]:
    reload(db)
    return list(db.scalars(select(Booking).order_by(Booking.id)))


# ---------------------------------------------------------------- booking from the venue page


def test_the_venue_page_has_the_week_view_and_the_form(client, w):
    en(client, "booker")
    page = text(client.get(f"/venues/{w['court'].id}"))
    assert 'id="book"' in page and 'id="book-form"' in page
    assert page.count('class="week-day') == 7
    # A free slot pre-fills the form.
    link = re.search(r'<a class="slot slot-free"[^>]*href="([^"]+)"', page)
    assert link is not None
    prefilled = text(client.get(html.unescape(link.group(1))))
    assert input_value(prefilled, "start") and input_value(prefilled, "date")
    # Next week moves the view on by seven days.
    first = re.search(r'class="week-day mb-2" data-date="([^"]+)"', page).group(1)
    nxt = text(
        client.get(f"/venues/{w['court'].id}?week={date.fromisoformat(first) + timedelta(days=7)}")
    )
    assert f'data-date="{date.fromisoformat(first) + timedelta(days=7)}"' in nxt


def test_a_visitor_sees_occupied_only_and_a_log_in_link(client, w):
    en(client, "booker")
    assert post_book(client, w["single"]).status_code == 303
    client.post("/logout")
    anon = client.application.test_client()
    anon.set_cookie("lang", "en")
    page = text(anon.get(f"/venues/{w['single'].id}?week={DAY.isoformat()}"))
    assert 'id="book-login"' in page and 'id="book-form"' not in page
    assert "邮政团支部" not in page
    assert re.search(r'data-state="full" data-start="19:00"[^>]*>19:00 <small>occupied', page)


def test_booker_books_through_the_form(client, db, w):
    en(client, "booker")
    resp = post_book(client, w["court"], purpose="staff tournament", headcount="8")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/bookings/")
    page = text(client.get("/bookings/"))
    assert f"Booked: 移动羽毛球馆, {DAY.isoformat()} 19:00–20:00, units 1." in page
    (b,) = bookings(db)
    assert (b.status, b.group_id, b.units, b.headcount) == ("confirmed", w["g_other"].id, 1, 8)
    assert b.start_at == local(DAY, "19:00") and b.end_at == local(DAY, "20:00")
    assert "staff tournament" in page
    # Two units: the flash names both courts.
    post_book(client, w["court"], start="20:00", end="21:00", units="2")
    assert "units 1, 2." in text(client.get("/bookings/"))


def test_the_flash_names_the_courts_in_chinese(client, w):
    login(client, "booker")
    post_book(client, w["court"], units="2")
    page = text(client.get("/bookings/"))
    assert "1、2" in page


def test_rule_errors_are_shown_at_their_fields(client, db, w):
    en(client, "booker")
    resp = post_book(client, w["court"], start="19:30", end="20:30", headcount="30")
    assert resp.status_code == 422
    page = text(resp)
    assert field_errors(page, "headcount") == ["This venue takes at most 10 people."]
    assert field_errors(page, "start") == [
        "Bookings here start and end on 60-minute slots (e.g. 19:00)."
    ]
    resp = post_book(client, w["court"], start="19:00", end="19:00")
    assert field_errors(text(resp), "end") == ["The end must be after the start."]
    resp = post_book(client, w["court"], start="7pm")
    assert field_errors(text(resp), "start") == ["Use a time like 19:00."]
    assert bookings(db) == []


def test_a_conflict_shows_the_occupied_time_and_alternatives_that_prefill(client, db, w):
    en(client, "booker")
    assert post_book(client, w["single"]).status_code == 303
    other = client.application.test_client()
    en(other, "booker3")
    resp = post_book(other, w["single"], purpose="practice")
    assert resp.status_code == 409
    page = text(resp)
    assert "Not enough free units" in page
    intervals = re.search(r'id="conflict-intervals">(.*?)</ul>', page, re.S).group(1)
    assert "19:00–20:00 · occupied" in intervals and "邮政团支部" not in page
    windows = re.findall(r'class="btn btn-sm btn-outline-success alt-window" href="([^"]+)"', page)
    assert windows
    assert "20:00–21:00" in page  # the nearest free hour the same day
    venues = re.findall(r'alt-venue" data-venue-id="(\d+)" href="([^"]+)"', page)
    assert [int(v) for v, _ in venues] == [w["near"].id]
    # One click pre-fills the form with the proposed window and the rest of the request.
    filled = text(other.get(html.unescape(windows[0])))
    assert input_value(filled, "date") == DAY.isoformat()
    # Same day, nearest first (an hour earlier and an hour later tie: earlier first).
    assert (input_value(filled, "start"), input_value(filled, "end")) == ("18:00", "19:00")
    assert "practice" in filled
    there = text(other.get(html.unescape(venues[0][1])))
    assert input_value(there, "start") == "19:00" and input_value(there, "end") == "20:00"
    assert "邮政乒乓球室" in there
    # Submitting the alternative books it.
    assert post_book(other, w["near"]).status_code == 303
    assert len(bookings(db)) == 2


def test_a_conflict_as_json_for_scripts(client, w):
    en(client, "booker")
    post_book(client, w["single"])
    other = client.application.test_client()
    en(other, "booker3")
    resp = other.post(
        f"/venues/{w['single'].id}/book",
        data={"date": DAY.isoformat(), "start": "19:00", "end": "20:00", "units": "1"},
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "conflict"
    (conflict,) = error["conflicts"]
    assert datetime.fromisoformat(conflict["start"]) == local(DAY, "19:00")
    assert datetime.fromisoformat(conflict["end"]) == local(DAY, "20:00")
    assert (conflict["units"], conflict["group"]) == (1, None)  # never who, to outsiders
    assert [datetime.fromisoformat(t) for t in error["alternatives"]["windows"][0]] == [
        local(DAY, "18:00"),
        local(DAY, "19:00"),
    ]
    assert [v["id"] for v in error["alternatives"]["venues"]] == [w["near"].id]
    resp = other.post(
        f"/venues/{w['single'].id}/book",
        data={"date": DAY.isoformat(), "start": "19:30", "end": "20:30", "units": "1"},
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 422
    assert "60-minute slots" in resp.get_json()["error"]["fields"]["start"]


def test_secretary_books_for_a_caller(client, db, w):
    en(client, "sec")
    page = text(client.get(f"/venues/{w['court'].id}"))
    assert 'name="group"' in page and "邮政团支部" in page
    resp = post_book(client, w["court"], group=str(w["g_other"].id))
    assert resp.status_code == 303
    (b,) = bookings(db)
    assert b.group_id == w["g_other"].id and b.entered_by_id == w["sec"].id
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "booking.create")).one()
    assert '"proxy": true' in entry.details
    # Without a group the form says so at the field.
    resp = post_book(client, w["court"], start="20:00", end="21:00")
    assert field_errors(text(resp), "group") == ["Choose the group the booking is for."]


def test_a_booker_has_no_group_picker(client, w):
    en(client, "booker")
    assert 'name="group"' not in text(client.get(f"/venues/{w['court'].id}"))


def test_a_weekly_series_all_or_nothing_then_skipping_conflicts(client, db, w):
    en(client, "booker3")
    post_book(client, w["single"], day=DAY + timedelta(days=7))
    en(client, "booker")
    resp = post_book(client, w["single"], repeat="weekly", count="3", policy="all_or_nothing")
    assert resp.status_code == 409
    page = text(resp)
    assert "1 of 3 dates cannot be booked; nothing was booked." in page
    assert len(bookings(db)) == 1
    resp = post_book(client, w["single"], repeat="weekly", count="3", policy="skip_conflicts")
    assert resp.status_code == 303
    page = text(client.get("/bookings/"))
    assert "2 of 3 dates booked at 移动乒乓球室." in page
    assert f"Not booked: {(DAY + timedelta(days=7)).isoformat()} 19:00" in page
    assert len(bookings(db)) == 3
    resp = post_book(client, w["single"], start="08:00", end="09:00", repeat="weekly")
    assert field_errors(text(resp), "count") == [
        "Give either the number of dates or the last date."
    ]


def test_the_skipped_hour_of_a_clock_change_is_refused(client, db, make):
    london = ZoneInfo("Europe/London")
    committee = make.committee(slug="london", timezone="Europe/London", with_streets=False)
    unit = make.unit(committee, "Unit")
    make.booker(make.group(committee, unit, "Group"), username="uk-booker")
    venue = make.venue(unit, name="Hall", hours="Mon-Sun 00:00-24:00", max_days_ahead=365)
    # The next last Sunday of March: clocks go from 01:00 to 02:00.
    year = datetime.now(london).year + (1 if datetime.now(london).month > 3 else 0)
    gap = max(date(year, 3, d) for d in range(25, 32) if date(year, 3, d).weekday() == 6)
    en(client, "uk-booker")
    resp = post_book(client, venue, day=gap, start="01:00", end="02:00")
    assert resp.status_code == 422
    assert field_errors(text(resp), "start") == [
        f"01:00 does not exist on {gap.isoformat()}: the clocks go forward that night."
        " Please choose another time."
    ]
    assert bookings(db) == []


# ---------------------------------------------------------------- the owner's queue


def test_owner_confirms_and_declines_requests(client, db, w):
    booker = client.application.test_client()
    en(booker, "booker")
    assert post_book(booker, w["hall"]).status_code == 303
    assert "Request sent" in text(booker.get("/bookings/"))
    post_book(booker, w["hall"], start="20:00", end="21:00")
    first, second = bookings(db)
    assert first.status == second.status == "pending"
    en(client, "sec")
    page = text(client.get("/bookings/requests"))
    assert page.count('class="confirm-form"') == 2 and "邮政团支部" in page
    assert client.post(f"/bookings/{first.id}/confirm").status_code == 303
    resp = client.post(f"/bookings/{second.id}/decline", data={"reason": " "})
    assert resp.status_code == 303
    assert "Please give a reason for declining." in text(client.get("/bookings/requests"))
    assert [b.status for b in bookings(db)] == ["confirmed", "pending"]
    client.post(f"/bookings/{second.id}/decline", data={"reason": "maintenance"})
    assert [b.status for b in bookings(db)] == ["confirmed", "declined"]
    assert bookings(db)[1].status_reason == "maintenance"


def test_owner_checks_in_and_marks_no_show_today(client, db, w):
    # Two bookings under way now (written directly: the engine refuses to book the past).
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    for group in ("g_other", "g_third"):
        b = Booking(
            venue_id=w["court"].id,
            group_id=w[group].id,
            start_at=now - timedelta(minutes=5),
            end_at=now + timedelta(minutes=55),
            status="confirmed",
        )
        db.add(b)
        db.flush()
        ids.append(b.id)
    db.commit()
    en(client, "sec")
    page = text(client.get("/bookings/requests"))
    today = re.search(r'id="today">(.*?)</ul>', page, re.S).group(1)
    assert all(f'data-booking-id="{i}"' in today for i in ids)
    assert today.count(">Check in<") == 2
    assert client.post(f"/bookings/{ids[0]}/check-in").status_code == 303
    assert client.post(f"/bookings/{ids[1]}/check-in", data={"no_show": "1"}).status_code == 303
    assert [x.status for x in bookings(db)] == ["completed", "no_show"]
    assert ">Check in<" not in text(client.get("/bookings/requests"))
    # Not before its time: a booking two days ahead cannot be marked no-show.
    en(client, "booker")
    post_book(client, w["court"])
    later = bookings(db)[-1]
    en(client, "sec")
    client.post(f"/bookings/{later.id}/check-in", data={"no_show": "1"})
    assert "Too early" in text(client.get("/bookings/requests"))
    assert bookings(db)[-1].status == "confirmed"


# ---------------------------------------------------------------- my bookings


def test_cancel_and_reschedule_from_my_bookings(client, db, w):
    en(client, "booker")
    post_book(client, w["court"])
    (b,) = bookings(db)
    page = text(client.get("/bookings/"))
    assert f'action="/bookings/{b.id}/cancel"' in page
    form = text(client.get(f"/bookings/{b.id}/reschedule"))
    assert input_value(form, "start") == "19:00"
    resp = client.post(
        f"/bookings/{b.id}/reschedule",
        data={"date": DAY.isoformat(), "start": "21:00", "end": "22:00"},
    )
    assert resp.status_code == 303
    assert "Moved to" in text(client.get("/bookings/"))
    (b,) = bookings(db)
    assert b.start_at == local(DAY, "21:00") and b.status == "confirmed"
    # Outside opening hours: refused at the field, nothing moves.
    resp = client.post(
        f"/bookings/{b.id}/reschedule",
        data={"date": DAY.isoformat(), "start": "22:00", "end": "23:00"},
    )
    assert resp.status_code == 422
    assert "Outside opening hours" in " ".join(field_errors(text(resp), "start"))
    assert bookings(db)[0].start_at == local(DAY, "21:00")
    resp = client.post(
        f"/bookings/{b.id}/cancel", data={"reason": "rain", "scope": "one", "confirmed": "1"}
    )
    assert resp.status_code == 303
    assert "1 booking(s) cancelled." in text(client.get("/bookings/"))
    (b,) = bookings(db)
    assert b.status == "cancelled" and b.status_reason == "rain"


def test_reschedule_into_a_taken_slot_shows_alternatives(client, db, w):
    en(client, "booker3")
    post_book(client, w["single"], start="20:00", end="21:00")
    en(client, "booker")
    post_book(client, w["single"])
    mine = [b for b in bookings(db) if b.group_id == w["g_other"].id][0]
    resp = client.post(
        f"/bookings/{mine.id}/reschedule",
        data={"date": DAY.isoformat(), "start": "20:00", "end": "21:00"},
    )
    assert resp.status_code == 409
    page = text(resp)
    link = re.search(r'alt-window" href="([^"]+)"', page).group(1)
    assert f"/bookings/{mine.id}/reschedule?" in link
    assert bookings(db)[1].start_at == local(DAY, "19:00")


def test_cancel_this_and_following_of_a_series(client, db, w):
    en(client, "booker")
    post_book(client, w["court"], repeat="daily", count="3")
    series = bookings(db)
    assert len(series) == 3
    resp = client.post(
        f"/bookings/{series[1].id}/cancel",
        data={"reason": "", "scope": "following", "confirmed": "1"},
    )
    assert resp.status_code == 303
    assert [b.status for b in bookings(db)] == ["confirmed", "cancelled", "cancelled"]


def test_secretary_sees_its_units_groups_bookings(client, w):
    booker = client.application.test_client()
    en(booker, "booker")
    post_book(booker, w["court"])
    en(client, "sec-other")
    assert "移动羽毛球馆" in text(client.get("/bookings/"))
    other = client.application.test_client()
    en(other, "booker3")
    assert "移动羽毛球馆" not in text(other.get("/bookings/"))


# ---------------------------------------------------------------- permissions


def test_permissions(client, db, w):
    en(client, "booker")
    post_book(client, w["court"])
    (b,) = bookings(db)
    other = client.application.test_client()
    en(other, "booker3")
    assert other.post(f"/bookings/{b.id}/cancel", data={"reason": "x"}).status_code == 404
    assert other.get(f"/bookings/{b.id}/reschedule").status_code == 404
    assert other.post(f"/bookings/{b.id}/confirm").status_code == 404
    assert other.get("/bookings/requests").status_code == 403
    assert other.get(f"/venues/{w['court'].id}/calendar").status_code == 403
    assert client.post(f"/bookings/{b.id}/confirm").status_code == 403
    # Booking for another group than one's own.
    resp = post_book(other, w["court"], start="08:00", end="09:00", group=str(w["g_other"].id))
    assert resp.status_code == 303  # a booker's group comes from the account, not the form
    assert bookings(db)[-1].group_id == w["g_third"].id
    assert bookings(db)[0].status == "confirmed"
    # Anonymous: the form page asks to log in.
    anon = client.application.test_client()
    assert anon.post(f"/venues/{w['court'].id}/book", data={}).status_code == 302
    assert anon.get("/bookings/").status_code == 302


def test_owners_calendar_shows_who(client, w):
    booker = client.application.test_client()
    en(booker, "booker")
    post_book(booker, w["court"], purpose="tournament")
    en(client, "sec")
    page = text(client.get(f"/venues/{w['court'].id}/calendar?week={DAY.isoformat()}"))
    assert "邮政团支部" in page and "tournament" in page
    assert 'title="邮政团支部"' in page
    assert f'data-date="{DAY.isoformat()}"' in page


# ---------------------------------------------------------------- notifications


def test_notifications_are_shown_and_marked_read(client, db, w):
    booker = client.application.test_client()
    en(booker, "booker")
    post_book(booker, w["hall"])
    post_book(booker, w["hall"], start="20:00", end="21:00")
    first, second = bookings(db)
    en(client, "sec")
    client.post(f"/bookings/{first.id}/confirm")
    client.post(f"/bookings/{second.id}/decline", data={"reason": "maintenance"})
    page = text(booker.get("/notifications"))
    assert re.search(r'id="unread-badge">2<', page)
    assert f"Your booking of 移动报告厅 on {DAY.isoformat()} 19:00 is confirmed." in page
    assert (
        f"Your request for 移动报告厅 on {DAY.isoformat()} 20:00 was declined: maintenance" in page
    )
    reload(db)
    note = db.scalars(select(Notification).where(Notification.kind == "confirmed")).one()
    booker.post(f"/notifications/{note.id}/read")
    page = text(booker.get("/notifications"))
    assert re.search(r'id="unread-badge">1<', page)
    booker.post("/notifications/read")
    page = text(booker.get("/notifications"))
    assert "unread-badge" not in page
    reload(db)
    mine = select(Notification).where(Notification.group_id.is_not(None))
    assert all(n.read_at is not None for n in db.scalars(mine))
    # Another group sees none of them.
    other = client.application.test_client()
    en(other, "booker3")
    assert "maintenance" not in text(other.get("/notifications"))


def test_notifications_in_chinese(client, w):
    booker = client.application.test_client()
    login(booker, "booker")
    post_book(booker, w["hall"])
    en(client, "sec")
    b = bookings_of(client)
    client.post(f"/bookings/{b}/confirm")
    assert "移动报告厅" in text(booker.get("/notifications"))


def bookings_of(client: Any) -> int:
    page = text(client.get("/bookings/requests"))
    return int(re.search(r'data-booking-id="(\d+)"', page).group(1))


class SmtpStub:
    """A tiny SMTP server on a loopback port that keeps what it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.messages: list[tuple[list[str], bytes]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as rf:
                conn.sendall(b"220 stub\r\n")
                rcpt: list[str] = []
                while line := rf.readline():
                    cmd = line.decode().strip().upper()
                    if cmd.startswith(("EHLO", "HELO")):
                        conn.sendall(b"250 stub\r\n")
                    elif cmd.startswith("RCPT"):
                        rcpt.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                        conn.sendall(b"250 ok\r\n")
                    elif cmd == "DATA":
                        conn.sendall(b"354 go\r\n")
                        body = b""
                        while (chunk := rf.readline()) not in (b".\r\n", b""):
                            body += chunk
                        self.messages.append((rcpt, body))
                        rcpt = []
                        conn.sendall(b"250 queued\r\n")
                    elif cmd == "QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


def test_notices_are_e_mailed_when_smtp_is_configured(client, app, w):
    import email
    from email.policy import default

    stub = SmtpStub()
    try:
        app.config.update(MAPSERVICE_SMTP_HOST="127.0.0.1", MAPSERVICE_SMTP_PORT=stub.port)
        booker = client.application.test_client()
        en(booker, "booker")
        post_book(booker, w["hall"])
        assert stub.messages == []  # a request is not a notice
        en(client, "sec")
        client.post(f"/bookings/{bookings_of(client)}/confirm")
        (to, raw), *rest = stub.messages
        assert rest == [] and to == ["post@example.com"]
        msg = email.message_from_bytes(raw, policy=default)
        assert "移动报告厅" in msg.get_content() and "移动报告厅" in msg["Subject"]
        # A refused decline (no reason) rolls back and sends nothing.
        post_book(booker, w["hall"], start="20:00", end="21:00")
        client.post(f"/bookings/{bookings_of(client)}/decline", data={"reason": ""})
        assert len(stub.messages) == 1
    finally:
        stub.close()


# ---------------------------------------------------------------- iCalendar feeds


def test_ical_feeds_list_the_bookings_and_revoked_ones_404(client, db, w):
    en(client, "booker")
    post_book(client, w["court"], purpose="tournament")
    post_book(client, w["court"], start="20:00", end="21:00", units="2")
    page = text(client.post("/feeds/", data={"target": f"group:{w['g_other'].id}"}))
    url = re.search(r'value="(http[^"]+\.ics)"', page).group(1)
    path = url.split("localhost", 1)[1]
    resp = client.application.test_client().get(path)  # no log-in needed
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    cal = Calendar.from_ical(resp.data)
    events = cal.walk("VEVENT")
    assert [e.decoded("dtstart") for e in events] == [local(DAY, "19:00"), local(DAY, "20:00")]
    assert str(events[0]["summary"]).startswith("移动羽毛球馆")
    assert str(events[0]["description"]) == "tournament"
    # Only the hash is stored.
    token = db.scalars(select(FeedToken)).one()
    assert token.token_hash not in path and len(token.token_hash) == 64
    # A booker may not feed a venue (it would show other groups' names).
    assert client.post("/feeds/", data={"target": f"venue:{w['court'].id}"}).status_code == 403
    assert client.post("/feeds/", data={"target": f"group:{w['g_third'].id}"}).status_code == 404
    # Revoked: 404.
    assert client.post(f"/feeds/{token.id}/revoke").status_code == 303
    assert client.application.test_client().get(path).status_code == 404
    assert client.get("/feeds/not-a-token.ics").status_code == 404


def test_a_venue_feed_for_its_owner_names_the_groups(client, w):
    booker = client.application.test_client()
    en(booker, "booker")
    post_book(booker, w["court"])
    en(client, "sec")
    page = text(client.post("/feeds/", data={"target": f"venue:{w['court'].id}"}))
    path = re.search(r'value="http://localhost(/feeds/[^"]+\.ics)"', page).group(1)
    cal = Calendar.from_ical(client.get(path).data)
    (event,) = cal.walk("VEVENT")
    assert str(event["summary"]).startswith("邮政团支部")
    assert "移动羽毛球馆" in str(cal["x-wr-calname"])


# ---------------------------------------------------------------- the expiry command


def test_cli_expires_holds_that_ran_out(client, db, w, database_url, tmp_path):
    en(client, "booker")
    post_book(client, w["hall"])
    (b,) = bookings(db)
    b.hold_expires_at = datetime.now(UTC) - timedelta(minutes=1)
    db.commit()
    result = Cli(database_url, tmp_path)("bookings", "expire")
    assert result.exit_code == 0, result.output
    assert "expired 1 pending request(s)" in result.output
    (b,) = bookings(db)
    assert b.status == "declined" and b.status_reason == "expired"
    kinds = db.scalars(select(Notification.kind).order_by(Notification.id)).all()
    assert kinds == ["new_request", "expired"]
    assert Cli(database_url, tmp_path)("bookings", "expire").output.startswith("expired 0")


def test_user_create_takes_an_e_mail(db, w, database_url, tmp_path):
    cli = Cli(database_url, tmp_path)
    result = cli(
        "user", "create", "--username", "mailer", "--role", "booker",
        "--group", "邮政团支部", "--email", "m@example.com", "--password", "correct-horse-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    reload(db)
    assert db.scalars(select(User.email).where(User.username == "mailer")).one() == "m@example.com"
