"""The one map in headless Chromium: it draws from the app's own origin only, counts every
published venue in its clusters and markers, toggles types, reproduces a filter link, opens a
permalink's popup whose "book" link leads to the venue, works on a phone, and shows hostile
venue names as text without running them."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from mapservice.models import Venue
from tests.browser import chromium, live_server
from tests.conftest import RUNZHOU_POINT, login

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

XSS_NAMES = ["<img src=x onerror=alert(1)>", "${alert(1)}", "Hall\\`);alert(1)"]
# Counts any script that runs alert(): installed before every page's own scripts.
TRAP = "window.__alerts = 0; window.alert = function () { window.__alerts += 1; };"


def ready(driver: Any, timeout: float = 10) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
        )
    )


def drawn(driver: Any) -> int:
    return int(driver.execute_script("return MapService.oneMap.drawnCount()"))


def fit_all_and_count(driver: Any, expected: int) -> None:
    driver.execute_script("MapService.oneMap.fitAll()")
    WebDriverWait(driver, 5).until(lambda d: drawn(d) == expected)


def list_ids(driver: Any) -> list[str]:
    return [
        li.get_attribute("data-venue-id")
        for li in driver.find_elements(By.CSS_SELECTOR, "#venue-list li")
    ]


def no_alert(driver: Any) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    assert driver.execute_script("return window.__alerts") == 0


def own_origin_only(driver: Any, base: str) -> None:
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
    )
    assert urls, "the page loaded nothing?"
    assert [u for u in urls if not u.startswith(base + "/")] == []


def block_outside(driver: Any) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": ["https://*", "http://*.com/*", "http://*.cn/*"]}
    )
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})


@pytest.fixture
def demo(db, make) -> dict[str, Any]:
    committee = make.committee()
    a = make.unit(committee, "移动公司")
    b = make.unit(committee, "工商银行")
    w: dict[str, Any] = {"committee": committee, "venues": []}
    spots = [(119.4253, 32.1975), (119.4431, 32.1909), (119.4108, 32.2151), (119.3776, 32.1733)]
    types = ["badminton", "gym", "meeting_room"]
    for i in range(12):
        lon, lat = spots[i % 4]
        w["venues"].append(
            make.venue(
                a if i % 2 else b,
                name=f"场地{i:02d}",
                type=types[i % 3],
                lon=lon + 0.001 * (i // 4),
                lat=lat + 0.001 * (i // 4),
                capacity_units=1 + i % 4,
                phone=f"0511-8888000{i % 10}",
            )
        )
    make.venue(a, name="未发布", published=False)
    return w


def test_the_map_draws_offline_counts_toggles_and_links(app, demo):
    published = 12
    gyms = sum(1 for v in demo["venues"] if v.type == "gym")
    target = demo["venues"][5]
    with live_server(app) as base, chromium(1280, 900) as driver:
        block_outside(driver)
        driver.get(f"{base}/map")
        ready(driver)
        fit_all_and_count(driver, published)
        assert len(list_ids(driver)) == published
        own_origin_only(driver, base)
        # A type toggle hides that type, on the map and in the list.
        box = driver.find_element(By.CSS_SELECTOR, "#map-layers input[data-layer-type='gym']")
        box.click()
        ready(driver)
        fit_all_and_count(driver, published - gyms)
        assert len(list_ids(driver)) == published - gyms
        box.click()
        ready(driver)
        fit_all_and_count(driver, published)

        # Filtering through the form gives a URL; loading that URL shows the same view.
        driver.find_element(By.CSS_SELECTOR, "#map-filters summary").click()
        driver.find_element(By.CSS_SELECTOR, "#f-types input[value='badminton']").click()
        driver.find_element(By.ID, "f-min-units").send_keys("2")
        driver.find_element(By.ID, "filter-apply").click()
        WebDriverWait(driver, 5).until(lambda d: "types=badminton" in d.current_url)
        ready(driver)
        expected = sorted(
            str(v.id) for v in demo["venues"] if v.type == "badminton" and v.capacity_units >= 2
        )
        assert expected and sorted(list_ids(driver)) == expected
        fit_all_and_count(driver, len(expected))
        link = driver.current_url
        driver.get(f"{base}/map")
        ready(driver)
        driver.get(link)
        ready(driver)
        assert sorted(list_ids(driver)) == expected
        fit_all_and_count(driver, len(expected))

        # A permalink opens the venue's popup; its "book" link leads to the venue page.
        driver.get(f"{base}/map?venue={target.id}")
        ready(driver)
        popup = WebDriverWait(driver, 5).until(
            lambda d: d.find_element(By.CSS_SELECTOR, f".venue-popup[data-venue-id='{target.id}']")
        )
        assert popup.find_element(By.CLASS_NAME, "popup-name").text == target.name
        # Details fetched when the popup opened: capacity and today's hours.
        capacity = popup.find_element(By.CLASS_NAME, "popup-capacity").text
        assert capacity.endswith(f": {target.capacity_units}")
        assert "08:00-22:00" in popup.find_element(By.CLASS_NAME, "popup-hours").text
        tel = popup.find_element(By.CSS_SELECTOR, ".popup-phone a")
        assert tel.get_attribute("href") == "tel:" + target.phone.replace("-", "")
        popup.find_element(By.CLASS_NAME, "popup-book").click()
        WebDriverWait(driver, 5).until(
            lambda d: d.current_url.endswith(f"/venues/{target.id}#book")
        )
        assert driver.find_element(By.ID, "venue-name").text == target.name
        assert driver.find_element(By.ID, "book").is_displayed()
        own_origin_only(driver, base)
        no_alert(driver)


def test_the_map_and_filters_work_on_a_phone(app, demo):
    with live_server(app) as base, chromium(390, 844) as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        # Headless windows are at least 500 px wide: emulate the phone's viewport exactly.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
        )
        driver.get(f"{base}/map")
        ready(driver)
        fit_all_and_count(driver, 12)
        size = driver.execute_script(
            "var r = document.getElementById('one-map').getBoundingClientRect();"
            " return [r.width, r.height, document.documentElement.scrollWidth, innerWidth];"
        )
        assert size[3] == 390
        assert size[0] >= 340 and size[1] >= 300 and size[2] <= 390, size
        summary = driver.find_element(By.CSS_SELECTOR, "#map-filters summary")
        summary.click()
        search = driver.find_element(By.ID, "f-q")
        assert search.is_displayed() and search.size["width"] >= 300
        search.send_keys("场地05")
        apply = driver.find_element(By.ID, "filter-apply")
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", apply
        )
        apply.click()
        WebDriverWait(driver, 5).until(lambda d: "q=" in d.current_url)
        ready(driver)
        assert list_ids(driver) == [str(demo["venues"][5].id)]
        assert drawn(driver) == 1
        # Tapping the list entry opens the popup.
        item = driver.find_element(By.CSS_SELECTOR, "#venue-list li")
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", item
        )
        item.click()
        WebDriverWait(driver, 5).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".venue-popup .popup-name").text == "场地05"
        )
        no_alert(driver)


def test_hostile_names_show_as_text_on_the_map_and_venue_page(app, client, db, make):
    committee = make.committee()
    a = make.unit(committee, "单位甲")
    b = make.unit(committee, "单位乙")
    make.secretary(a, username="sec-a")
    make.admin(committee, username="boss")
    # Through the registry form...
    login(client, "sec-a")
    for i, name in enumerate(XSS_NAMES):
        resp = client.post(
            "/venues/new",
            data={
                "name": name,
                "unit": "单位甲",
                "type": "gym",
                "crs": "wgs84",
                "lon": str(RUNZHOU_POINT[0] - 0.01 * i),
                "lat": str(RUNZHOU_POINT[1] - 0.005),
                "capacity_units": "1",
                "facilities": name,
                "address": name,
                "hours_0": "09:00-21:00",
                "slot_minutes": "60",
                "min_duration_minutes": "60",
                "max_duration_minutes": "180",
                "max_days_ahead": "30",
                "min_notice_minutes": "60",
                "hold_hours": "48",
                "cancel_cutoff_minutes": "120",
                "bookable_by": "members",
                "published": "y",
            },
        )
        assert resp.status_code == 302, resp.data
    client.post("/logout")
    # ... and through import.
    login(client, "boss")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", "unit", "type", "lon", "lat", "hours"])
    writer.writeheader()
    for i, name in enumerate(XSS_NAMES):
        writer.writerow(
            {
                "name": name,
                "unit": "单位乙",
                "type": "badminton",
                "lon": RUNZHOU_POINT[0] + 0.01 * (i + 1),
                "lat": RUNZHOU_POINT[1],
                "hours": "Mon-Sun 08:00-22:00",
            }
        )
    resp = client.post(
        "/import/venues",
        data={"file": (io.BytesIO(buf.getvalue().encode()), "venues.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code in (200, 302), resp.data
    db.expire_all()
    venues = db.scalars(select(Venue).order_by(Venue.id)).all()
    assert sorted(v.name for v in venues) == sorted(XSS_NAMES * 2)
    assert {v.unit_id for v in venues} == {a.id, b.id}
    with live_server(app) as base, chromium(1280, 900) as driver:
        block_outside(driver)
        driver.get(f"{base}/map")
        ready(driver)
        fit_all_and_count(driver, 6)
        shown = [
            li.find_element(By.CLASS_NAME, "venue-item-name").text
            for li in driver.find_elements(By.CSS_SELECTOR, "#venue-list li")
        ]
        assert sorted(shown) == sorted(XSS_NAMES * 2)
        for v in venues:
            driver.execute_script("MapService.oneMap.openVenue(arguments[0])", v.id)
            # Shown (not just present: the popup fades in), with the name as its text.
            WebDriverWait(driver, 5).until(
                lambda d, v=v: (
                    d.find_element(
                        By.CSS_SELECTOR, f".venue-popup[data-venue-id='{v.id}'] .popup-name"
                    ).text
                    == v.name
                )
            )
            popup = driver.find_element(By.CSS_SELECTOR, f".venue-popup[data-venue-id='{v.id}']")
            if v.address:  # fetched when the popup opened: text too
                WebDriverWait(driver, 5).until(
                    lambda d, v=v: d.find_element(
                        By.CSS_SELECTOR, f".venue-popup[data-venue-id='{v.id}'] .popup-address"
                    ).text.endswith(v.address)
                )
                facilities = popup.find_element(By.CLASS_NAME, "popup-facilities").text
                assert facilities.endswith(v.facilities)
            assert popup.find_elements(By.TAG_NAME, "img") == []
        # Leaflet's marker titles are properties too: the hover text is the name itself.
        titles = driver.execute_script(
            "return Object.values(MapService.oneMap.state.markers)"
            ".map(function (m) { return m.options.title; })"
        )
        assert sorted(titles) == sorted(XSS_NAMES * 2)
        time.sleep(0.3)  # an onerror handler would have fired by now
        no_alert(driver)
        for v in venues[:3]:
            driver.get(f"{base}/venues/{v.id}")
            assert driver.find_element(By.ID, "venue-name").text == v.name
            WebDriverWait(driver, 5).until(
                lambda d: d.execute_script("return !!(window.MapService && MapService.maps)")
            )
            no_alert(driver)
            assert driver.find_elements(By.CSS_SELECTOR, "main img[src='x']") == []


def test_the_demo_map_shows_every_published_venue(app, db):
    """On the demo data (the Runzhou committee): clusters and markers add up to the number of
    published venues of admitted units, with nothing loaded from outside."""
    from datetime import date

    from sqlalchemy import func, select

    from mapservice.models import Committee, Unit, Venue
    from mapservice.operations.seed import seed_demo

    seed_demo(db, today=date.today())
    db.commit()
    expected = db.scalar(
        select(func.count(Venue.id))
        .join(Unit, Unit.id == Venue.unit_id)
        .join(Committee, Committee.id == Venue.committee_id)
        .where(
            Committee.slug == "runzhou",
            Venue.published.is_(True),
            Venue.retired.is_(False),
            Unit.status == "active",
        )
    )
    assert expected >= 80
    with live_server(app) as base, chromium(1280, 900) as driver:
        block_outside(driver)
        driver.get(f"{base}/map?committee=runzhou")
        ready(driver)
        fit_all_and_count(driver, expected)
        own_origin_only(driver, base)


def test_an_amap_base_map_draws_the_venues_in_gcj02(app, demo):
    """Switching to the AMap base map reloads the venues converted to GCJ-02 (its tiles are
    blocked here: only the markers' positions are checked)."""
    from mapservice.core.coords import wgs84_to_gcj02

    app.config["MAPSERVICE_TILES"] = "none,amap"
    venue = demo["venues"][0]
    with live_server(app) as base, chromium(1280, 900) as driver:
        block_outside(driver)
        driver.get(f"{base}/map")
        ready(driver)

        def position() -> list[float]:
            return driver.execute_script(
                "var m = MapService.oneMap.state.markers[arguments[0]].getLatLng();"
                "return [m.lng, m.lat];",
                venue.id,
            )

        assert position() == pytest.approx([venue.lon, venue.lat], abs=1e-5)
        labels = driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-base label")
        amap = next(lab for lab in labels if "高德" in lab.get_attribute("textContent"))
        # The control is folded away until hovered: click its radio button directly.
        driver.execute_script("arguments[0].querySelector('input').click()", amap)
        WebDriverWait(driver, 5).until(
            lambda d: d.execute_script(
                "return MapService.oneMap.state.crs === 'gcj02' && MapService.oneMap.ready"
            )
        )
        assert position() == pytest.approx(list(wgs84_to_gcj02(venue.lon, venue.lat)), abs=1e-5)
        fit_all_and_count(driver, 12)
        no_alert(driver)
