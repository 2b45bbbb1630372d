"""Issue 16 in headless Chromium, on the map: a venue tapped in the list opens its popup where
it can be seen whole, clear of the zoom buttons (defect 6, a phone at 390x844); and the
booker's journey at 1366x900 and 390x844 — a "free between" time set on the map, a free court
found, its popup showing that window, "book" opening the form filled with it, the booking made
and found in "my bookings" (defect 8, the map's part). One browser for the module."""

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

from mapservice.booking import engine
from mapservice.models import Booking
from tests.browser import chromium, live_server
from tests.conftest import reload
from tests.test_browser_registry import log_in

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Shanghai")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
# Spread over the district so that no two cluster. The first lies at the north-west corner of
# the fitted view: its popup, opened, pans to the map's top-left corner, where the zoom
# buttons are; the next two lie on the west and north edges.
SPOTS = [
    (119.38, 32.21),
    (119.40, 32.17),
    (119.44, 32.21),
    (119.42, 32.19),
    (119.44, 32.15),
    (119.46, 32.17),
    (119.42, 32.17),
    (119.40, 32.19),
]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium(*SIZES["desktop"]) as d:
        yield d


def use_size(driver: Any, size: str) -> None:
    """The exact viewport (headless windows are at least 500 px wide), touch on the phone."""
    width, height = SIZES[size]
    phone = size == "phone"
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 3 if phone else 1, "mobile": phone},
    )
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": phone})
    driver.delete_all_cookies()


def map_ready(driver: Any) -> None:
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script(
            "return !!(window.MapService && MapService.oneMap && MapService.oneMap.ready)"
        )
    )


def tap(driver: Any, element: Any) -> None:
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    element.click()


RECTS = """
var r = function (el) { var b = el.getBoundingClientRect();
  return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; };
var popup = document.querySelector('.leaflet-popup');
return {
  popup: popup ? r(popup) : null,
  map: r(document.getElementById('one-map')),
  zoom: r(document.querySelector('.leaflet-control-zoom')),
  controls: Array.prototype.map.call(
    document.querySelectorAll('#one-map .leaflet-top.leaflet-left .leaflet-control'), r),
  view: {left: 0, top: 0, right: innerWidth, bottom: innerHeight},
};
"""


def inside(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] >= b["left"] - 0.5
        and a["top"] >= b["top"] - 0.5
        and a["right"] <= b["right"] + 0.5
        and a["bottom"] <= b["bottom"] + 0.5
    )


def meets(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )


def settled_popup(driver: Any, venue_id: int) -> dict[str, Any]:
    """The rectangles once the popup of ``venue_id`` shows its details and the map has
    stopped panning (two reads 200 ms apart agree)."""
    wait = WebDriverWait(driver, 10, poll_frequency=0.2)
    wait.until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, f".venue-popup[data-venue-id='{venue_id}'] .popup-capacity"
        )
    )
    last: list[Any] = [None]

    def still(d: Any) -> Any:
        now = d.execute_script(RECTS)
        same = now == last[0]
        last[0] = now
        return now if same else False

    return wait.until(still)


def assert_fully_visible(rects: dict[str, Any]) -> None:
    popup = rects["popup"]
    assert popup is not None
    assert inside(popup, rects["view"]), rects  # on the screen
    assert inside(popup, rects["map"]), rects  # not clipped by the map's edge
    assert not meets(popup, rects["zoom"]), rects  # clear of the zoom buttons
    assert not any(meets(popup, c) for c in rects["controls"]), rects


@pytest.fixture
def spread(make) -> dict[str, Any]:
    committee = make.committee()
    unit = make.unit(committee, "体育中心")
    venues = [
        make.venue(
            unit,
            name=f"场地{i + 1}",
            lon=lon,
            lat=lat,
            facilities="淋浴, 更衣室, 储物柜",
            address=f"润州区某某路{i + 1}号",
            phone="0511-88880000",
        )
        for i, (lon, lat) in enumerate(SPOTS)
    ]
    return {"venues": venues}


@pytest.mark.sqlite_only  # a phone layout: see conftest.SQLITE_ONLY
def test_a_venue_tapped_in_the_list_on_a_phone_opens_a_popup_in_full_view(app, driver, spread):
    use_size(driver, "phone")
    with live_server(app) as base:
        driver.get(f"{base}/map")
        map_ready(driver)
        for venue in spread["venues"][:3]:
            item = driver.find_element(
                By.CSS_SELECTOR, f"#venue-list li[data-venue-id='{venue.id}']"
            )
            tap(driver, item)  # the list lies below the map: the map is scrolled away
            assert_fully_visible(settled_popup(driver, venue.id))


