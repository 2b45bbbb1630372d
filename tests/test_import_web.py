"""The venue import page through real HTTP: who may import what, every file format a committee
is likely to upload, and that a refused upload lists its rows and writes nothing."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from mapservice.core.coords import wgs84_to_gcj02
from mapservice.core.venue_io import COLUMNS
from mapservice.models import AuditEntry, Venue
from tests.conftest import RUNZHOU_POINT, login, reload

# A second point in Runzhou, in 宝塔路街道 (WGS-84).
BAOTA_POINT = (119.44, 32.205)


@pytest.fixture
def world(make: Any) -> dict[str, Any]:
    committee = make.committee()
    unit_a, unit_b = make.unit(committee, "单位甲"), make.unit(committee, "单位乙")
    group = make.group(committee, unit_b, "乙团支部")
    make.admin(committee, username="admin")
    make.secretary(unit_a, username="sec-a")
    make.booker(group, username="booker")
    return {
        "committee": committee,
        "unit_a": unit_a,
        "unit_b": unit_b,
        "venue_b": make.venue(unit_b, name="乙会议室", type="meeting_room"),
    }


def venue_count(db: Any) -> int:
    reload(db)
    return int(db.scalar(select(func.count(Venue.id))))


def csv_bytes(rows: list[dict[str, Any]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def upload(client: Any, data: bytes, filename: str, lang: str = "en") -> Any:
    return client.post(
        f"/import/venues?lang={lang}",
        data={"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def venue_row(**kw: Any) -> dict[str, Any]:
    row = {
        "name": "甲羽毛球馆",
        "unit": "单位甲",
        "type": "badminton",
        "lon": RUNZHOU_POINT[0],
        "lat": RUNZHOU_POINT[1],
        "crs": "wgs84",
        "capacity_units": 3,
        "hours": "Mon-Sun 08:00-22:00",
        "phone": "0511-88880000",
    }
    row.update(kw)
    return row


def two_good_rows(unit: str = "单位甲") -> list[dict[str, Any]]:
    glon, glat = wgs84_to_gcj02(*BAOTA_POINT)
    return [
        venue_row(unit=unit),
        venue_row(
            name="甲会议室",
            unit=unit,
            type="meeting_room",
            lon=f"{glon:.7f}",
            lat=f"{glat:.7f}",
            crs="gcj02",
        ),
    ]


def problems_of(page: str) -> list[str]:
    block = re.search(r'id="import-problems".*?</ul>', page, re.S)
    assert block, page
    return re.findall(r"<li>(.*?)</li>", block.group(0), re.S)


def assert_imported(db: Any, created: int = 2, unit: Any = None) -> None:
    reload(db)
    first = db.scalars(select(Venue).where(Venue.name == "甲羽毛球馆")).one()
    second = db.scalars(select(Venue).where(Venue.name == "甲会议室")).one()
    assert (first.lon, first.lat) == pytest.approx(RUNZHOU_POINT, abs=1e-6)
    assert (second.lon, second.lat) == pytest.approx(BAOTA_POINT, abs=1e-6)
    assert second.entered_crs == "gcj02" and second.type == "meeting_room"
    assert first.capacity_units == 3 and first.hours_text == "Mon-Sun 08:00-22:00"
    assert first.street.name == "和平路街道" and second.street.name == "宝塔路街道"
    if unit is not None:
        assert first.unit_id == second.unit_id == unit.id


def test_secretary_imports_venues_of_its_unit(client, db, world):
    login(client, "sec-a")
    assert client.get("/import/venues").status_code == 200
    resp = upload(client, csv_bytes(two_good_rows()), "venues.csv")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    report = re.search(r'id="import-report">(.*?)</div>', page, re.S)
    assert report and re.search(r"\b2\b", report.group(1)), page
    assert_imported(db, unit=world["unit_a"])
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "venue.import")).one()
    assert entry.actor_name == "sec-a"


def test_secretary_cannot_import_another_units_venue(client, db, world):
    login(client, "sec-a")
    before = venue_count(db)
    rows = [*two_good_rows(), venue_row(name="乙的新场地", unit="单位乙")]  # row 4
    resp = upload(client, csv_bytes(rows), "venues.csv")
    assert resp.status_code == 422
    problems = problems_of(resp.get_data(as_text=True))
    assert len(problems) == 1
    assert "Row 4" in problems[0] and "own unit" in problems[0]
    assert venue_count(db) == before
    assert db.scalars(select(Venue).where(Venue.name == "甲羽毛球馆")).first() is None


def test_refusal_lists_every_bad_row_in_chinese(client, db, world):
    login(client, "sec-a")
    before = venue_count(db)
    rows = [
        venue_row(),  # row 2: good
        venue_row(name="坏类型", type="moon_base"),  # row 3: refused by the file reader
        venue_row(name="在北京", lon=116.397, lat=39.909),  # row 4: outside the district
        venue_row(name="乙的", unit="单位乙"),  # row 5: another unit's
    ]
    resp = upload(client, csv_bytes(rows), "venues.csv", lang="zh_CN")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "未导入任何数据" in page
    problems = problems_of(page)
    assert {int(n) for p in problems for n in re.findall(r"第\s*(\d+)\s*行", p)} == {3, 4, 5}
    assert any("moon_base" in p for p in problems)
    assert any("润州区" in p for p in problems)
    assert venue_count(db) == before


def test_admin_imports_for_any_unit(client, db, world):
    login(client, "admin")
    rows = [*two_good_rows(), venue_row(name="乙羽毛球馆", unit="单位乙")]
    resp = upload(client, csv_bytes(rows), "venues.csv")
    assert resp.status_code == 200
    assert_imported(db, unit=world["unit_a"])
    assert (
        db.scalars(select(Venue).where(Venue.name == "乙羽毛球馆")).one().unit_id
        == world["unit_b"].id
    )


def test_booker_and_anonymous_cannot_import(client, db, world):
    before = venue_count(db)
    data = csv_bytes(two_good_rows())
    resp = upload(client, data, "venues.csv")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    login(client, "booker")
    assert client.get("/import/venues").status_code == 403
    assert upload(client, data, "venues.csv").status_code == 403
    assert venue_count(db) == before


def xlsx_bytes(rows: list[dict[str, Any]], headers: dict[str, str]) -> bytes:
    wb = Workbook()
    ws = wb.active
    keys = list(rows[0])
    ws.append([headers.get(k, k) for k in keys])
    for row in rows:
        ws.append([row[k] for k in keys])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_with_chinese_headers_and_labels(client, db, world):
    login(client, "sec-a")
    rows = two_good_rows()
    rows[0]["type"] = "羽毛球场"
    rows[1]["type"] = "会议室"
    rows[1]["lon"], rows[1]["lat"] = float(rows[1]["lon"]), float(rows[1]["lat"])
    rows[1]["crs"] = "GCJ-02"
    resp = upload(client, xlsx_bytes(rows, dict(COLUMNS)), "场地.xlsx")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_imported(db, unit=world["unit_a"])


def test_gbk_encoded_csv(client, db, world):
    login(client, "sec-a")
    rows = [{dict(COLUMNS)[k]: v for k, v in row.items()} for row in two_good_rows()]
    data = csv_bytes(rows, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    resp = upload(client, data, "venues.csv")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert_imported(db, unit=world["unit_a"])


@pytest.mark.parametrize(
    "data, filename, text",
    [
        (b"PK\x03\x04 this is not really a workbook", "venues.xlsx", "Excel"),
        (xlsx_bytes([venue_row()], {})[:-200], "venues.xlsx", "Excel"),
        (bytes(range(256)) * 8, "venues.csv", "File:"),
        (b"\x89PNG\r\n\x1a\n" + bytes(1000), "venues.csv", "File:"),
        (b"name,unit\n", "venues.csv", "missing"),
        (b"", "venues.csv", "File:"),
        (b"name,unit,type,lon,lat\n", "venues.exe", "exe"),
    ],
    ids=["fake-zip", "truncated-xlsx", "random-bytes", "png", "missing-columns", "empty", "exe"],
)
def test_unusable_files_are_refused_with_a_message(client, db, world, data, filename, text):
    login(client, "sec-a")
    before = venue_count(db)
    resp = upload(client, data, filename)
    assert resp.status_code == 422
    problems = problems_of(resp.get_data(as_text=True))
    assert problems and any(text in p for p in problems), problems
    assert venue_count(db) == before


def test_upload_without_a_file(client, db, world):
    login(client, "sec-a")
    resp = client.post("/import/venues", data={}, content_type="multipart/form-data")
    assert resp.status_code == 422
    assert venue_count(db) == 1


def test_export_xlsx_imports_back_unchanged(client, db, world, make):
    make.venue(
        world["unit_a"],
        name="甲会议室",
        type="meeting_room",
        capacity_units=2,
        crs="gcj02",
        lon=wgs84_to_gcj02(*BAOTA_POINT)[0],
        lat=wgs84_to_gcj02(*BAOTA_POINT)[1],
    )
    make.venue(world["unit_a"], name="=甲内部活动室", published=False, facilities="-桌椅\n投影仪")
    login(client, "admin")
    exported = client.get("/venues/export.xlsx")
    assert exported.status_code == 200
    before = venue_count(db)
    resp = upload(client, exported.data, "venues.xlsx")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    report = re.search(r'id="import-report">(.*?)</div>', resp.get_data(as_text=True), re.S)
    assert report and "0 new, 0 updated, 3 unchanged" in report.group(1)
    assert venue_count(db) == before


# ---- issue 16, defect 7: the Chinese headers the page promises, listed on the page


def test_chinese_headers_and_their_common_synonyms_import(client, db, world):
    """ "单位" and "最多容纳人数" are what people write; the page promises Chinese headers."""
    login(client, "sec-a")
    header = ["名称", "单位", "类型", "经度", "纬度", "最多容纳人数", "开放时间", "时段长度"]
    values = ["甲羽毛球馆", "单位甲", "羽毛球场", *RUNZHOU_POINT, 40, "周一-周日 08:00-22:00", 60]
    data = ("\n".join(",".join(map(str, r)) for r in (header, values)) + "\n").encode()
    resp = upload(client, data, "场地.csv", lang="zh_CN")
    assert resp.status_code == 200, problems_of(resp.get_data(as_text=True))
    reload(db)
    venue = db.scalars(select(Venue).where(Venue.name == "甲羽毛球馆")).one()
    assert (venue.unit_id, venue.max_headcount) == (world["unit_a"].id, 40)
    assert venue.hours_text == "Mon-Sun 08:00-22:00"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_import_page_lists_the_accepted_headers_in_both_languages(client, world, lang):
    login(client, "sec-a")
    page = client.get(f"/import/venues?lang={lang}").get_data(as_text=True)
    block = re.search(r'id="import-columns".*?</details>', page, re.S)
    assert block, page
    rows = dict(re.findall(r'<tr data-column="(\w+)">(.*?)</tr>', block.group(0), re.S))
    assert list(rows) == [k for k, _zh in COLUMNS]
    for key, zh in COLUMNS:
        assert key in rows[key] and zh in rows[key]
    assert "单位" in rows["unit"] and "最多容纳人数" in rows["max_headcount"]
    assert "*" in rows["name"] and "*" not in rows["phone"]


def test_refusals_name_columns_in_the_readers_language(client, db, world):
    """In Chinese the columns are named by their Chinese headers, not the English keys."""
    login(client, "sec-a")
    before = venue_count(db)
    rows = [venue_row(capacity_units="很多"), venue_row(name="乙的", unit="单位乙")]
    page = upload(client, csv_bytes(rows), "venues.csv", lang="zh_CN").get_data(as_text=True)
    problems = problems_of(page)
    assert any("第 2 行「可并行数量」" in p for p in problems), problems
    # One prefix for both stages (file checks and the database checks of units, names, places).
    assert any("第 3 行「所属单位」：" in p for p in problems), problems
    assert not any("capacity_units" in p or ", unit" in p for p in problems), problems
    bad_header = b"name,unit,type,lon,lat,colour\na,b,gym,1,2,red\n"
    page = upload(client, bad_header, "venues.csv", lang="zh_CN").get_data(as_text=True)
    (problem,) = [p for p in problems_of(page) if "colour" in p]
    assert "colour" in problem and "所属单位" in problem and "capacity_units" not in problem
    page = upload(client, bad_header, "venues.csv", lang="en").get_data(as_text=True)
    (problem,) = [p for p in problems_of(page) if "colour" in p]
    assert "colour" in problem and "capacity_units" in problem and "所属单位" not in problem
    assert venue_count(db) == before


def _writer_is_free(database_url: str) -> bool:
    """Whether another connection could take SQLite's write lock right now (no waiting)."""
    import sqlite3

    conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_a_refused_import_never_holds_the_writer(client, db, world, database_url, monkeypatch):
    """Issue 23, item 3: a secretary's file (500 rows here: the lock is checked, not the
    size), refused (every row names another unit), is read and checked without SQLite's write
    lock: at the start of reading the file and of checking its rows, another connection can
    take the lock at once (a booking sent meanwhile is not queued behind the import)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")
    from mapservice.operations import imports

    seen: list[tuple[str, bool]] = []
    for name in ("read_venues", "check_import"):
        original = getattr(imports, name)

        def spy(*args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            seen.append((_name, _writer_is_free(database_url)))
            return _original(*args, **kw)

        monkeypatch.setattr(imports, name, spy)
    login(client, "sec-a")
    rows = [venue_row(name=f"乙场地{i}", unit="单位乙") for i in range(500)]
    before = venue_count(db)
    resp = upload(client, csv_bytes(rows), "venues.csv")
    assert resp.status_code == 422
    assert seen == [("read_venues", True), ("check_import", True)]
    assert venue_count(db) == before
