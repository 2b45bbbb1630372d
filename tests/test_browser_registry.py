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
