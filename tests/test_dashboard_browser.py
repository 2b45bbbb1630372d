"""The committee admin's dashboard in headless Chromium: the menu fits one line at 1366 px in
both languages, the map panels show at a size their labels read at, and the admin prints the
one map on A4 and A3 — from the dashboard's buttons, on a desktop and on a phone — with every
venue of the index on a page. One browser for the module."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium, live_server
from tests.pdftext import index_problems, read_pdf
from tests.test_browser_registry import log_in
from tests.test_printmap import UNITS, crowded_world

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]  # see conftest.SQLITE_ONLY

DESKTOP, PHONE = (1366, 900), (390, 844)


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium(*DESKTOP) as d:
        yield d


@pytest.fixture
def browser_app(app: Any, driver: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True
    driver.delete_all_cookies()  # a session of the module's previous test and database
    driver.set_window_size(*DESKTOP)
    charts(driver, shown=False)
    return app


def charts(driver: Any, shown: bool) -> None:
    """Let the dashboard's chart images load, or not (a test of the menu or the print does
    not wait for a dozen charts drawn on the server)."""
    driver.execute_cdp_cmd("Network.enable", {})
    blocked = [] if shown else ["*/dashboard/chart/*"]
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": blocked})


@pytest.fixture
def small(db, make) -> None:
    """A committee (its streets), an admin with a long name, two units' few venues."""
    committee = make.committee(name="镇江市润州区青年工作委员会")
    make.admin(committee, username="admin", display_name="镇江市润州区青年工作委员会")
    venues, _district, _streets = crowded_world(6)
    units = {name: make.unit(committee, name) for name in UNITS[:2]}
    for i, v in enumerate(venues):
        make.venue(
            units[UNITS[i % 2]], name=v.name, type=v.type_key, lon=v.lon, lat=v.lat, phone=v.phone
        )


@pytest.fixture
def crowded(db, make) -> list[str]:
    """The demo's size: 100 published venues of six units, two thirds of them in seven
    clusters a few hundred metres across; an admin with a long name. Their names."""
    committee = make.committee(name="镇江市润州区青年工作委员会")
    units = {name: make.unit(committee, name) for name in UNITS}
    make.admin(committee, username="admin", display_name="镇江市润州区青年工作委员会")
    venues, _district, _streets = crowded_world(100)
    for v in venues:
        make.venue(units[v.unit], name=v.name, type=v.type_key, lon=v.lon, lat=v.lat, phone=v.phone)
    return [v.name for v in venues]


def fetch(driver: Any, href: str) -> tuple[int, str, bytes]:
    """GET ``href`` from the page, with the browser's own session: status, type, body."""
    got = driver.execute_async_script(
        """
        var done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(function (r) {
          return r.arrayBuffer().then(function (buf) {
            var bytes = new Uint8Array(buf), text = '';
            for (var i = 0; i < bytes.length; i += 8192) {
              text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
            }
            done([r.status, r.headers.get('Content-Type'), btoa(text)]);
          });
        }).catch(function (e) { done([0, String(e), '']); });
        """,
        href,
    )
    return int(got[0]), str(got[1]), base64.b64decode(got[2])


def open_dashboard(driver: Any) -> None:
    """Through the menu, as a person would (behind the menu button on a phone)."""
    toggler = driver.find_element(By.CSS_SELECTOR, ".navbar-toggler")
    if toggler.is_displayed():
        toggler.click()
        WebDriverWait(driver, 5).until(
            lambda d: d.find_element(By.ID, "nav-dashboard").is_displayed()
        )
    driver.find_element(By.ID, "nav-dashboard").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "print-A4"))


def test_admin_prints_a4_and_a3_and_every_index_entry_is_on_a_page(browser_app, driver, crowded):
    driver.set_script_timeout(120)
    with live_server(browser_app) as base:
        log_in(driver, base, "admin")
        printed: dict[str, str] = {}
        for size in (DESKTOP, PHONE):
            driver.set_window_size(*size)
            driver.get(f"{base}/")
            open_dashboard(driver)
            width = driver.execute_script("return document.documentElement.clientWidth")
            for paper in ("A4", "A3"):
                link = driver.find_element(By.ID, f"print-{paper}")
                box = driver.execute_script(
                    "var r = arguments[0].getBoundingClientRect(); return [r.left, r.right];",
                    link,
                )
                assert link.is_displayed() and 0 <= box[0] and box[1] <= width, (size, paper)
                href = link.get_attribute("href")
                assert printed.setdefault(paper, href) == href  # the same print on a phone
        for paper, href in printed.items():
            status, kind, data = fetch(driver, href)
            assert status == 200 and kind == "application/pdf", (paper, status, kind)
            text = read_pdf(data)
            assert index_problems(text, crowded) == [], paper
            if paper == "A4":
                assert len(text.boxes) == 2  # the index goes on to a second page


def test_menu_items_each_on_one_line_at_1366(browser_app, driver, small):
    """At 1366 x 900 no menu item wraps ("Register / a venue", "Log / out"), in English and
    in Chinese, and the menu is one row."""
    measure = """
        return Array.from(document.querySelectorAll(
            'nav.navbar .navbar-brand, nav.navbar .nav-link, nav.navbar .btn,'
            + 'nav.navbar .navbar-text'
        )).filter(function (e) { return e.offsetParent !== null; }).map(function (e) {
          var s = getComputedStyle(e), r = e.getBoundingClientRect();
          var inner = r.height - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom)
                      - parseFloat(s.borderTopWidth) - parseFloat(s.borderBottomWidth);
          return [e.textContent.trim(), inner / parseFloat(s.lineHeight), r.top, r.right];
        });
    """
    with live_server(browser_app) as base:
        log_in(driver, base, "admin")
        for language in ("en", "zh_CN"):
            driver.get(f"{base}/dashboard/?lang={language}")
            items = driver.execute_script(measure)
            names = [i[0] for i in items]
            assert len(items) >= 12, names  # brand, 8 links, language, notices, account
            wrapped = [(i[0], round(i[1], 2)) for i in items if i[1] > 1.2]
            assert wrapped == [], language
            tops = {round(i[2]) for i in items if i[0] != names[0]}
            assert max(tops) - min(tops) <= 4, (language, items)  # one row
            width = driver.execute_script("return document.documentElement.clientWidth")
            assert max(i[3] for i in items) <= width, items


def test_map_panels_show_at_the_size_they_are_drawn(browser_app, driver, small):
    """The four map panels are shown two a row at 1366 px, not shrunk to less than half
    their size (their 10 pt labels then read at about 13 px and more)."""
    charts(driver, shown=True)
    with live_server(browser_app) as base:
        log_in(driver, base, "admin")
        driver.get(f"{base}/dashboard/?period=month&at=2026-03-01&lang=en")
        script = """
            var imgs = Array.from(document.querySelectorAll('figure[id^="chart-map_"] img'));
            imgs.forEach(function (i) { i.loading = 'eager'; });
            if (!imgs.every(function (i) { return i.complete && i.naturalWidth > 0; })) return null;
            return imgs.map(function (i) {
              return i.getBoundingClientRect().width / i.naturalWidth;
            });
        """
        ratios = WebDriverWait(driver, 60).until(lambda d: d.execute_script(script))
        assert len(ratios) == 4
        assert min(ratios) >= 0.85, ratios
