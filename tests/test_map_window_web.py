"""Issue 16, defects 8 (map part) and 7 (the free-time note): the map's "free between" window
reaches the popup (the venue's availability then, from the booking engine) and the booking
form (the venue page prefilled from the popup's link, bad values dropped quietly); the
filter's note says what "free" means — bookings count."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.booking import engine
from mapservice.models import Closure, Venue
from tests.conftest import login

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def courts(make, wdb) -> dict[str, Any]:
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit, "移动团支部")
    make.venue(unit, name="三片场", capacity_units=3, min_notice_minutes=0)
    make.venue(unit, name="单片场", capacity_units=1, min_notice_minutes=0)
    make.booker(group, username="booker")
    admin = wdb.merge(make.admin(committee, username="admin"))
    day = (datetime.now(TZ) + timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
    venues = {v.name: v for v in wdb.scalars(select(Venue))}
    # 14:00-16:00: two of the three courts taken, the single court taken.
    engine.book(
        wdb, admin, venues["三片场"].id, group.id, start, start + timedelta(hours=2), units=2
    )
    engine.book(wdb, admin, venues["单片场"].id, group.id, start, start + timedelta(hours=1))
    wdb.commit()
    return {"day": day, "three": venues["三片场"], "one": venues["单片场"], "wdb": wdb}


def window(day: Any, start: str, end: str) -> dict[str, str]:
    return {"free_from": f"{day.isoformat()}T{start}", "free_to": f"{day.isoformat()}T{end}"}


def map_config(client: Any, query: dict[str, str]) -> dict[str, Any]:
    page = client.get("/map", query_string={**query, "lang": "en"}).get_data(as_text=True)
    found = re.search(r'<script type="application/json" id="map-config">(.*?)</script>', page, re.S)
    assert found
    return json.loads(html.unescape(found[1]))


def test_the_popup_answers_for_the_filters_window(client, courts):
    day, three, one = courts["day"], courts["three"], courts["one"]
    body = client.get(
        f"/map/venues/{three.id}/popup", query_string=window(day, "14:00", "16:00")
    ).get_json()
    text = f"{day.isoformat()} 14:00–16:00"
    assert body["window"] == {"text": text, "open": True, "free": 1, "total": 3}
    # The hours shown are that day's, named.
    assert (body["hours_day"], body["today"]) == (day.isoformat(), "08:00-22:00")
    body = client.get(
        f"/map/venues/{one.id}/popup", query_string=window(day, "14:00", "16:00")
    ).get_json()
    assert body["window"] == {"text": text, "open": True, "free": 0, "total": 1}
    # Outside the opening hours (08:00-22:00), and in a closure: not open.
    late = client.get(
        f"/map/venues/{one.id}/popup", query_string=window(day, "21:00", "23:00")
    ).get_json()
    assert late["window"]["open"] is False and late["window"]["free"] == 0
    wdb = courts["wdb"]
    start = datetime(day.year, day.month, day.day, 18, tzinfo=TZ)
    wdb.add(Closure(venue_id=three.id, start_at=start, end_at=start + timedelta(hours=1)))
    wdb.commit()
    closed = client.get(
        f"/map/venues/{three.id}/popup", query_string=window(day, "17:00", "19:00")
    ).get_json()
    assert closed["window"]["open"] is False
    # Without a window: no window, and the answer may be cached a minute as before.
    plain = client.get(f"/map/venues/{three.id}/popup")
    assert "window" not in plain.get_json() and "hours_day" not in plain.get_json()
    with_window = client.get(
        f"/map/venues/{three.id}/popup", query_string=window(day, "14:00", "16:00")
    )
    assert with_window.headers["Cache-Control"] == "private, no-cache"


def test_the_map_hands_the_window_to_its_popups_and_booking_links(client, courts):
    day = courts["day"]
    cfg = map_config(client, window(day, "14:00", "16:00"))
    d = day.isoformat()
    assert cfg["window"] == {
        "text": f"{d} 14:00–16:00",
        "query": f"free_from={d}T14%3A00&free_to={d}T16%3A00",
        "book": f"date={d}&start=14%3A00&end=16%3A00&week={d}",
    }
    assert cfg["labels"]["windowFree"] == "%(when)s: %(free)s of %(total)s units free"
    # A window up to midnight ends at 00:00 (the form reads it as midnight); one spanning
    # days carries its date and start only.
    to_midnight = {"free_from": f"{d}T20:00", "free_to": f"{day + timedelta(days=1)}T00:00"}
    assert map_config(client, to_midnight)["window"]["book"] == (
        f"date={d}&start=20%3A00&end=00%3A00&week={d}"
    )
    overnight = {"free_from": f"{d}T20:00", "free_to": f"{day + timedelta(days=1)}T09:00"}
    cfg = map_config(client, overnight)
    assert cfg["window"]["book"] == f"date={d}&start=20%3A00&week={d}"
    assert cfg["window"]["text"] == f"{d} 20:00 – {day + timedelta(days=1)} 09:00"
    assert map_config(client, {})["window"] is None
    # "At least 2 units, 12 people" carry over as the booking's units and headcount.
    asked = {**window(day, "14:00", "16:00"), "min_units": "2", "min_headcount": "12"}
    assert map_config(client, asked)["window"]["book"].endswith("&units=2&headcount=12")


def form_values(page: str) -> dict[str, str]:
    form = page[page.index('id="book-form"') :]
    return {
        name: html.unescape(m[1])
        if (m := re.search(rf'id="{name}"[^>]*value="([^"]*)"', form))
        else ""
        for name in ("date", "start", "end")
    }


def test_the_venue_page_opens_with_the_windows_booking_form_filled(client, courts):
    login(client, "booker")
    d, venue = courts["day"].isoformat(), courts["three"]
    page = client.get(f"/venues/{venue.id}?date={d}&start=14:00&end=16:00&week={d}")
    assert page.status_code == 200
    assert form_values(page.get_data(as_text=True)) == {"date": d, "start": "14:00", "end": "16:00"}
    page = client.get(f"/venues/{venue.id}?date={d}&start=14:00&end=16:00&units=2&headcount=12")
    form = page.get_data(as_text=True)
    form = form[form.index('id="book-form"') :]
    assert re.search(r'id="units"[^>]*value="2"', form) and re.search(
        r'id="headcount"[^>]*value="12"', form
    )
    # The week shown starts on that date.
    assert f'data-date="{d}"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("date=2026-13-45&start=14:00&end=16:00", ("", "", "")),
        ("date=1999-01-01&start=14:00&end=16:00", ("", "", "")),  # in the past
        ("date={d}&start=25:00&end=16:00", ("{d}", "", "16:00")),
        ("date={d}&start=14:00&end=<script>", ("{d}", "14:00", "")),
        ("date={d}&start=16:00&end=14:00", ("{d}", "16:00", "")),  # ends before it starts
        ("date={d}&start=9:30&end=00:00", ("{d}", "09:30", "00:00")),  # 00:00 is midnight
        ("date={d}&start=14:00:00&end=x" + "9" * 3000, ("{d}", "", "")),
    ],
)
@pytest.mark.parametrize("page_path", ["/venues/{id}", "/venues/{id}/book"])
def test_bad_prefill_values_are_dropped_quietly(client, courts, query, expected, page_path):
    """The venue page and the booking page (a slot's or an alternative's link) keep only
    valid values, by one rule."""
    login(client, "booker")
    d = courts["day"].isoformat()
    path = page_path.format(id=courts["three"].id)
    resp = client.get(f"{path}?{query.format(d=d)}")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    want = dict(zip(("date", "start", "end"), (e.format(d=d) for e in expected), strict=True))
    assert form_values(page) == want
    assert "<script>" not in page[page.index('id="book-form"') :]
    assert 'class="invalid-feedback' not in page  # no error shown for a link's bad values


def test_a_visitors_log_in_link_keeps_the_window(client, courts):
    d, venue = courts["day"].isoformat(), courts["three"]
    page = client.get(f"/venues/{venue.id}?date={d}&start=14:00&end=16:00").get_data(as_text=True)
    link = html.unescape(re.search(r'href="([^"]+)" id="book-login-link"', page)[1])
    after = parse_qs(urlsplit(link).query)["next"][0]
    assert after == f"/venues/{venue.id}?date={d}&start=14:00&end=16:00#book"


@pytest.mark.parametrize(
    "lang, says, never",
    [
        ("en", "with enough units not yet booked", "bookings are not yet taken into account"),
        ("zh_CN", "已确认的预约和待审批的申请均计入", "暂未考虑已有预约"),
    ],
)
def test_the_free_time_note_says_bookings_count(client, courts, lang, says, never):
    page = client.get(f"/map?lang={lang}").get_data(as_text=True)
    assert says in page and never not in page
