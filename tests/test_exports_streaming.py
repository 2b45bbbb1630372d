"""Exports sent in pieces (issue 22, a worker's memory): the dashboard's tables, the venue
registry, the map's venues and the audit log arrive in several chunks that join to the same
file as the one built whole; XLSX is sent from a temporary file that is removed afterwards;
a bad parameter is refused before anything is sent (a clear 4xx, never a 500). And the
dashboard's tables a page at a time: the dashboard shows the first rows, the table's own page
all of them, sorted on the server.

The chunk sizes are made small here (a few rows, not a thousand) so that a few dozen venues
make several pieces."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mapservice.core.venue_io import write_venues
from mapservice.models import Unit, Venue
from mapservice.operations import audit as audit_ops
from mapservice.operations import venues as venue_ops
from mapservice.stats import export
from mapservice.stats.tablepage import DASHBOARD_ROWS, PER_PAGE
from tests.conftest import login

TABLES = ("grouped", "idle", "top", "sharing", "streets", "coverage", "trend", "heatmap")
VENUES = 57  # > PER_PAGE: the whole table is two pages; > DASHBOARD_ROWS
Q = "period=custom&start=2026-03-02&end=2026-03-03"


@pytest.fixture
def city(db, make) -> dict[str, Any]:
    """A committee with VENUES venues of two units (names sortable and each once), its
    admin logged-in-able; the venues registered by the admin (audit entries)."""
    committee = make.committee()
    units = [make.unit(committee, "甲单位"), make.unit(committee, "乙单位")]
    admin = make.admin(committee, username="admin")
    names = [f"场地{i:03d}" for i in range(VENUES)]
    for i, name in enumerate(names):
        make.venue(units[i % 2], admin, name=name, type="meeting_room", capacity_units=1 + i % 4)
    return {"committee": committee, "names": names, "admin": admin}


@pytest.fixture
def small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 7)
    monkeypatch.setattr(export, "FILE_CHUNK", 1024)
    monkeypatch.setattr(venue_ops, "EXPORT_BATCH", 10)
    monkeypatch.setattr(audit_ops, "EXPORT_BATCH", 5)


def pieces(client, url: str) -> tuple[Any, list[bytes]]:
    """The response and its body's pieces as the server produced them (not buffered)."""
    response = client.get(url, buffered=False)
    try:
        chunks = [c for c in response.response if c] if response.status_code == 200 else []
    finally:
        response.close()
    return response, chunks


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def export_temp_files() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("mapservice-export-*")}


