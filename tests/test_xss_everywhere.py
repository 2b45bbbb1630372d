"""Stored XSS: hostile text in every text field (unit, group, venue name/address/facilities,
booking purpose, closure reason, decline reason) is shown as text on every page that shows it —
in headless Chromium no script runs — and exported cells beginning with = + - @ are neutralised."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.orm import Session

from mapservice.booking import engine
from mapservice.db import writer
from mapservice.models import Closure, Venue
from tests.browser import chromium, live_server
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "x\\`);alert(1)",
    "`",
    "</script><script>alert(1)</script>",
]
TRAP = "window.__alerts = 0; window.alert = function () { window.__alerts += 1; };"
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def hostile(app: Any, db: Any, make: Any) -> dict[str, Any]:
    committee = make.committee()
    p = PAYLOADS
    unit = make.unit(committee, "单位" + p[0], secretary=p[1])
    group = make.group(committee, make.unit(committee, "外单位" + p[4]), "团支部" + p[2])
    make.secretary(unit, username="sec")
    admin = make.admin(committee, username="admin")
    make.booker(group, username="booker")
    venue = make.venue(
        unit,
        name="场地" + p[3] + p[0],
        address="地址" + p[4],
        facilities="=SUM(A1)" + p[1],
        min_notice_minutes=0,
        hours="Mon-Sun 00:00-24:00",
    )
    start = (datetime.now(TZ) + timedelta(days=2)).replace(
        hour=19, minute=0, second=0, microsecond=0
    )
    with Session(writer(db.get_bind()), expire_on_commit=False) as w:
        v = w.get(Venue, venue.id)
        v.closures.append(
            Closure(
                start_at=start + timedelta(days=1),
                end_at=start + timedelta(days=2),
                reason="检修" + p[2],
            )
        )
        booker = w.merge(make.session.get(type(admin), admin.id))
        engine.book(
            w,
            booker,
            venue.id,
            group.id,
            start,
            start + timedelta(hours=1),
            purpose="目的" + p[4] + p[0],
        )
        w.commit()
    # Issue 18's strings, as typed there, on a second venue (the map's popups and labels).
    literal = make.venue(
        unit,
        name="会馆${alert(2)}Hall\\`);alert(3)//a`b",
        address="</script><script>alert(5)</script>",
        lon=119.43,
    )
    return {"venue": venue, "literal": literal, "unit": unit, "group": group}


def log_in(driver: Any, base: str, username: str) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "whoami"))


def test_no_page_runs_the_payloads(app, hostile):
    app.config["WTF_CSRF_ENABLED"] = True
    venue = hostile["venue"]
    pages = [
        "/venues/",
        f"/venues/{venue.id}",
        "/units/",
        "/bookings/",
        "/bookings/requests",
        f"/venues/{venue.id}/calendar",
        "/dashboard",
        f"/map?venue={venue.id}",
        f"/map/embed?venue={venue.id}",
        "/venues/new",  # the folium picker, with the committee's venues for orientation
        f"/venues/{venue.id}/edit",
    ]
    with live_server(app) as base, chromium(1280, 900) as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        log_in(driver, base, "sec")
        seen = ""
        for path in pages:
            driver.get(base + path)
            if path.startswith("/map"):
                # The folium map has drawn and opened the permalink's popup: the name is text.
                WebDriverWait(driver, 20).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, ".venue-popup .popup-name")
                )
                name = driver.find_element(By.CSS_SELECTOR, ".venue-popup .popup-name")
                assert name.get_attribute("textContent") == venue.name, path
                literal = hostile["literal"]
                driver.execute_script("MapService.oneMap.openVenue(arguments[0])", literal.id)
                selector = f".venue-popup[data-venue-id='{literal.id}']"
                WebDriverWait(driver, 20).until(
                    lambda d, sel=selector: d.find_elements(
                        By.CSS_SELECTOR, sel + " .popup-address"
                    )
                )
                shown, address = driver.execute_script(
                    "var p = document.querySelector(arguments[0]);"
                    "return [p.querySelector('.popup-name').textContent,"
                    " p.querySelector('.popup-address').textContent];",
                    selector,
                )
                assert shown == literal.name, path
                assert address.endswith(literal.address), path
            if path == "/venues/new":
                # The picker's venues for orientation (from /map/data.json): drawn (as markers
                # or a cluster), each marker named by its venue's text.
                WebDriverWait(driver, 20).until(
                    lambda d: d.find_elements(
                        By.CSS_SELECTOR, "#pick-map .venue-marker, #pick-map .marker-cluster"
                    )
                )
                titles = driver.execute_script(
                    "return Array.from(document.querySelectorAll('#pick-map .venue-marker'))"
                    ".map(function (m) { return m.title; })"
                )
                assert set(titles) <= {venue.name, hostile["literal"].name}, titles
            assert driver.execute_script("return window.__alerts") == 0, path
            assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x']"), path
            seen += driver.execute_script("return document.body.textContent")
        driver.delete_all_cookies()
        log_in(driver, base, "booker")
        for path in ("/bookings/", f"/venues/{venue.id}", "/notifications"):
            driver.get(base + path)
            assert driver.execute_script("return window.__alerts") == 0, path
            assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x']"), path
            seen += driver.execute_script("return document.body.textContent")
        # The hostile text is shown, as text.
        for fragment in (
            "单位<img src=x onerror=alert(1)>",
            "检修x\\`);alert(1)",
            "目的</script><script>alert(1)</script>",
        ):
            assert fragment in seen, fragment


def without_csp(wsgi_app: Any) -> Any:
    """``wsgi_app`` answering without its Content-Security-Policy header."""

    def app(environ: Any, start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() != "content-security-policy"]
            return start_response(status, kept, *rest)

        return wsgi_app(environ, start)

    return app


def test_without_escaping_and_csp_a_payload_runs(database_url, hostile, tmp_path):
    """Negative control: served without its CSP, the page escapes every payload (none runs);
    an app made with the test-only switch ``NO_ESCAPE`` (templates not escaped), also without
    its CSP, runs them on the same page — so the check above can fail, and escaping alone
    keeps the payloads inert."""
    from mapservice import create_app
    from mapservice.core import faults

    for escaping in (True, False):
        with faults.enabled(*(() if escaping else (faults.NO_ESCAPE,))):
            app = create_app(
                {
                    "DATABASE_URL": database_url,
                    "SECRET_KEY": "test-secret",
                    "TESTING": True,
                    "INSTANCE_PATH": tmp_path,
                    "WTF_CSRF_ENABLED": False,
                }
            )
        app.wsgi_app = without_csp(app.wsgi_app)  # type: ignore[method-assign]
        try:
            with live_server(app) as base, chromium(1280, 900) as driver:
                driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
                log_in(driver, base, "sec")
                driver.get(base + "/units/")
                if escaping:
                    assert "单位<img src=x onerror=alert(1)>" in driver.execute_script(
                        "return document.body.textContent"
                    )
                    assert driver.execute_script("return window.__alerts") == 0
                    assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x']")
                else:
                    WebDriverWait(driver, 10).until(
                        lambda d: d.execute_script("return window.__alerts")
                    )
                    assert driver.find_elements(By.CSS_SELECTOR, "img[src='x']")
        finally:
            app.extensions["db_engine"].dispose()


def test_exports_neutralise_formulas(client, hostile):
    from tests.conftest import login

    login(client, "sec")
    text = client.get("/venues/export.csv").get_data(as_text=True)
    row = next(
        r
        for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        if r["name"].startswith("场地")
    )
    assert row["facilities"].startswith("'=SUM(A1)")
