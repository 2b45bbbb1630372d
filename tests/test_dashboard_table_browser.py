"""A dashboard table too long for the dashboard, in headless Chromium, on a desktop and on a
phone, in Chinese and in English: the admin follows the table's "all rows" link, sorts by a
column heading (and again, the other way), pages on, and comes back to the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium, live_server
from tests.test_browser_registry import log_in
from tests.test_dashboard_browser import charts

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

DESKTOP, PHONE = (1366, 900), (390, 844)
VENUES = 56
Q = "period=custom&start=2026-03-02&end=2026-03-03"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium(*DESKTOP) as d:
        yield d


@pytest.fixture
def many(db, make) -> list[str]:
    committee = make.committee()
    unit = make.unit(committee, "甲单位")
    make.admin(committee, username="admin")
    names = [f"场地{i:03d}" for i in range(VENUES)]
    order = [37, 5, 51] + [i for i in range(VENUES) if i not in (37, 5, 51)]
    for i in order:  # not in name order: the sort has work to do
        make.venue(unit, name=names[i], type="meeting_room")
    return names


def first_column(driver: Any) -> list[str]:
    return [
        td.text
        for td in driver.find_elements(By.CSS_SELECTOR, "#dashboard-table tbody tr td:first-child")
    ]


def click(driver: Any, element: Any) -> None:
    """Scrolled to the middle of the screen and clicked there, as a person would, once it
    stays put (the page's images settle the layout as they load or fail)."""
    where = (
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});"
        "var r = arguments[0].getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight ? Math.round(r.top) : null;"
    )
    seen: list[Any] = []

    def settled(d: Any) -> bool:
        seen.append(d.execute_script(where, element))
        return len(seen) > 1 and seen[-1] is not None and seen[-1] == seen[-2]

    WebDriverWait(driver, 10, poll_frequency=0.2).until(settled)
    element.click()


@pytest.mark.parametrize(
    "size, language, heading, next_label",
    [(DESKTOP, "zh_CN", "场地", "›"), (PHONE, "en", "Venue", "Next page")],
)
def test_admin_sorts_and_pages_a_long_table(app, driver, many, size, language, heading, next_label):
    app.config["WTF_CSRF_ENABLED"] = True
    driver.delete_all_cookies()
    driver.set_window_size(*size)
    charts(driver, shown=False)
    with live_server(app) as base:
        log_in(driver, base, "admin")
        driver.get(f"{base}/dashboard/?{Q}&lang={language}")
        rows = driver.find_elements(By.CSS_SELECTOR, "#table-grouped tbody tr")
        assert len(rows) == 20
        click(driver, driver.find_element(By.ID, "table-grouped-all"))
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "dashboard-table"))
        assert len(first_column(driver)) == 50
        assert f"{VENUES}" in driver.find_element(By.ID, "table-title").text
        # Sort by the venue's name: the heading is a link, the order the server's.
        link = driver.find_element(By.CSS_SELECTOR, "th a.sort-link[data-column='name']")
        assert link.text == heading and link.is_displayed()
        click(driver, link)
        WebDriverWait(driver, 20).until(
            lambda d: first_column(d)[:3] == many[:3] and "sort=name" in d.current_url
        )
        assert first_column(driver) == many[:50]
        # Again: the other way.
        click(driver, driver.find_element(By.CSS_SELECTOR, "th a.sort-link[data-column='name']"))
        WebDriverWait(driver, 20).until(lambda d: first_column(d)[:1] == [many[-1]])
        assert first_column(driver) == many[::-1][:50]
        # On to page 2: the rest, still in that order.
        nxt = driver.find_element(By.ID, "page-next")
        assert next_label in nxt.text
        click(driver, nxt)
        WebDriverWait(driver, 20).until(lambda d: "page=2" in d.current_url)
        assert first_column(driver) == many[::-1][50:]
        assert not driver.find_elements(By.ID, "page-next")  # the last page
        # Nothing wider than the screen but the table itself (it scrolls sideways).
        width = driver.execute_script("return document.documentElement.clientWidth")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, (size, width, overflow)
        click(driver, driver.find_element(By.ID, "back-to-dashboard"))
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "table-grouped"))
        assert "start=2026-03-02" in driver.current_url
