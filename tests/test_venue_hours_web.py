"""Opening hours on the venue form through real HTTP (issue 16, defects 2 and 7): a new venue's
form holds a real default week (not a grey placeholder), a published venue with no hours is
refused, a venue without hours is pointed out to its managers on its page and in the list,
and an overlap is reported on the day it was entered, in the user's language."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from mapservice.booking import engine
from mapservice.models import OpeningHours, User, Venue
from tests.conftest import login, reload
from tests.test_registry_web import form_data

TZ = ZoneInfo("Asia/Shanghai")
NO_HOURS = {f"hours_{d}": "" for d in range(7)}


@pytest.fixture
def world(make: Any) -> dict[str, Any]:
    committee = make.committee()
    unit_a, unit_b = make.unit(committee, "单位甲"), make.unit(committee, "单位乙")
    group = make.group(committee, unit_b, "乙团支部")
    make.admin(committee, username="admin")
    make.secretary(unit_a, username="sec-a")
    make.secretary(unit_b, username="sec-b")
    make.booker(group, username="booker")
    return {"committee": committee, "unit_a": unit_a, "group": group}


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    assert tag, name
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return value.group(1) if value else None


def venue_count(db: Any) -> int:
    reload(db)
    return int(db.scalar(select(func.count(Venue.id))))


def test_new_venue_form_holds_a_real_default_week(client, db, world):
    """The hours are values that will be saved, not a placeholder that looks like one."""
    login(client, "sec-a")
    page = client.get("/venues/new").get_data(as_text=True)
    assert [input_value(page, f"hours_{d}") for d in range(7)] == ["09:00-21:00"] * 7
    assert "默认" in page  # the hint says they are a default to change
    # An emptied day says what it means (closed), not a grey time that looks like a value.
    assert 'placeholder="09:00-21:00"' not in page and page.count('placeholder="闭馆"') == 7


def test_saving_the_prefilled_form_gives_a_bookable_venue(client, db, world, wdb):
    login(client, "sec-a")
    page = client.get("/venues/new").get_data(as_text=True)
    hours = {f"hours_{d}": input_value(page, f"hours_{d}") for d in range(7)}
    resp = client.post("/venues/new", data=form_data(**hours))
    assert resp.status_code == 302
    reload(db)
    venue = db.scalars(select(Venue).where(Venue.name == "新场地")).one()
    assert venue.hours_text == "Mon-Sun 09:00-21:00"
    # A booker of another unit can book it at 19:00 in three days.
    day = (datetime.now(TZ) + timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, 19, tzinfo=TZ)
    user = wdb.scalars(select(User).where(User.username == "booker")).one()
    booking = engine.book(wdb, user, venue.id, world["group"].id, start, start + timedelta(hours=1))
    wdb.commit()
    assert booking.status == "confirmed"


@pytest.mark.parametrize("lang, text", [("zh", "没有开放时间"), ("en", "no opening hours")])
def test_a_published_venue_without_hours_is_refused(client, db, world, lang, text):
    login(client, "sec-a")
    before = venue_count(db)
    resp = client.post(f"/venues/new?lang={lang}", data=form_data(**NO_HOURS))
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    feedback = re.search(r'data-field="hours">([^<]*)<', page)
    assert feedback and text in feedback.group(1), page
    assert venue_count(db) == before


def test_an_unpublished_draft_without_hours_is_saved_with_a_warning(client, db, world):
    login(client, "sec-a")
    resp = client.post(
        "/venues/new", data=form_data(name="草稿场地", published="<drop>", **NO_HOURS)
    )
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "没有开放时间" in page and 'id="no-hours-warning"' in page
    reload(db)
    venue = db.scalars(select(Venue).where(Venue.name == "草稿场地")).one()
    assert venue.hours == [] and not venue.published


def test_managers_are_warned_of_a_published_venue_without_hours(client, db, world, make):
    """Venues saved before the fix (or written by other means) may have none: their managers
    see it on the venue's page and in the list; bookers and the public do not."""
    venue = make.venue(world["unit_a"], name="甲羽毛球馆")
    make.venue(world["unit_a"], name="甲会议室", type="meeting_room")
    db.execute(delete(OpeningHours).where(OpeningHours.venue_id == venue.id))
    db.commit()
    for who in ("sec-a", "admin"):
        login(client, who)
        page = client.get(f"/venues/{venue.id}").get_data(as_text=True)
        assert 'id="no-hours-warning"' in page and "没有开放时间" in page
        listing = client.get("/venues/").get_data(as_text=True)
        row = re.search(rf'<tr data-venue-id="{venue.id}".*?</tr>', listing, re.S)
        assert row and "no-hours" in row.group(0) and "无开放时间" in row.group(0)
        other = re.search(r'<tr data-venue-id="\d+">(?:(?!</tr>).)*甲会议室.*?</tr>', listing, re.S)
        assert other and "no-hours" not in other.group(0)
        client.post("/logout")
    for who in ("booker", "sec-b", None):
        if who:
            login(client, who)
        page = client.get(f"/venues/{venue.id}").get_data(as_text=True)
        assert 'id="no-hours-warning"' not in page
        assert "no-hours" not in client.get("/venues/").get_data(as_text=True)
        client.post("/logout")


@pytest.mark.parametrize(
    "lang, day_field, day_text, wrong",
    [("zh", "hours_2", "周三 11:00-14:00", "Mon"), ("en", "hours_4", "Friday 11:00-14:00", "Mon ")],
)
def test_an_overlap_is_reported_on_its_own_day(client, db, world, lang, day_field, day_text, wrong):
    login(client, "sec-a")
    before = venue_count(db)
    resp = client.post(
        f"/venues/new?lang={lang}", data=form_data(**{day_field: "09:00-12:00, 11:00-14:00"})
    )
    assert resp.status_code == 422
    feedback = re.search(rf'data-field="{day_field}">([^<]*)<', resp.get_data(as_text=True))
    assert feedback and day_text in feedback.group(1)
    assert wrong not in feedback.group(1)
    assert venue_count(db) == before
