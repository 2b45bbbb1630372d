"""In headless Chromium: a unit secretary logs in, registers a venue by clicking the map, and
finds it in the list."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from mapservice.models import Venue
from tests.browser import chromium, live_server
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

# A point well inside Runzhou (七里甸 area), WGS-84.
TARGET = (119.4150, 32.1850)


@pytest.fixture
def browser_app(app: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True  # the real thing, tokens and all
    return app


def log_in(driver: Any, base: str, username: str) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 10).until(EC.presence_of_element_located((By.ID, "whoami")))


def pick_on_map(driver: Any, target: tuple[float, float]) -> None:
    """Zoom the picker in near ``target`` (lon, lat) as a user would, ask Leaflet where it is
    and click there, as a person's click (the form's lon/lat inputs then hold a value)."""
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return !!(window.MapService && MapService.maps['pick-map'])")
    )
    map_el = driver.find_element(By.ID, "pick-map")
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", map_el
    )
    driver.execute_script(
        "MapService.maps['pick-map'].setView([arguments[1] + 0.001, arguments[0] - 0.001], 16,"
        " {animate: false});",
        *target,
    )
    # Viewport coordinates of the target, computed in one step so nothing moves in between
    # (scrolling is instant: Bootstrap's smooth scrolling would move the page under the click).
    vx, vy = driver.execute_script(
        "var m = MapService.maps['pick-map'];"
        " var p = m.latLngToContainerPoint([arguments[1], arguments[0]]);"
        " var r = m.getContainer().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y];",
        *target,
    )
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        driver.execute_cdp_cmd(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": vx, "y": vy, "button": "left", "clickCount": 1},
        )
    WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "lon").get_attribute("value"))


def test_secretary_registers_a_venue_by_clicking_the_map(browser_app, db, make):
    committee = make.committee()
    unit = make.unit(committee, "中国移动镇江分公司")
    make.secretary(unit, username="sec")
    with live_server(browser_app) as base, chromium(390, 844) as driver:
        log_in(driver, base, "sec")
        driver.get(f"{base}/venues/new")
        wait = WebDriverWait(driver, 10)
        driver.find_element(By.ID, "name").send_keys("移动公司羽毛球馆")
        Select(driver.find_element(By.ID, "type")).select_by_value("badminton")
        capacity = driver.find_element(By.ID, "capacity_units")
        capacity.clear()
        capacity.send_keys("3")
        # The hours hold a default week (real values, not placeholders): change Monday,
        # close on Sunday, keep the rest.
        prefilled = [
            driver.find_element(By.ID, f"hours_{d}").get_attribute("value") for d in range(7)
        ]
        assert prefilled == ["09:00-21:00"] * 7
        driver.find_element(By.ID, "hours_0").clear()
        driver.find_element(By.ID, "hours_0").send_keys("18:00-21:00")
        driver.find_element(By.ID, "hours_6").clear()
        pick_on_map(driver, TARGET)
        lon = float(driver.find_element(By.ID, "lon").get_attribute("value"))
        lat = float(driver.find_element(By.ID, "lat").get_attribute("value"))
        # At zoom 16 a screen pixel is about 2 m; allow for late layout shifts of a few pixels
        # (0.0003° ≈ 30 m; the district is ~15 km across, so a wrong click is far off).
        assert abs(lon - TARGET[0]) < 0.0003 and abs(lat - TARGET[1]) < 0.0003
        assert driver.find_element(By.ID, "crs").get_attribute("value") == "wgs84"
        save = driver.find_element(By.ID, "venue-save")
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", save
        )
        save.click()
        wait.until(EC.presence_of_element_located((By.ID, "venue-name")))
        assert driver.find_element(By.ID, "venue-name").text == "移动公司羽毛球馆"
        # And it is in the list.
        driver.get(f"{base}/venues/?mine=1")
        rows = driver.find_elements(By.CSS_SELECTOR, "#venue-table tbody tr[data-venue-id]")
        assert "移动公司羽毛球馆" in [r.find_element(By.TAG_NAME, "a").text for r in rows]
    venue = db.scalars(select(Venue).where(Venue.name == "移动公司羽毛球馆")).one()
    assert venue.capacity_units == 3 and venue.unit_id == unit.id
    assert venue.lon == pytest.approx(lon, abs=1e-6) and venue.lat == pytest.approx(lat, abs=1e-6)
    assert venue.street is not None
    assert venue.hours_text == "Mon 18:00-21:00; Tue-Sat 09:00-21:00"


@pytest.mark.parametrize("size", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_the_committee_admin_pages_through_a_long_venue_list(browser_app, db, make, size):
    """A committee of more venues than a page holds: the admin lands on the list after
    logging in, sees the whole count and page 1 of 2, filters by type, goes to the next page
    by its link (the filter kept) and finds the venues there that page 1 did not show."""
    from mapservice.web.venues import PER_PAGE

    committee = make.committee()
    unit = make.unit(committee, "体育中心")
    make.user(committee, "committee_admin", username="admin")
    courts = [
        make.venue(unit, name=f"篮球场{i:03d}", type="basketball") for i in range(PER_PAGE + 12)
    ]
    make.venue(unit, name="会议室", type="meeting_room")
    with live_server(browser_app) as base, chromium(*size) as driver:
        log_in(driver, base, "admin")
        driver.get(f"{base}/venues/")
        wait = WebDriverWait(driver, 10)
        assert driver.find_element(By.ID, "venue-count").text == str(len(courts) + 1)
        pages = driver.find_element(By.ID, "venue-pages")
        assert "第1页，共2页" in pages.text
        Select(driver.find_element(By.NAME, "type")).select_by_value("basketball")
        driver.find_element(By.CSS_SELECTOR, "#venue-filter button[type=submit]").click()
        wait.until(EC.url_contains("type=basketball"))
        first = [
            r.get_attribute("data-venue-id")
            for r in driver.find_elements(By.CSS_SELECTOR, "#venue-table tr[data-venue-id]")
        ]
        assert len(first) == PER_PAGE
        nxt = driver.find_element(By.CSS_SELECTOR, "#venue-pages a[rel=next]")
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", nxt
        )
        nxt.click()
        wait.until(EC.url_contains("page=2"))
        assert "type=basketball" in driver.current_url
        second = [
            r.get_attribute("data-venue-id")
            for r in driver.find_elements(By.CSS_SELECTOR, "#venue-table tr[data-venue-id]")
        ]
        assert len(second) == 12 and not set(first) & set(second)
        assert {int(i) for i in first + second} == {v.id for v in courts}
        pager = driver.find_element(By.ID, "venue-pages").text
        assert "第2页，共2页" in pager and "上一页" in pager  # a page, not a period
        assert "会议室" not in driver.find_element(By.ID, "venue-table").text
        # The audit log (a registration an entry: more than a page) pages the same way.
        driver.get(f"{base}/audit/")
        assert "下一页" in driver.find_element(By.ID, "audit-pages").text
