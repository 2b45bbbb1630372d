"""The dashboard pages: who may see what, exports that open and agree with the page, charts,
the printed map (web and CLI), and a browser that sees the charts rendered."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pypdf
import pytest
from openpyxl import load_workbook
from selenium.webdriver.support.ui import WebDriverWait

from mapservice.models import Venue
from tests.browser import chromium, live_server
from tests.conftest import login
from tests.test_browser_registry import log_in
from tests.test_stats import hand_case  # noqa: F401  (fixture)

Q = "period=custom&start=2026-03-02&end=2026-03-03"


def test_booker_403_anonymous_login_secretary_own_unit(client, make, hand_case):  # noqa: F811
    committee, owner, venue, _period = hand_case
    other = make.unit(committee, "别家单位")
    make.venue(other, name="别家会议室", type="meeting_room")
    make.booker(make.group(committee, other), username="booker")
    make.secretary(owner, username="sec")
    anon = client.get("/dashboard/")
    assert anon.status_code == 302 and "/login" in anon.headers["Location"]
    login(client, "booker")
    assert client.get(f"/dashboard/?{Q}").status_code == 403
    assert client.get(f"/dashboard/export/grouped.csv?{Q}").status_code == 403
    assert client.get("/dashboard/print.pdf").status_code == 403
    client.post("/logout")
    login(client, "sec")
    page = client.get(f"/dashboard/?{Q}").get_data(as_text=True)
    assert "夜场羽毛球馆" in page and "别家会议室" not in page
    rows = list(csv.reader(io.StringIO(client.get(f"/dashboard/export/grouped.csv?{Q}").text)))
    assert [r[0] for r in rows[1:]] == ["夜场羽毛球馆"]


def test_exports_hold_the_page_numbers_and_are_formula_safe(client, db, make, hand_case):  # noqa: F811
    committee, owner, venue, _period = hand_case
    make.venue(owner, name="=HYPERLINK(1)", type="meeting_room")
    make.admin(committee, username="admin")
    login(client, "admin")
    page = client.get(f"/dashboard/?{Q}")
    assert page.status_code == 200
    assert "26.7%" in page.text  # 12 / 45 booked of open capacity-hours
    raw = client.get(f"/dashboard/export/grouped.csv?{Q}")
    assert (
        raw.data.startswith(b"\xef\xbb\xbf") and "attachment" in raw.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(raw.data.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:3] == ["场地", "所属单位", "类型"]
    by_name = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert float(by_name["夜场羽毛球馆"]["使用率"]) == pytest.approx(12 / 45, abs=1e-4)
    assert "'=HYPERLINK(1)" in by_name
    wb = load_workbook(io.BytesIO(client.get(f"/dashboard/export/all.xlsx?{Q}").data))
    assert len(wb.sheetnames) == 8
    ws = wb[wb.sheetnames[0]]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    col = values[0].index("使用率")
    names = [r[0] for r in values[1:]]
    assert "'=HYPERLINK(1)" in names and "=HYPERLINK(1)" not in names
    row = values[1 + names.index("夜场羽毛球馆")]
    assert row[col] == pytest.approx(12 / 45, abs=1e-4)
    assert row[values[0].index("共享率")] == pytest.approx(10 / 12, abs=1e-4)
    single = load_workbook(io.BytesIO(client.get(f"/dashboard/export/sharing.xlsx?{Q}").data))
    assert single.active["A1"].value == "单位"
    assert client.get(f"/dashboard/export/nope.csv?{Q}").status_code == 404
    assert (
        client.get("/dashboard/?period=custom&start=2026-03-05&end=2026-03-01").status_code == 422
    )


def test_page_says_what_part_of_the_period_is_counted(client, make, hand_case):  # noqa: F811
    """This month is counted up to now, and says so; a month to come counts nothing and says
    that (its figures were a month of idle venues)."""
    committee, *_ = hand_case
    make.admin(committee, username="admin")
    login(client, "admin")
    page = client.get("/dashboard/?period=month").text
    assert "统计截至" in page and "其余部分尚未到来" in page
    later = (date.today() + timedelta(days=70)).isoformat()
    page = client.get(f"/dashboard/?period=month&at={later}").text
    assert "该时段尚未开始" in page
    assert client.get(f"/dashboard/?{Q}").text.count('id="period-note"') == 0  # March: past


def test_every_chart_is_a_png(client, make, hand_case):  # noqa: F811
    committee, *_ = hand_case
    make.admin(committee, username="admin")
    login(client, "admin")
    from mapservice.stats.charts import CHARTS

    for name in CHARTS:
        r = client.get(f"/dashboard/chart/{name}.png?{Q}&download=1")
        assert r.status_code == 200, name
        assert r.data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert "attachment" in r.headers["Content-Disposition"]
    assert client.get(f"/dashboard/chart/trend.svg?{Q}").data.lstrip().startswith(b"<?xml")


def test_printed_map_pdf_has_one_page_and_an_index(client, db, make, hand_case):  # noqa: F811
    committee, owner, *_ = hand_case
    make.venue(owner, name="团区委青年之家", type="youth_home", phone="0511-85000000")
    make.admin(committee, username="admin")
    login(client, "admin")
    r = client.get("/dashboard/print.pdf?paper=A4")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    pdf = pypdf.PdfReader(io.BytesIO(r.data))
    assert len(pdf.pages) == 1
    box = pdf.pages[0].mediabox
    assert round(float(box.width) / 72 * 25.4) == 297  # A4 landscape
    text = pdf.pages[0].extract_text()
    assert "阵地索引" in text and "团区委青年之家" in text and "0511-85000000" in text


def test_map_print_cli_png(database_url, db, make, tmp_path):
    from tests.test_cli import Cli

    committee = make.committee()
    unit = make.unit(committee)
    make.venue(unit, name="青年之家", type="youth_home")
    out = tmp_path / "map.png"
    result = Cli(database_url, tmp_path)(
        "map", "print", "--paper", "A3", "--format", "png", "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as im:
        assert im.width > im.height > 1000  # landscape, print resolution


@pytest.mark.browser
@pytest.mark.sqlite_only  # see conftest.SQLITE_ONLY
def test_browser_sees_the_charts_rendered(app, db, make, hand_case):  # noqa: F811
    committee, *_ = hand_case
    make.admin(committee, username="admin")
    assert db.query(Venue).count() == 1
    with live_server(app) as base, chromium(1280, 900) as driver:
        log_in(driver, base, "admin")
        driver.find_element("id", "nav-dashboard").click()
        driver.get(f"{base}/dashboard/?{Q}")
        script = (
            "var imgs = Array.from(document.querySelectorAll('figure.dash-chart img'));"
            "imgs.forEach(function (i) { i.loading = 'eager'; });"
            "return imgs.length > 0 && imgs.every(function (i) {"
            " return i.complete && i.naturalWidth > 0; });"
        )
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(script))
        count = driver.execute_script(
            "return document.querySelectorAll('figure.dash-chart img').length"
        )
        assert count == 11
        assert "26.7%" in driver.find_element("id", "totals").text
