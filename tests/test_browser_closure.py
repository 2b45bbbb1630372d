"""In headless Chromium, on a desktop and on a phone (issue 16's journey): a unit secretary
registers a venue with the form's default week (real hours, not placeholders); a booker of
another unit books it; the secretary lays a closure over that booking, sees it listed,
confirms cancelling it; the booker finds it cancelled and the notice with the reason."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from mapservice.models import Booking, Closure, Notification, Venue
from tests.browser import chromium, live_server
from tests.conftest import RUNZHOU_POINT, reload
from tests.test_browser_registry import log_in

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Shanghai")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def browser_app(app: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def click(driver: Any, element: Any) -> None:
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    element.click()


def shot(driver: Any, name: str) -> None:
    """Screenshots for a person to look at, when MAPSERVICE_SCREENSHOTS names a folder."""
    folder = os.environ.get("MAPSERVICE_SCREENSHOTS")
    if folder:
        driver.save_screenshot(os.path.join(folder, f"{name}.png"))


def switch_user(driver: Any, base: str, username: str) -> None:
    driver.delete_all_cookies()
    log_in(driver, base, username)


# The phone differs from the desktop in layout only: its journey runs in the SQLite run only
# (conftest.SQLITE_ONLY); the desktop one, over a closure's own queries, on both databases.
@pytest.mark.parametrize("size", ["desktop", pytest.param("phone", marks=pytest.mark.sqlite_only)])
def test_register_book_close_over_the_booking_and_the_booker_is_told(browser_app, db, make, size):
    committee = make.committee()
    owner, other = make.unit(committee, "移动公司"), make.unit(committee, "邮政公司")
    make.secretary(owner, username="sec")
    make.booker(make.group(committee, other, "邮政团支部"), username="booker")
    day = (datetime.now(TZ) + timedelta(days=2)).date().isoformat()
    # The browser closes before the server (its open connections would hold the server up).
    with live_server(browser_app) as base, chromium(*SIZES[size]) as driver:
        wait = WebDriverWait(driver, 10)
        # 1. The secretary registers a venue; the hours are there already, as values.
        switch_user(driver, base, "sec")
        # The page is as wide as the phone (tests/browser.py emulates its viewport).
        assert driver.execute_script("return window.innerWidth") == SIZES[size][0]
        driver.get(f"{base}/venues/new")
        hours = [driver.find_element(By.ID, f"hours_{d}").get_attribute("value") for d in range(7)]
        assert hours == ["09:00-21:00"] * 7
        driver.find_element(By.ID, "name").send_keys("移动公司羽毛球馆")
        Select(driver.find_element(By.ID, "type")).select_by_value("badminton")
        for name, value in (("lon", RUNZHOU_POINT[0]), ("lat", RUNZHOU_POINT[1])):
            driver.find_element(By.ID, name).send_keys(str(value))
        shot(driver, f"closure-1-new-venue-{size}")
        click(driver, driver.find_element(By.ID, "venue-save"))
        wait.until(EC.presence_of_element_located((By.ID, "venue-name")))
        assert not driver.find_elements(By.ID, "no-hours-warning")
        assert "09:00-21:00" in driver.find_element(By.ID, "hours-table").text
        venue_id = int(driver.current_url.rstrip("/").split("/")[-1])

        # 2. A booker of another unit books it at 19:00 from the week view.
        switch_user(driver, base, "booker")
        driver.get(f"{base}/venues/{venue_id}#book")
        slot = driver.find_element(
            By.CSS_SELECTOR, f".week-day[data-date='{day}'] a.slot[data-start='19:00']"
        )
        click(driver, slot)
        wait.until(lambda d: d.find_element(By.ID, "start").get_attribute("value") == "19:00")
        click(driver, driver.find_element(By.ID, "book-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
        assert "移动公司羽毛球馆" in driver.find_element(By.ID, "upcoming").text

        # 3. The secretary closes the venue that evening: the booking is listed first.
        switch_user(driver, base, "sec")
        driver.get(f"{base}/venues/{venue_id}")
        driver.execute_script(
            "var f = document.getElementById('closure-form');"
            " f.elements.start_at.value = arguments[0] + 'T18:00';"
            " f.elements.end_at.value = arguments[0] + 'T22:00';",
            day,
        )
        driver.find_element(By.ID, "reason").send_keys("场馆维修")
        click(driver, driver.find_element(By.ID, "closure-submit"))
        table = wait.until(EC.visibility_of_element_located((By.ID, "closure-hits")))
        (row,) = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert "邮政团支部" in row.text and "已确认" in row.text
        assert f"{day} 19:00–20:00" in row.text and "移动公司羽毛球馆" in row.text
        button = driver.find_element(By.ID, "closure-confirm-submit")
        assert "取消这 1 个预约" in button.text
        shot(driver, f"closure-2-confirm-{size}")
        click(driver, button)
        wait.until(EC.presence_of_element_located((By.ID, "venue-name")))
        assert "场馆维修" in driver.find_element(By.ID, "closures").text
        assert "已取消预约：1 个" in driver.page_source

        # 4. The booker sees it cancelled, and why.
        switch_user(driver, base, "booker")
        driver.get(f"{base}/notifications")
        notices = driver.find_element(By.ID, "notifications").text
        assert "移动公司羽毛球馆" in notices and "场馆维修" in notices
        shot(driver, f"closure-3-notice-{size}")
        driver.get(f"{base}/bookings/")
        past = driver.find_element(By.ID, "past").text
        assert "移动公司羽毛球馆" in past and "已取消" in past
        assert "移动公司羽毛球馆" not in driver.find_element(By.ID, "upcoming").text
        logs = [
            e
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and e.get("source") != "network"  # favicon.ico: 404
        ]
        assert logs == []
    reload(db)
    venue = db.scalars(select(Venue).where(Venue.name == "移动公司羽毛球馆")).one()
    assert venue.hours_text == "Mon-Sun 09:00-21:00"
    (booking,) = db.scalars(select(Booking).where(Booking.venue_id == venue.id)).all()
    assert booking.status == "cancelled"
    assert db.scalar(select(Closure.reason).where(Closure.venue_id == venue.id)) == "场馆维修"
    assert db.scalar(select(Notification.kind).where(Notification.booking_id == booking.id)) == (
        "cancelled_by_owner"
    )
