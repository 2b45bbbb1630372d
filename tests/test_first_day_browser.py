"""Issue 19's "done when": a new committee's first day in headless Chromium, without the CLI
beyond `db upgrade` and the first admin (here the factory's admin). An organisation applies at
/apply, the admin admits it, the new secretary sets a password through the link, registers a
venue, creates a youth group and a booker account; the booker sets a password and books on a
phone-sized screen; the secretary takes a phone booking for a caller; the admin finds all of it
in /audit. One browser, its screen switched between desktop and phone as the people change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from mapservice.models import AuditEntry, Booking, Group, Unit, User, Venue
from tests.browser import chromium, live_server
from tests.conftest import reload
from tests.test_accounts_browser import NEW_PASSWORD, set_password_and_log_in
from tests.test_booking_journeys_browser import (
    click,
    no_errors,
    not_wider_than_the_screen,
    slot,
)
from tests.test_browser_registry import TARGET, log_in, pick_on_map

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

TZ = ZoneInfo("Asia/Shanghai")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}


def link_shown(driver: Any) -> str:
    field = WebDriverWait(driver, 10).until(
        EC.presence_of_element_located((By.ID, "password-link"))
    )
    return str(field.get_attribute("value"))


def submit(driver: Any, form_id: str) -> None:
    click(driver, driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]"))


def test_a_new_committees_first_day(app: Any, db: Any, make: Any) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    committee = make.committee()
    make.admin(committee, username="admin")
    day = datetime.now(TZ).date() + timedelta(days=2)
    with live_server(app) as site, chromium(1280, 900) as driver:
        wait = WebDriverWait(driver, 10)
        # 1. An organisation applies (a visitor, desktop).
        driver.get(f"{site}/apply")
        driver.find_element(By.ID, "name").send_keys("润州青年律师事务所")
        Select(driver.find_element(By.ID, "kind")).select_by_value("two_new")
        driver.find_element(By.ID, "address").send_keys("润州区南山路8号")
        pick_on_map(driver, TARGET)
        driver.find_element(By.ID, "contact_name").send_keys("李明")
        driver.find_element(By.ID, "phone").send_keys("0511-8888 0001")
        click(driver, driver.find_element(By.ID, "apply-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "applied")))

        # 2. The admin admits it; the page shows the secretary's set-password link.
        log_in(driver, site, "admin")
        driver.get(f"{site}/units/applications")
        card = wait.until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "[data-status=pending]"))
        )
        username = card.find_element(By.CSS_SELECTOR, ".admit-form input[name=username]")
        username.clear()
        username.send_keys("liming")
        click(driver, card.find_element(By.CSS_SELECTOR, ".admit-form button"))
        secretary_link = link_shown(driver)

        # 3. The secretary sets a password and logs in.
        set_password_and_log_in(driver, secretary_link, "liming", "李明")

        # 4. ... registers a venue by clicking the map,
        driver.get(f"{site}/venues/new")
        driver.find_element(By.ID, "name").send_keys("律所会议室")
        Select(driver.find_element(By.ID, "type")).select_by_value("meeting_room")
        pick_on_map(driver, TARGET)
        click(driver, driver.find_element(By.ID, "venue-save"))
        wait.until(EC.presence_of_element_located((By.ID, "venue-name")))
        venue_url = driver.current_url.split("#")[0]

        # 5. ... creates a youth group of its unit and a booker account for it.
        driver.get(f"{site}/groups/new")
        driver.find_element(By.ID, "name").send_keys("律所青年突击队")
        driver.find_element(By.ID, "contact_name").send_keys("赵青")
        driver.find_element(By.ID, "contact_phone").send_keys("0511-8888 0002")
        submit(driver, "group-form")
        wait.until(lambda d: "律所青年突击队" in d.find_element(By.ID, "group-table").text)
        driver.get(f"{site}/users/new")
        driver.find_element(By.ID, "username").send_keys("zhaoqing")
        Select(driver.find_element(By.ID, "role")).select_by_value("booker")
        Select(driver.find_element(By.ID, "group_id")).select_by_visible_text("律所青年突击队")
        driver.find_element(By.ID, "display_name").send_keys("赵青")
        submit(driver, "user-form")
        booker_link = link_shown(driver)
        no_errors(driver)

        # 6. The booker, on a phone, sets a password and books the meeting room.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        set_password_and_log_in(driver, booker_link, "zhaoqing", "赵青")
        driver.get(f"{venue_url}#book")
        click(driver, slot(driver, day.isoformat(), "10:00"))
        click(driver, driver.find_element(By.ID, "book-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
        assert len(rows) == 1 and f"{day.isoformat()} 10:00" in rows[0].text
        assert not_wider_than_the_screen(driver)
        no_errors(driver)

        # 7. The secretary, on a phone too, takes a phone booking for a caller without a group.
        driver.delete_all_cookies()
        driver.get(f"{site}/login")
        driver.find_element(By.ID, "username").send_keys("liming")
        driver.find_element(By.ID, "password").send_keys(NEW_PASSWORD)
        driver.find_element(By.ID, "login-submit").click()
        wait.until(EC.presence_of_element_located((By.ID, "whoami")))
        driver.get(f"{site}/bookings/phone?date={day.isoformat()}&start=11:00&end=12:00")
        row = wait.until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "#free-venues [data-venue-id]"))
        )
        driver.find_element(By.ID, "caller_name").send_keys("王小明")
        driver.find_element(By.ID, "caller_phone").send_keys("138 0000 1234")
        click(driver, row.find_element(By.CSS_SELECTOR, "button.phone-book"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".alert-success")))
        assert not_wider_than_the_screen(driver)
        no_errors(driver)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

        # 8. The admin finds every step in the audit log.
        driver.delete_all_cookies()
        log_in(driver, site, "admin")
        driver.get(f"{site}/audit/")
        table = wait.until(EC.presence_of_element_located((By.ID, "audit-table"))).text
        for seen in ("liming", "zhaoqing", "律所会议室", "律所青年突击队", "王小明"):
            assert seen in table, seen
        no_errors(driver)
    reload(db)
    unit = db.scalars(select(Unit).where(Unit.name == "润州青年律师事务所")).one()
    venue = db.scalars(select(Venue).where(Venue.name == "律所会议室")).one()
    group = db.scalars(select(Group).where(Group.name == "律所青年突击队")).one()
    booker = db.scalars(select(User).where(User.username == "zhaoqing")).one()
    booking, phoned = db.scalars(
        select(Booking).where(Booking.venue_id == venue.id).order_by(Booking.id)
    ).all()
    assert (unit.status, venue.unit_id, group.unit_id) == ("active", unit.id, unit.id)
    assert (booking.group_id, booking.entered_by_id) == (group.id, booker.id)
    secretary = db.scalars(select(User).where(User.username == "liming")).one()
    assert (phoned.status, phoned.entered_by_id) == ("confirmed", secretary.id)
    assert (phoned.caller_name, phoned.caller_phone) == ("王小明", "138 0000 1234")
    actions = set(db.scalars(select(AuditEntry.action)).all())
    assert {
        "unit.admit",
        "venue.create",
        "group.create",
        "user.create",
        "booking.create",
    } <= actions, actions