def test_dashboard_csv_arrives_in_pieces_equal_to_the_whole(client, city, small_chunks):
    login(client, "admin")
    response, chunks = pieces(client, f"/dashboard/export/grouped.csv?{Q}")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    # The header, then VENUES rows 7 at a time.
    assert len(chunks) == 1 + -(-VENUES // 7)
    body = b"".join(chunks)
    rows = csv_rows(body)
    assert rows[0][:3] == ["场地", "所属单位", "类型"]
    assert sorted(r[0] for r in rows[1:]) == city["names"]  # every venue once, none lost
    # The same bytes as the file built whole (buffered by the test client).
    assert client.get(f"/dashboard/export/grouped.csv?{Q}").data == body
    # ... and as a CSV written row by row, all at once, from the page's own table.
    whole = io.StringIO(newline="")
    writer = csv.writer(whole, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
    assert body == b"\xef\xbb\xbf" + whole.getvalue().encode("utf-8")


def test_xlsx_is_sent_from_a_temporary_file_then_removed(
    client, city, small_chunks, tmp_path, monkeypatch
):
    # A temporary directory of this test's own: the other database's suite, run at the same
    # time by make test, writes its export files into the machine's.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    login(client, "admin")
    before = export_temp_files()
    response, chunks = pieces(client, f"/dashboard/export/all.xlsx?{Q}")
    assert response.status_code == 200 and response.is_streamed and len(chunks) > 3
    wb = load_workbook(io.BytesIO(b"".join(chunks)))
    assert len(wb.sheetnames) == 8
    ws = wb[wb.sheetnames[0]]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0][0] == "场地" and ws.freeze_panes == "A2"
    assert sorted(r[0] for r in values[1:]) == city["names"]
    used = values[0].index("使用率")
    assert ws.cell(row=2, column=used + 1).number_format == "0.0%"
    assert export_temp_files() == before  # removed once sent
    # A download the client gives up after the first piece: removed all the same.
    response = client.get(f"/dashboard/export/grouped.xlsx?{Q}", buffered=False)
    next(iter(response.response))
    response.close()
    assert export_temp_files() == before


def test_venue_registry_csv_and_geojson_stream_in_batches(client, db, city, small_chunks):
    login(client, "admin")
    for fmt in ("csv", "geojson"):
        response, chunks = pieces(client, f"/venues/export.{fmt}")
        assert response.status_code == 200 and response.is_streamed, fmt
        # Opening, a piece per 10 venues, closing (CSV: header, then the batches).
        assert len(chunks) == (1 if fmt == "csv" else 2) + -(-VENUES // 10), fmt
        body = b"".join(chunks)
        # The same bytes as the rows written whole, in one piece.
        venues = db.scalars(
            select(Venue)
            .join(Unit, Venue.unit_id == Unit.id)
            .where(Venue.committee_id == city["committee"].id)
            .order_by(Unit.name, Venue.name)
        ).all()
        rows = [venue_ops.row_of(v, "wgs84" if fmt == "geojson" else None) for v in venues]
        assert body == write_venues(rows, fmt), fmt
    names = [r[0] for r in csv_rows(client.get("/venues/export.csv").data)[1:]]
    assert sorted(names) == city["names"]
    doc = json.loads(client.get("/venues/export.geojson").data)
    assert sorted(f["properties"]["name"] for f in doc["features"]) == city["names"]


def test_map_venues_csv_streams_every_public_venue(client, city, small_chunks):
    response, chunks = pieces(client, f"/map/export.csv?committee={city['committee'].slug}")
    assert response.status_code == 200 and response.is_streamed and len(chunks) >= 6
    assert sorted(r[0] for r in csv_rows(b"".join(chunks))[1:]) == city["names"]


def test_audit_csv_streams_the_same_file_as_built_whole(client, db, city, small_chunks):
    login(client, "admin")
    response, chunks = pieces(client, "/audit/export.csv")
    assert response.status_code == 200 and response.is_streamed
    body = b"".join(chunks)
    flt = audit_ops.parse_filter({})
    lines = audit_ops.audit_lines(db, city["admin"], flt)
    assert len(lines) >= VENUES  # each registration
    assert len(chunks) == 1 + -(-len(lines) // 7)
    # The file built whole, from a DataFrame of every line (the CLI's way).
    assert body == audit_ops.export_audit(lines, "csv")
    wb = load_workbook(io.BytesIO(client.get("/audit/export.xlsx").data))
    assert wb.active.max_row == len(lines) + 1


@pytest.mark.parametrize(
    "url, status, says",
    [
        (f"/dashboard/export/grouped.pdf?{Q}", 404, "CSV or XLSX"),
        (f"/dashboard/export/nope.csv?{Q}", 404, "There is no table"),
        (f"/dashboard/export/all.csv?{Q}", 404, "There is no table"),
        ("/dashboard/export/grouped.csv?threshold=abc", 422, "out of range"),
        ("/dashboard/export/grouped.csv?period=custom&start=2026-13-40", 422, "YYYY-MM-DD"),
        ("/audit/export.csv?since=yesterday", 422, "is not a date"),
        ("/venues/export.csv?committee=nowhere", 404, "nowhere"),
        ("/map/export.csv?committee=runzhou&near=here", 422, "longitude,latitude"),
        ("/venues/export.pdf", 404, "was not found"),
    ],
)
def test_a_bad_parameter_is_a_clear_4xx_before_anything_is_sent(
    client, make, url: str, status: int, says: str
):
    committee = make.committee()
    make.venue(make.unit(committee, "甲单位"), name="场地000", type="meeting_room")
    make.admin(committee, username="admin")
    login(client, "admin")
    response = client.get(url + ("&" if "?" in url else "?") + "lang=en")
    assert response.status_code == status, response.text[:300]
    assert "text/html" in response.headers["Content-Type"]  # the error page, not a file
    assert "attachment" not in response.headers.get("Content-Disposition", "")
    assert says in response.text


# ---------------------------------------------------------------- the table's own page


def names_on(html: str) -> list[str]:
    return re.findall(r"<td>(场地\d{3})</td>", html)


def test_dashboard_shows_the_first_rows_and_links_to_the_whole_table(client, city):
    login(client, "admin")
    page = client.get(f"/dashboard/?{Q}&lang=en").text
    section = page[page.index('id="table-grouped"') :]
    section = section[: section.index("</section>")]
    assert names_on(section) == city["names"][:DASHBOARD_ROWS]  # the table's own order
    assert f"Showing the first {DASHBOARD_ROWS} of {VENUES} rows." in section
    link = section[section.index('id="table-grouped-all"') :]
    assert link.startswith('id="table-grouped-all" href="/dashboard/table/grouped?')
    assert "start=2026-03-02" in link[:200]
    # A table with fewer rows than that has no such link.
    streets = page[page.index('id="table-streets"') :]
    assert "table-streets-all" not in streets[: streets.index("</section>")]


def test_table_page_two_differs_and_sorting_is_on_the_server(client, city):
    login(client, "admin")
    base = f"/dashboard/table/grouped?{Q}&lang=en"
    first = client.get(base)
    assert first.status_code == 200
    one = names_on(first.text)
    two = names_on(client.get(base + "&page=2").text)
    assert len(one) == PER_PAGE and len(two) == VENUES - PER_PAGE
    assert not set(one) & set(two) and sorted(one + two) == city["names"]
    assert f"Rows 1–{PER_PAGE} of {VENUES}" in first.text
    by_name = names_on(client.get(base + "&sort=name").text)
    assert by_name == city["names"][:PER_PAGE]
    desc = names_on(client.get(base + "&sort=name&desc=1").text)
    assert desc == city["names"][::-1][:PER_PAGE]
    last = names_on(client.get(base + "&sort=name&desc=1&page=2").text)
    assert last == city["names"][::-1][PER_PAGE:]
    # By capacity units (1..4, cycling): the largest first, ties in the table's order.
    by_units = client.get(base + "&sort=capacity_units&desc=1").text
    assert set(names_on(by_units)[:14]) == {n for i, n in enumerate(city["names"]) if i % 4 == 3}
    assert 'aria-sort="descending"' in by_units
    # The page links keep the sort; the Chinese page names its headings in Chinese.
    assert "sort=capacity_units" in by_units[by_units.index('id="page-next"') :][:400]
    zh = client.get(f"/dashboard/table/grouped?{Q}&lang=zh_CN").text
    assert "<th" in zh and "可并行数" in zh and "Capacity units" not in zh


def test_every_table_sorts_by_every_column_both_ways(client, make):
    """Each of the dashboard's tables, on its own page, sorted by each of its columns both
    ways, answers with all its rows (the heatmap's frame has an index named like a column)."""
    committee = make.committee()
    unit = make.unit(committee, "甲单位")
    for i in range(4):
        make.venue(unit, name=f"场地{i:03d}", type="meeting_room", capacity_units=1 + i)
    make.admin(committee, username="admin")
    login(client, "admin")
    for name in TABLES:
        plain = client.get(f"/dashboard/table/{name}?{Q}&lang=en")
        assert plain.status_code == 200, name
        rows = plain.text.count("<tr>")
        columns = re.findall(r'data-column="([^"]+)"', plain.text)
        assert len(columns) >= 3, name
        for column in columns:
            for desc in ("0", "1"):
                got = client.get(f"/dashboard/table/{name}?{Q}&lang=en&sort={column}&desc={desc}")
                assert got.status_code == 200, (name, column, desc, got.text[:300])
                assert got.text.count("<tr>") == rows, (name, column, desc)


@pytest.mark.parametrize(
    "query, status, says",
    [
        ("page=3", 404, "There is no page 3: this table has 2 page(s)."),
        ("page=0", 422, "whole number"),
        ("page=abc", 422, "whole number"),
        ("sort=password", 422, "cannot be sorted by"),
    ],
)
def test_table_page_out_of_range_or_unknown_is_said_plainly(client, city, query, status, says):
    login(client, "admin")
    response = client.get(f"/dashboard/table/grouped?{Q}&lang=en&{query}")
    assert response.status_code == status
    assert says in response.text
    assert client.get(f"/dashboard/table/nope?{Q}&lang=en").status_code == 404


def test_table_page_is_the_dashboards_audience_only(client, city, make):
    assert client.get(f"/dashboard/table/grouped?{Q}").status_code == 302  # to log in
    committee = city["committee"]
    make.booker(make.group(committee, make.unit(committee, "第三单位")), username="booker")
    login(client, "booker")
    assert client.get(f"/dashboard/table/grouped?{Q}").status_code == 403


def test_concurrent_requests_for_one_report_build_it_once(app, make, monkeypatch):
    """The page's charts arriving together (the report not cached yet) build the report
    once, not once each: a build over a city's year holds every booking in memory."""
    import threading

    from mapservice.web import dashboard

    committee = make.committee()
    make.venue(make.unit(committee, "甲单位"), name="场地000", type="meeting_room")
    make.admin(committee, username="admin")
    built: list[int] = []
    real = dashboard.build_report

    def counted(*args, **kw):
        built.append(1)
        report = real(*args, **kw)
        time.sleep(0.5)  # long enough for the others to arrive meanwhile
        return report

    monkeypatch.setattr(dashboard, "build_report", counted)
    clients = [app.test_client() for _ in range(4)]
    for c in clients:
        login(c, "admin")
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda c=c, n=n: statuses.append(
                c.get(f"/dashboard/chart/{n}.svg?{Q}").status_code
            )
        )
        for c, n in zip(clients, ("trend", "heatmap", "by_type", "by_unit"), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    assert len(built) == 1


def test_a_worker_hands_its_free_heap_back_after_each_export_and_dashboard_build(
    client, city, make, monkeypatch
):
    """A worker's memory (bench #8): the heap's free pages go back to the system once a
    streamed export is closed (sent whole or given up) and once a dashboard report is built,
    not on the cached report's reuse; and only after the export's last piece was produced."""
    from mapservice.web import dashboard, streaming

    calls: list[str] = []
    produced: list[int] = []

    def spy(where: str):
        def release() -> bool:
            calls.append(where)
            return True

        return release

    monkeypatch.setattr(dashboard, "release_free_heap", spy("build"))
    monkeypatch.setattr(streaming, "release_free_heap", spy("download"))
    login(client, "admin")
    response = client.get(f"/dashboard/export/grouped.csv?{Q}", buffered=False)
    assert calls == ["build"]  # the report built for it, not yet the download
    for chunk in response.response:
        produced.append(len(chunk))
    assert calls == ["build"]  # every piece produced, the response not yet closed
    response.close()
    assert calls == ["build", "download"] and sum(produced) > 0
    # The same report within the minute: reused, no build; the download released.
    pieces(client, f"/dashboard/export/idle.csv?{Q}")
    assert calls == ["build", "download", "download"]
    # A venue registry export and a client that gives up after one piece: released too.
    response = client.get("/venues/export.csv", buffered=False)
    next(iter(response.response))
    response.close()
    assert calls[-1] == "download" and len(calls) == 4
