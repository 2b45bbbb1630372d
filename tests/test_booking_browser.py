"""In headless Chromium: a booker finds a venue on the map, books a free slot from the venue
page and sees it in "my bookings"; another booker trying the same slot (capacity 1) is refused
with alternatives, and one click on an alternative books it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from mapservice.models import Booking
from tests.browser import chromium, live_server
from tests.conftest import reload
from tests.test_browser_registry import log_in

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def browser_app(app: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def click(driver: Any, element: Any) -> None:
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    element.click()


def test_book_from_the_map_then_a_second_booker_gets_alternatives(browser_app, db, make):
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    unit_a, unit_b = make.unit(committee, "邮政公司"), make.unit(committee, "华电公司")
    make.booker(make.group(committee, unit_a, "邮政团支部"), username="booker-a")
    make.booker(make.group(committee, unit_b, "华电团支部"), username="booker-b")
    room = make.venue(owner, name="移动乒乓球室", type="table_tennis", capacity_units=1)
    near = make.venue(
        unit_a, name="邮政乒乓球室", type="table_tennis", capacity_units=1, lon=119.43, lat=32.2
    )
    day = (datetime.now(TZ) + timedelta(days=2)).date().isoformat()
    with live_server(browser_app) as base, chromium(1280, 900) as driver:
        wait = WebDriverWait(driver, 10)
        log_in(driver, base, "booker-a")
        # Find the venue on the map: its list entry opens the popup, whose link books it.
        driver.get(f"{base}/map?lang=en")
        wait.until(
            lambda d: d.execute_script(
                "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
            )
        )
        click(
            driver,
            driver.find_element(By.CSS_SELECTOR, f"#venue-list li[data-venue-id='{room.id}']"),
        )
        popup = wait.until(
            lambda d: d.find_element(By.CSS_SELECTOR, f".venue-popup[data-venue-id='{room.id}']")
        )
        popup.find_element(By.CLASS_NAME, "popup-book").click()
        wait.until(lambda d: d.current_url.endswith(f"/venues/{room.id}#book"))
        assert driver.find_element(By.ID, "book-form").is_displayed()
        # Pick the free 19:00 slot in the week view: it fills the form; book it.
        slot = driver.find_element(
            By.CSS_SELECTOR, f".week-day[data-date='{day}'] a.slot[data-start='19:00']"
        )
        assert slot.get_attribute("data-state") == "free"
        click(driver, slot)
        wait.until(lambda d: d.find_element(By.ID, "start").get_attribute("value") == "19:00")
        assert driver.find_element(By.ID, "date").get_attribute("value") == day
        click(driver, driver.find_element(By.ID, "book-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
        assert driver.current_url.endswith("/bookings/")
        assert "units 1" in driver.find_element(By.CSS_SELECTOR, ".alert-success").text
        row = driver.find_element(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
        assert "移动乒乓球室" in row.text and f"{day} 19:00–20:00" in row.text

        # A second booker, the same slot: refused, with the occupied time and alternatives.
        driver.delete_all_cookies()
        log_in(driver, base, "booker-b")
        driver.get(f"{base}/venues/{room.id}?lang=en#book")
        full = driver.find_element(
            By.CSS_SELECTOR, f".week-day[data-date='{day}'] .slot[data-start='19:00']"
        )
        assert full.get_attribute("data-state") == "full" and full.tag_name == "span"
        assert "邮政团支部" not in driver.page_source  # outsiders see only "occupied"
        driver.execute_script(
            "var f = document.getElementById('book-form');"
            " f.elements.date.value = arguments[0]; f.elements.start.value = '19:00';"
            " f.elements.end.value = '20:00';",
            day,
        )
        click(driver, driver.find_element(By.ID, "book-submit"))
        conflict = wait.until(EC.visibility_of_element_located((By.ID, "book-conflict")))
        assert "occupied" in driver.find_element(By.ID, "conflict-intervals").text
        windows = conflict.find_elements(By.CSS_SELECTOR, "a.alt-window")
        venues = conflict.find_elements(By.CSS_SELECTOR, "a.alt-venue")
        assert windows and [v.get_attribute("data-venue-id") for v in venues] == [str(near.id)]
        # One click on the nearby venue fills its form with the same time; book it there.
        click(driver, venues[0])
        wait.until(lambda d: d.find_element(By.ID, "venue-name").text.endswith("邮政乒乓球室"))
        assert driver.find_element(By.ID, "start").get_attribute("value") == "19:00"
        click(driver, driver.find_element(By.ID, "book-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
        assert "邮政乒乓球室" in driver.find_element(By.ID, "upcoming").text
        logs = [
            e
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and e.get("source") != "network"  # 409 is expected
        ]
        assert logs == []
    reload(db)
    booked = db.scalars(select(Booking).order_by(Booking.id)).all()
    assert [(b.venue_id, b.status) for b in booked] == [
        (room.id, "confirmed"),
        (near.id, "confirmed"),
    ]
