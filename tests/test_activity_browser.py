"""Issue 20's journey in headless Chromium on a phone-sized screen (390x844), in Chinese: a
unit secretary opens the year's plan, creates the activity of its turn from the turn's link
(the form prefilled) at its venue (booked through the engine as it is saved), a booker finds
it in the list, signs up two people and sees the sign-up confirmed; the activity is on the one
map's activity layer and in the group's iCalendar feed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from mapservice.booking import feeds
from mapservice.models import Activity, Booking, Plan, PlanEntry, SignUp
from tests.browser import chromium, live_server
from tests.conftest import reload
from tests.test_booking_journeys_browser import click, no_errors, not_wider_than_the_screen
from tests.test_browser_registry import log_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def driver() -> Iterator[Any]:
    with chromium(390, 844) as chrome:
        yield chrome


def test_a_secretary_creates_an_activity_and_a_booker_signs_up_on_a_phone(
    app: Any, driver: Any, make: Any, db: Any
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    committee = make.committee()
    mobile = make.unit(committee, "中国移动镇江分公司")
    group = make.group(committee, mobile, "移动团支部")
    other = make.group(committee, make.unit(committee, "中国邮政镇江分公司"), "邮政团支部")
    make.secretary(mobile, username="sec")
    booker = make.booker(other, username="booker")
    court = make.venue(mobile, name="移动羽毛球馆", capacity_units=2, min_notice_minutes=0)
    day = datetime.now(TZ).date() + timedelta(days=5)
    plan = Plan(committee_id=committee.id, year=day.year, title="活动清单", status="published")
    plan.entries = [
        PlanEntry(period=day.month, unit_id=mobile.id, kind="sports", title="羽毛球友谊赛")
    ]
    db.add(plan)
    db.commit()
    entry_id = plan.entries[0].id
    wait = WebDriverWait(driver, 10)
    with live_server(app) as site:
        log_in(driver, site, "sec")
        # From the plan: the turn's link opens the form with its title, kind and lead unit.
        driver.get(f"{site}/plans/{plan.id}")
        click(driver, driver.find_element(By.CSS_SELECTOR, f"[data-create-activity='{entry_id}']"))
        wait.until(EC.presence_of_element_located((By.ID, "activity-form")))
        assert driver.find_element(By.ID, "title").get_attribute("value") == "羽毛球友谊赛"
        assert (
            Select(driver.find_element(By.ID, "kind")).first_selected_option.get_attribute("value")
            == "sports"
        )
        for field, text in (("date", day.isoformat()), ("start", "19:00"), ("end", "21:00")):
            element = driver.find_element(By.ID, field)
            driver.execute_script("arguments[0].value = arguments[1];", element, text)
        capacity = driver.find_element(By.ID, "capacity")
        capacity.clear()
        capacity.send_keys("8")
        Select(driver.find_element(By.ID, "venue_id")).select_by_value(str(court.id))
        assert not_wider_than_the_screen(driver)
        click(driver, driver.find_element(By.CSS_SELECTOR, "#activity-form button[type=submit]"))
        wait.until(EC.presence_of_element_located((By.ID, "activity-places")))
        assert "活动“羽毛球友谊赛”已保存" in driver.find_element(By.TAG_NAME, "main").text
        reload(db)
        activity = db.scalars(select(Activity)).one()
        assert activity.plan_entry_id == entry_id
        booking = db.get(Booking, activity.booking_id)
        assert booking.status == "confirmed" and booking.group_id == group.id
        driver.delete_all_cookies()

        log_in(driver, site, "booker")
        driver.get(f"{site}/activities/?open=1")
        click(driver, driver.find_element(By.CSS_SELECTOR, f"[data-activity-id='{activity.id}']"))
        form = wait.until(EC.presence_of_element_located((By.ID, "signup-form")))
        headcount = form.find_element(By.ID, "headcount")
        headcount.send_keys("2")
        assert not_wider_than_the_screen(driver)
        click(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
        mine = wait.until(EC.presence_of_element_located((By.ID, "my-signups")))
        assert "邮政团支部" in mine.text and "已确认" in mine.text
        assert "报名成功：2人已确认" in driver.find_element(By.TAG_NAME, "main").text
        assert "已报2人／名额8人" in driver.find_element(By.ID, "activity-places").text
        assert not_wider_than_the_screen(driver)
        no_errors(driver)
        reload(db)
        assert [(s.group_id, s.state) for s in db.scalars(select(SignUp))] == [
            (other.id, "confirmed")
        ]
        # On the one map: the activity layer draws it, with its places taken.
        driver.get(f"{site}/map")
        wait.until(
            lambda d: d.execute_script(
                "var a = window.MapService && MapService.activities; return !!(a && a.ready)"
            )
        )
        assert driver.execute_script("return MapService.activities.ids()") == [activity.id]
        driver.execute_script(
            "MapService.activities.activities.eachLayer(function (l) {"
            " if (l.activityId) l.openPopup(); });"
        )
        # The popup fades in: Selenium reads no text while its opacity is still 0.
        popup = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".activity-popup")))
        wait.until(lambda d: "羽毛球友谊赛" in popup.text)
        assert "羽毛球友谊赛" in popup.text and "2" in popup.text
        no_errors(driver)
        _t, secret = feeds.create_token(db, booker, group_id=other.id)
        db.commit()
        with urlopen(f"{site}/feeds/{secret}.ics") as resp:
            assert "羽毛球友谊赛" in resp.read().decode()
