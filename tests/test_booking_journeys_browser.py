"""Issue 16's booking journeys in headless Chromium, on a desktop (1366x900) and a phone
(390x844), in Chinese (the default): the booker picks a time by tapping its first and last
slot, books it weekly with "book the free dates only" over a date already taken, opens "my
bookings" (no 500, Chinese choices) and cancels one date after confirming; the secretary takes
a booking by phone for another unit's group, is asked before booking the same time again, and
finds both in "my bookings"; the admin is asked before a unit is suspended. One browser per
screen size for the whole module."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from mapservice.booking import engine as booking_engine
from mapservice.models import Booking, Unit, User
from tests.browser import chromium, live_server
from tests.conftest import reload
from tests.test_browser_registry import log_in

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Shanghai")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


# Each journey at both sizes; the phone's, which differ from the desktop's in layout only, in
# the SQLite run only (conftest.SQLITE_ONLY).
@pytest.fixture(
    scope="module",
    params=["desktop", pytest.param("phone", marks=pytest.mark.sqlite_only)],
    ids=list(SIZES),
)
def driver(request: pytest.FixtureRequest) -> Iterator[Any]:
    width, height = SIZES[request.param]
    with chromium(width, height) as chrome:
        if width < 500:  # headless windows are at least 500 px wide: emulate the phone
            chrome.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 3, "mobile": True},
            )
        yield chrome


@pytest.fixture
def browser_app(app: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True
    return app


@pytest.fixture
def site(browser_app: Any, driver: Any) -> Iterator[str]:
    with live_server(browser_app) as base:
        yield base
    driver.delete_all_cookies()


@pytest.fixture
def w(make: Any) -> dict[str, Any]:
    committee = make.committee()
    owner = make.unit(committee, "移动公司")
    other = make.unit(committee, "邮政公司")
    third = make.unit(committee, "华电公司")
    groups = {
        "owner": make.group(committee, owner, "移动团支部"),
        "other": make.group(committee, other, "邮政团支部"),
        "third": make.group(committee, third, "华电团支部"),
    }
    make.booker(groups["other"], username="booker")
    make.booker(groups["third"], username="booker3")
    make.secretary(owner, username="sec")
    make.admin(committee, username="admin")
    table = make.venue(owner, name="移动乒乓球室", type="table_tennis", capacity_units=1)
    court = make.venue(owner, name="移动羽毛球馆", capacity_units=2)
    return {"committee": committee, "owner": owner, "table": table, "court": court, **groups}


def click(driver: Any, element: Any) -> None:
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    element.click()


def slot(driver: Any, day: str, start: str) -> Any:
    return driver.find_element(
        By.CSS_SELECTOR, f".week-day[data-date='{day}'] a.slot[data-start='{start}']"
    )


def value(driver: Any, name: str) -> str:
    return str(driver.find_element(By.ID, name).get_attribute("value"))


def no_errors(driver: Any) -> None:
    """No script errors (a 409 answer or the missing favicon is logged as "network")."""
    logs = [
        e
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
    assert logs == [], logs


def test_the_booker_books_a_weekly_series_and_cancels_one_date(site, driver, db, wdb, w):
    day = datetime.now(TZ).date() + timedelta(days=2)
    taken = day + timedelta(days=7)
    # Another group holds the table on the second date, 19:00-20:00.
    booker3 = wdb.scalars(select(User).where(User.username == "booker3")).one()
    start = datetime(taken.year, taken.month, taken.day, 19, tzinfo=TZ)
    booking_engine.book(
        wdb, booker3, w["table"].id, w["third"].id, start, start + timedelta(hours=1)
    )
    wdb.commit()
    # A page replaced while a condition reads it (after a form is sent) is read again.
    wait = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,))
    log_in(driver, site, "booker")
    driver.get(f"{site}/venues/{w['table'].id}#book")
    # Tap the first slot, then the last: the form holds 19:00-21:00, the selection is shown.
    click(driver, slot(driver, day.isoformat(), "19:00"))
    assert (value(driver, "date"), value(driver, "start"), value(driver, "end")) == (
        day.isoformat(),
        "19:00",
        "20:00",
    )
    click(driver, slot(driver, day.isoformat(), "20:00"))
    assert (value(driver, "start"), value(driver, "end")) == ("19:00", "21:00")
    note = driver.find_element(By.ID, "slot-selection")
    assert note.is_displayed() and "19:00至21:00" in note.text and "已将" in note.text
    selected = driver.find_elements(By.CSS_SELECTOR, ".slot-selected")
    assert [s.get_attribute("data-start") for s in selected] == ["19:00", "20:00"]
    assert driver.current_url.endswith(f"/venues/{w['table'].id}#book")  # no page load
    # Weekly, three dates, the free ones only; the choices read in Chinese.
    click(driver, driver.find_element(By.CSS_SELECTOR, "#repeat-options summary"))
    repeat = Select(driver.find_element(By.ID, "repeat"))
    assert [o.text for o in repeat.options] == ["不重复", "每天", "每周", "每两周"]
    repeat.select_by_value("weekly")
    policy = Select(driver.find_element(By.ID, "policy"))
    assert [o.text for o in policy.options] == ["全部不预约", "仅预约空闲日期"]
    policy.select_by_visible_text("仅预约空闲日期")
    driver.find_element(By.ID, "count").send_keys("3")
    click(driver, driver.find_element(By.ID, "book-submit"))
    wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
    assert driver.current_url.endswith("/bookings/")
    assert "已在移动乒乓球室预约3个日期中的2个。" in driver.find_element(By.TAG_NAME, "main").text
    assert f"未预约：{taken.isoformat()} 19:00" in driver.find_element(By.TAG_NAME, "main").text
    rows = driver.find_elements(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
    assert len(rows) == 2
    assert f"{day.isoformat()} 19:00–21:00" in rows[0].text
    # Cancel the first date only, after confirming.
    first_id = rows[0].get_attribute("data-booking-id")
    click(driver, rows[0].find_element(By.CSS_SELECTOR, "details.booking-actions summary"))
    scope = Select(rows[0].find_element(By.NAME, "scope"))
    assert [o.text for o in scope.options] == ["仅此一次", "此次及之后", "整个周期预约"]
    button = rows[0].find_element(By.CSS_SELECTOR, ".cancel-form button[type=submit]")
    click(driver, button)
    alert = wait.until(EC.alert_is_present())
    assert "移动乒乓球室" in alert.text and "仅此一次" in alert.text
    alert.dismiss()  # "no": nothing happens
    assert driver.current_url.endswith("/bookings/")
    assert [b.status for b in series(db)] == ["confirmed", "confirmed"]
    click(driver, button)
    wait.until(EC.alert_is_present()).accept()
    wait.until(lambda d: "已取消1个预约。" in d.find_element(By.TAG_NAME, "main").text)
    left = driver.find_elements(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
    assert first_id not in [r.get_attribute("data-booking-id") for r in left]
    assert [b.status for b in series(db)] == ["cancelled", "confirmed"]
    assert not_wider_than_the_screen(driver)
    no_errors(driver)


def test_the_secretary_books_for_a_caller_and_finds_it(site, driver, db, w):
    day = datetime.now(TZ).date() + timedelta(days=3)
    # A page replaced while a condition reads it (after a form is sent) is read again.
    wait = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,))
    log_in(driver, site, "sec")
    driver.get(f"{site}/venues/{w['court'].id}#book")
    group = Select(driver.find_element(By.ID, "group"))
    assert "华电团支部" in [o.text for o in group.options]
    group.select_by_visible_text("华电团支部")
    click(driver, slot(driver, day.isoformat(), "18:00"))
    click(driver, driver.find_element(By.ID, "book-submit"))
    wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
    main = driver.find_element(By.TAG_NAME, "main").text
    assert f"已为华电团支部预约成功：移动羽毛球馆，{day.isoformat()} 18:00–19:00" in main
    (row,) = driver.find_elements(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
    assert "华电团支部" in row.text and "由您代为预约" in row.text
    # The same time again for the same group: asked first, booked on "yes".
    driver.get(f"{site}/venues/{w['court'].id}#book")
    Select(driver.find_element(By.ID, "group")).select_by_visible_text("华电团支部")
    click(driver, slot(driver, day.isoformat(), "18:00"))
    click(driver, driver.find_element(By.ID, "book-submit"))
    question = wait.until(EC.visibility_of_element_located((By.ID, "own-overlap")))
    assert "华电团支部已预约该场地的这一时段" in question.text
    assert len(bookings(db)) == 1
    click(driver, driver.find_element(By.ID, "confirm-overlap"))
    wait.until(EC.presence_of_element_located((By.ID, "upcoming")))
    rows = driver.find_elements(By.CSS_SELECTOR, "#upcoming li[data-booking-id]")
    assert len(rows) == 2 and all("由您代为预约" in r.text for r in rows)
    assert [(b.group_id, b.unit_numbers) for b in bookings(db)] == [
        (w["third"].id, [1]),
        (w["third"].id, [2]),
    ]
    assert not_wider_than_the_screen(driver)
    no_errors(driver)


def test_the_admin_is_asked_before_suspending_a_unit(site, driver, db, w):
    # A page replaced while a condition reads it (after a form is sent) is read again.
    wait = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,))
    log_in(driver, site, "admin")
    driver.get(f"{site}/units/")
    row = driver.find_element(By.CSS_SELECTOR, f"tr[data-unit-id='{w['owner'].id}']")
    click(driver, row.find_element(By.CSS_SELECTOR, "form[data-confirm] button"))
    alert = wait.until(EC.alert_is_present())
    assert "确定暂停移动公司吗？" in alert.text and "2 个场地" in alert.text
    alert.dismiss()
    reload(db)
    assert db.get(Unit, w["owner"].id).status == "active"
    row = driver.find_element(By.CSS_SELECTOR, f"tr[data-unit-id='{w['owner'].id}']")
    click(driver, row.find_element(By.CSS_SELECTOR, "form[data-confirm] button"))
    wait.until(EC.alert_is_present()).accept()
    wait.until(lambda d: "已暂停" in d.find_element(By.CSS_SELECTOR, ".alert-success").text)
    reload(db)
    assert db.get(Unit, w["owner"].id).status == "suspended"
    no_errors(driver)


# ---------------------------------------------------------------- helpers


def bookings(db: Any) -> list[Booking]:
    reload(db)
    return list(db.scalars(select(Booking).order_by(Booking.id)))


def series(db: Any) -> list[Booking]:
    return [b for b in bookings(db) if b.series_id]


def not_wider_than_the_screen(driver: Any) -> bool:
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;"
        )
    )
