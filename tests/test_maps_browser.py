"""The folium-built maps in headless Chromium, opened as files (no server, no network): the
venue layer draws every venue, hostile names stay text, the controls start without a script
error, and the picker fills the form with the point clicked.

The app's pages draw with the same builders: /map and /map/embed (test_map_browser,
test_map_journey_browser), the venue page and the registration picker (test_browser_registry);
see docs/maps.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import folium
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mapservice.core import mapdata
from mapservice.maps import one_map, picker_map, venue_map
from mapservice.maps.assets import asset_path
from tests.browser import chromium
from tests.test_maps_builders import PAYLOADS, _areas, _columns

pytestmark = pytest.mark.browser

TRAP = "<script>window.__alerts = 0; window.alert = function () { window.__alerts += 1; };</script>"


def _file_urls(asset: Any) -> str:
    return str(asset_path(asset).as_uri())


def _save(m: folium.Map, path: Path) -> str:
    root = m.get_root()
    root.header.add_child(folium.Element(TRAP), name="trap", index=0)
    path.write_text(root.render(), encoding="utf-8")
    return path.as_uri()


def _km(i: int) -> float:
    """How far venue ``i`` of ``_columns`` lies from (119.42, 32.2): i × 0.001° each way."""
    r = math.pi / 180
    lat2 = 32.2 + i * 0.001
    a = math.sin((lat2 - 32.2) * r / 2) ** 2 + math.cos(32.2 * r) * math.cos(lat2 * r) * (
        math.sin(i * 0.001 * r / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_one_map_draws_embedded_venues_with_hostile_names_as_text(tmp_path: Path) -> None:
    names = [*PAYLOADS, *(f"场地{i}" for i in range(300))]
    m = one_map(
        areas=_areas(PAYLOADS[0]),
        tiles=mapdata.tile_layers("none"),
        columns=_columns(names, near=(119.42, 32.2)),
        assets=_file_urls,
    )
    url = _save(m, tmp_path / "one.html")
    with chromium(1280, 900) as driver:
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
            )
        )
        assert driver.execute_script("return MapService.oneMap.drawnCount()") == len(names)
        # Every payload's venue: its popup shows the name as typed.
        for i, payload in enumerate(PAYLOADS):
            driver.execute_script("MapService.oneMap.openVenue(arguments[0])", i + 1)
            WebDriverWait(driver, 10).until(
                lambda d, i=i: d.execute_script(
                    "var p = document.querySelector('.venue-popup');"
                    "return p && p.dataset.venueId === String(arguments[0])",
                    i + 1,
                )
            )
            name = driver.find_element(By.CSS_SELECTOR, ".venue-popup .popup-name")
            assert name.get_attribute("textContent") == payload
            # The distance from the filter's point (venue i lies i × 0.001° off it).
            distance = driver.find_element(By.CSS_SELECTOR, ".venue-popup .popup-distance")
            assert distance.get_attribute("textContent").startswith(f"{_km(i):.2f} ")
            # Popups keep clear of the controls down the left side.
            popup_left, controls_right = driver.execute_script(
                "var p = document.querySelector('.leaflet-popup').getBoundingClientRect();"
                "var r = 0; document.querySelectorAll('.leaflet-top.leaflet-left .leaflet-control')"
                ".forEach(function (c) { r = Math.max(r, c.getBoundingClientRect().right); });"
                "return [p.left, r];"
            )
            assert popup_left >= controls_right, (popup_left, controls_right)
        # Street labels are text too (the hostile suffix shows, nothing runs).
        labels = driver.execute_script(
            "return Array.from(document.querySelectorAll('.street-label'))"
            ".map(function (e) { return e.textContent; })"
        )
        assert labels and all(PAYLOADS[0] in label for label in labels)
        assert driver.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
        assert driver.execute_script("return window.__alerts") == 0
        # The controls folium added (full screen, locate, the type toggles) are there.
        for css in (".leaflet-control-zoom-fullscreen", ".leaflet-control-locate", "#map-layers"):
            assert driver.find_elements(By.CSS_SELECTOR, css), css
        # One scale line (metric only) and a plain attribution prefix.
        assert len(driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-scale-line")) == 1
        prefix = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution")
        assert prefix.get_attribute("textContent").startswith("Leaflet")
        assert _errors(driver) == []


def test_the_picker_fills_the_form_and_the_venue_map_shows_its_point(tmp_path: Path) -> None:
    m = picker_map(areas=_areas(), tiles=mapdata.tile_layers("none"), assets=_file_urls)
    m.get_root().html.add_child(
        folium.Element(
            '<form><input id="lon"><input id="lat"><input id="crs" value="bd09"></form>'
        ),
        index=0,
    )
    picker = _save(m, tmp_path / "picker.html")
    venue = _save(
        venue_map(areas=_areas(), point=(119.45, 32.2), assets=_file_urls),
        tmp_path / "venue.html",
    )
    with chromium(1280, 900) as driver:
        driver.get(picker)
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script("return !!(window.MapService && MapService.maps)")
        )
        driver.execute_script(
            "var m = MapService.maps['pick-map'];"
            "m.fire('click', {latlng: L.latLng(32.21, 119.43)});"
        )
        values = [driver.find_element(By.ID, k).get_attribute("value") for k in ("lon", "lat")]
        assert values == ["119.430000", "32.210000"]
        assert driver.find_element(By.ID, "crs").get_attribute("value") == "wgs84"
        assert _errors(driver) == []
        driver.get(venue)
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script(
                "return !!(window.MapService && MapService.maps && MapService.maps['venue-map'])"
            )
        )
        center = driver.execute_script(
            "var c = MapService.maps['venue-map'].getCenter(); return [c.lng, c.lat];"
        )
        assert abs(center[0] - 119.45) < 1e-3 and abs(center[1] - 32.2) < 1e-3
        assert driver.find_elements(By.CSS_SELECTOR, ".map-legend")
        assert _errors(driver) == []


def test_the_standalone_file_shows_every_venue_and_its_popup_text_offline(
    tmp_path: Path,
) -> None:
    from mapservice.core.mapfilter import Match, VenueFacts
    from mapservice.maps.columns import columns_with_details
    from mapservice.maps.export import standalone_html

    names = [*PAYLOADS, *(f"场地{i}" for i in range(500))]
    matches = [
        Match(
            VenueFacts(
                id=i + 1,
                name=name,
                unit_id=1 + i % 3,
                unit_name=f"单位{i % 3}",
                type="gym",
                lon=119.42 + (i % 40) * 0.002,
                lat=32.2 + (i // 40) * 0.002,
                address="地址" + name,
                phone="0511-80000000",
            )
        )
        for i, name in enumerate(names)
    ]
    m = one_map(
        areas=_areas(), tiles=mapdata.tile_layers("none"), columns=columns_with_details(matches, 0)
    )
    m.get_root().header.add_child(folium.Element(TRAP), name="trap", index=0)
    path = tmp_path / "一张图.html"
    path.write_text(standalone_html(m, "一张图"), encoding="utf-8")
    with chromium(1280, 900) as driver:
        # Nothing may leave the machine (the file has no server either).
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        driver.get(path.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
            )
        )
        assert driver.execute_script("return MapService.oneMap.drawnCount()") == len(names)
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
            ".filter(function (n) { return n.indexOf('data:') !== 0; })"
        )
        assert fetched == []
        driver.execute_script("MapService.oneMap.openVenue(arguments[0])", 5)
        WebDriverWait(driver, 10).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".venue-popup .popup-address")
        )
        address = driver.find_element(By.CSS_SELECTOR, ".venue-popup .popup-address")
        assert address.get_attribute("textContent").endswith("地址" + PAYLOADS[4])
        assert driver.execute_script("return window.__alerts") == 0
        assert _errors(driver) == []