@pytest.fixture
def courts(make, wdb) -> dict[str, Any]:
    """Two single courts; another group holds court 1 from 14:00 to 16:00 in three days."""
    committee = make.committee()
    owner = make.unit(committee, "体育中心")
    other = make.group(committee, owner, "体育中心团支部")
    make.booker(
        make.group(committee, make.unit(committee, "邮政公司"), "邮政团支部"), username="booker"
    )
    taken = make.venue(owner, name="一号羽毛球场", capacity_units=1, lon=119.4253, lat=32.1975)
    free = make.venue(owner, name="二号羽毛球场", capacity_units=1, lon=119.4431, lat=32.1909)
    admin = wdb.merge(make.admin(committee, username="admin"))
    day = (datetime.now(TZ) + timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
    engine.book(wdb, admin, taken.id, other.id, start, start + timedelta(hours=2))
    wdb.commit()
    return {"day": day.isoformat(), "taken": taken, "free": free, "start": start}


# The phone's journey differs from the desktop's in layout only: SQLite run only
# (conftest.SQLITE_ONLY); the desktop's, over the free-at-a-time search, on both databases.
@pytest.mark.parametrize("size", ["desktop", pytest.param("phone", marks=pytest.mark.sqlite_only)])
def test_the_booker_books_a_court_found_free_on_the_map_with_its_time(
    browser_app, db, driver, courts, size
):
    use_size(driver, size)
    day, free = courts["day"], courts["free"]
    wait = WebDriverWait(driver, 10)
    with live_server(browser_app) as base:
        log_in(driver, base, "booker")
        driver.get(f"{base}/map?lang=en")
        map_ready(driver)
        # "Free between 14:00 and 16:00" on that day, through the filter form.
        filters = driver.find_element(By.ID, "map-filters")
        if not filters.get_attribute("open"):
            tap(driver, filters.find_element(By.TAG_NAME, "summary"))
        driver.execute_script(
            "document.getElementById('f-free-from').value = arguments[0];"
            "document.getElementById('f-free-to').value = arguments[1];",
            f"{day}T14:00",
            f"{day}T16:00",
        )
        tap(driver, driver.find_element(By.ID, "filter-apply"))
        wait.until(lambda d: "free_from=" in d.current_url)
        map_ready(driver)
        # Only the free court is left; its popup shows the window, in full view.
        items = driver.find_elements(By.CSS_SELECTOR, "#venue-list li")
        assert [li.get_attribute("data-venue-id") for li in items] == [str(free.id)]
        tap(driver, items[0])
        rects = settled_popup(driver, free.id)
        assert_fully_visible(rects)
        popup = driver.find_element(By.CSS_SELECTOR, f".venue-popup[data-venue-id='{free.id}']")
        wait.until(
            lambda d: (
                popup.find_element(By.CLASS_NAME, "popup-window").text
                == f"{day} 14:00–16:00: 1 of 1 units free"
            )
        )
        assert popup.find_elements(By.CLASS_NAME, "popup-free") == []  # not "free today"
        hours = popup.find_element(By.CLASS_NAME, "popup-hours").text
        assert hours == f"Open on {day}: 08:00-22:00"
        # "Book" opens the venue page with the form filled with that time.
        tap(driver, popup.find_element(By.CLASS_NAME, "popup-book"))
        wait.until(lambda d: f"/venues/{free.id}?" in d.current_url)
        assert driver.current_url.endswith("#book")
        form = wait.until(EC.visibility_of_element_located((By.ID, "book-form")))
        values = [
            form.find_element(By.ID, name).get_attribute("value")
            for name in ("date", "start", "end")
        ]
        assert values == [day, "14:00", "16:00"]
        tap(driver, driver.find_element(By.ID, "book-submit"))
        wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
        assert driver.current_url.split("?")[0].endswith("/bookings/")
        row = driver.find_element(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
        assert "二号羽毛球场" in row.text and f"{day} 14:00–16:00" in row.text
    reload(db)
    booked = db.scalars(select(Booking).where(Booking.venue_id == free.id)).all()
    start = courts["start"]
    assert [(b.start_at, b.end_at, b.status) for b in booked] == [
        (start, start + timedelta(hours=2), "confirmed")
    ]


@pytest.fixture
def browser_app(app: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True
    return app
