"""Issue 19, item 6, in headless Chromium on a phone-sized screen (390x844), in Chinese: a
unit secretary answers a call, opens the phone booking screen from the menu, finds none of
its unit's venues free, looks at any venue, and books another unit's venue for a caller
without a group (a request); that unit's secretary sees the new request as a notice and the
caller (name, phone) in its queue, and confirms it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from mapservice.booking import engine as booking_engine
from mapservice.models import Booking, User
from tests.browser import chromium, live_server
from tests.test_booking_journeys_browser import click, no_errors
from tests.test_browser_registry import log_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium(500, 844) as chrome:
        chrome.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
        )
        yield chrome


@pytest.fixture
def site(app: Any, driver: Any) -> Iterator[str]:
    app.config["WTF_CSRF_ENABLED"] = True
    with live_server(app) as base:
        yield base
    driver.delete_all_cookies()


def test_a_phone_request_to_another_unit_reaches_its_secretary(site, driver, db, wdb, make):
    committee = make.committee()
    unit_a, unit_b = make.unit(committee, "移动公司"), make.unit(committee, "邮政公司")
    group_a = make.group(committee, unit_a, "移动团支部")
    make.secretary(unit_a, username="sec-a")
    make.secretary(unit_b, username="sec-b")
    rules = {"hours": "Mon-Sun 08:00-22:00", "min_notice_minutes": 0, "capacity_units": 1}
    own = make.venue(unit_a, name="移动会议室", **rules)
    theirs = make.venue(unit_b, name="邮政羽毛球馆", requires_approval=True, **rules)
    day = datetime.now(TZ).date() + timedelta(days=2)
    start = datetime(day.year, day.month, day.day, 19, tzinfo=TZ)
    # The unit's own venue is taken at 19:00: none of its venues is free then.
    sec_a = wdb.scalars(select(User).where(User.username == "sec-a")).one()
    booking_engine.book(wdb, sec_a, own.id, group_a.id, start, start + timedelta(hours=1))
    wdb.commit()
    wait = WebDriverWait(driver, 10)

    log_in(driver, site, "sec-a")
    click(driver, driver.find_element(By.CSS_SELECTOR, ".navbar-toggler"))
    click(driver, wait.until(EC.element_to_be_clickable((By.ID, "whoami"))))
    click(driver, wait.until(EC.element_to_be_clickable((By.ID, "nav-phone"))))
    wait.until(EC.presence_of_element_located((By.ID, "phone-window")))
    driver.execute_script(
        "document.getElementById('date').value = arguments[0];"
        "document.getElementById('start').value = '19:00';"
        "document.getElementById('end').value = '20:00';",
        day.isoformat(),
    )
    click(driver, driver.find_element(By.ID, "phone-show"))
    wait.until(EC.presence_of_element_located((By.ID, "none-free")))
    click(driver, driver.find_element(By.ID, "phone-any-venue"))
    row = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, f"[data-venue-id='{theirs.id}']"))
    )
    driver.find_element(By.ID, "caller_name").send_keys("王小明")
    driver.find_element(By.ID, "caller_phone").send_keys("138 0000 1234")
    click(driver, row.find_element(By.CSS_SELECTOR, "button.phone-book"))
    alert = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".alert-success")))
    assert "已为王小明（138 0000 1234）提交申请" in alert.text
    no_errors(driver)
    db.rollback()
    booking = db.scalars(select(Booking).where(Booking.venue_id == theirs.id)).one()
    assert (booking.status, booking.caller_name) == ("pending", "王小明")

    driver.delete_all_cookies()
    log_in(driver, site, "sec-b")
    assert driver.find_element(By.ID, "unread-badge").get_attribute("textContent") == "1"
    driver.get(f"{site}/notifications")
    note = driver.find_element(By.CSS_SELECTOR, "[data-kind='new_request']")
    assert (
        "新的预约申请：邮政羽毛球馆" in note.text and "来电人：王小明，138 0000 1234" in note.text
    )
    driver.get(f"{site}/bookings/requests")
    item = driver.find_element(By.CSS_SELECTOR, f"#pending [data-booking-id='{booking.id}']")
    assert "来电人：王小明，138 0000 1234" in item.text
    click(driver, item.find_element(By.CSS_SELECTOR, ".confirm-form button"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".alert-success")))
    no_errors(driver)
    db.rollback()
    assert db.get(Booking, booking.id).status == "confirmed"
