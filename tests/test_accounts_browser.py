"""Issue 19 in headless Chromium on a phone-sized screen: the admin creates a youth group and
a booker account through the menu, copies the set-password link; the booker opens it, sets a
password and logs in with it. An organisation applies to join at /apply, the admin admits it
and the link it shows sets the new secretary's password."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from mapservice.models import Group, Unit, UnitApplication, User
from tests.browser import chromium, live_server
from tests.conftest import reload
from tests.test_booking_journeys_browser import click, no_errors, not_wider_than_the_screen
from tests.test_browser_registry import TARGET, log_in, pick_on_map

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

NEW_PASSWORD = "qingnian-2026-shezhi"


def menu(driver: Any, link_id: str) -> None:
    """Open the collapsed menu (a phone's), then the account's, and follow one of its links."""
    wait = WebDriverWait(driver, 10)
    toggler = driver.find_element(By.CSS_SELECTOR, ".navbar-toggler")
    if toggler.is_displayed():
        click(driver, toggler)
        wait.until(EC.visibility_of_element_located((By.ID, "whoami")))
    click(driver, driver.find_element(By.ID, "whoami"))
    click(driver, wait.until(EC.visibility_of_element_located((By.ID, link_id))))


def set_password_and_log_in(driver: Any, link: str, username: str, shown: str) -> None:
    """A new visitor (the admin's phone handed over) opens the link, sets the password and
    logs in with it as ``username``, shown in the menu as ``shown``."""
    wait = WebDriverWait(driver, 10)
    driver.delete_all_cookies()
    driver.get(link)
    driver.find_element(By.ID, "password").send_keys(NEW_PASSWORD)
    driver.find_element(By.ID, "confirm").send_keys(NEW_PASSWORD)
    click(driver, driver.find_element(By.CSS_SELECTOR, "#set-password-form button"))
    click(driver, wait.until(EC.element_to_be_clickable((By.ID, "go-login"))))
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(NEW_PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    whoami = wait.until(EC.presence_of_element_located((By.ID, "whoami")))
    assert whoami.get_attribute("title").startswith(shown)


def test_admin_signs_up_a_group_and_its_booker_on_a_phone(app: Any, db: Any, make: Any) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    committee = make.committee()
    unit = make.unit(committee, "移动公司")
    make.admin(committee, username="admin")
    with live_server(app) as site, chromium(390, 844) as driver:
        wait = WebDriverWait(driver, 10)
        log_in(driver, site, "admin")
        menu(driver, "nav-groups")
        click(driver, wait.until(EC.element_to_be_clickable((By.ID, "new-group"))))
        driver.find_element(By.ID, "name").send_keys("移动青年志愿队")
        Select(driver.find_element(By.ID, "unit_id")).select_by_visible_text("移动公司")
        driver.find_element(By.ID, "contact_name").send_keys("王芳")
        driver.find_element(By.ID, "contact_phone").send_keys("0511-8888 1234")
        click(driver, driver.find_element(By.CSS_SELECTOR, "#group-form button[type=submit]"))
        wait.until(lambda d: "移动青年志愿队" in d.find_element(By.ID, "group-table").text)
        assert not_wider_than_the_screen(driver)

        menu(driver, "nav-users")
        click(driver, wait.until(EC.element_to_be_clickable((By.ID, "new-user"))))
        driver.find_element(By.ID, "username").send_keys("wangfang")
        Select(driver.find_element(By.ID, "role")).select_by_value("booker")
        Select(driver.find_element(By.ID, "group_id")).select_by_visible_text("移动青年志愿队")
        driver.find_element(By.ID, "display_name").send_keys("王芳")
        click(driver, driver.find_element(By.CSS_SELECTOR, "#user-form button[type=submit]"))
        link = str(
            wait.until(EC.presence_of_element_located((By.ID, "password-link"))).get_attribute(
                "value"
            )
        )
        assert "/password/" in link and "72" in driver.find_element(By.TAG_NAME, "main").text
        assert not_wider_than_the_screen(driver)
        no_errors(driver)

        set_password_and_log_in(driver, link, "wangfang", "王芳")
        driver.get(link)  # the link worked once
        assert "已被使用" in driver.find_element(By.ID, "link-problem").text
        no_errors(driver)
    reload(db)
    group = db.scalars(select(Group).where(Group.name == "移动青年志愿队")).one()
    user = db.scalars(select(User).where(User.username == "wangfang")).one()
    assert (group.unit_id, group.contact_name, user.group_id) == (unit.id, "王芳", group.id)


def test_an_organisation_applies_on_a_phone_and_is_admitted(app: Any, db: Any, make: Any) -> None:
    """Issue 19, item 3: an organisation applies at /apply on a phone, its point picked on the
    map; the admin admits it; the shown link sets the new secretary's password."""
    app.config["WTF_CSRF_ENABLED"] = True
    make.admin(make.committee(), username="admin")
    with live_server(app) as site, chromium(390, 844) as driver:
        wait = WebDriverWait(driver, 10)
        driver.get(f"{site}/")
        click(driver, driver.find_element(By.CSS_SELECTOR, ".navbar-toggler"))
        click(driver, wait.until(EC.element_to_be_clickable((By.ID, "nav-apply"))))
        driver.find_element(By.ID, "name").send_keys("润州律师事务所")
        Select(driver.find_element(By.ID, "kind")).select_by_value("two_new")
        driver.find_element(By.ID, "address").send_keys("润州区南山路8号")
        pick_on_map(driver, TARGET)
        driver.find_element(By.ID, "contact_name").send_keys("李明")
        driver.find_element(By.ID, "phone").send_keys("0511-8888 0001")
        driver.find_element(By.ID, "venues_plan").send_keys("会议室一间")
        assert not_wider_than_the_screen(driver)
        click(driver, driver.find_element(By.ID, "apply-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "applied")))
        assert "李明" in driver.find_element(By.TAG_NAME, "main").text
        no_errors(driver)

        log_in(driver, site, "admin")
        driver.get(f"{site}/units/")
        click(driver, driver.find_element(By.ID, "applications-link"))
        card = wait.until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "[data-status=pending]"))
        )
        username = card.find_element(By.CSS_SELECTOR, ".admit-form input[name=username]")
        username.clear()
        username.send_keys("liming")
        click(driver, card.find_element(By.CSS_SELECTOR, ".admit-form button"))
        link = str(
            wait.until(EC.presence_of_element_located((By.ID, "password-link"))).get_attribute(
                "value"
            )
        )
        assert not_wider_than_the_screen(driver)
        driver.get(f"{site}/audit/?action=unit.admit")  # what changed, readable on the phone
        change = driver.find_element(By.CSS_SELECTOR, ".audit-entry [data-field=status]")
        assert change.text == "状态: 申请中 → 已准入" and not_wider_than_the_screen(driver)

        set_password_and_log_in(driver, link, "liming", "李明")
        no_errors(driver)
    reload(db)
    user = db.scalars(select(User).where(User.username == "liming")).one()
    unit = db.get(Unit, user.unit_id)
    assert (user.role, unit.name, unit.status) == ("unit_secretary", "润州律师事务所", "active")
    application = db.scalars(select(UnitApplication)).one()
    assert abs(application.lon - TARGET[0]) < 0.0003 and abs(application.lat - TARGET[1]) < 0.0003
