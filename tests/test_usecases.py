"""Each use case has one home in ``mapservice/operations/`` and every surface calls it: these
tests pin that the web page, the API and the CLI answer alike for the same input (issue 17).
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mapservice.models import ApiToken, AuditEntry, Venue
from mapservice.operations.tokens import create_token
from tests.conftest import RUNZHOU_POINT, login, reload
from tests.test_cli import Cli
from tests.test_import_web import csv_bytes, problems_of, upload, venue_row
from tests.test_stats import hand_case  # noqa: F401  (fixture)

Q = "period=custom&start=2026-03-02&end=2026-03-03"


@pytest.fixture
def cli(db: Any, database_url: str, tmp_path: Path) -> Cli:
    return Cli(database_url, tmp_path)


@pytest.fixture
def world(make: Any) -> dict[str, Any]:
    committee = make.committee()
    unit = make.unit(committee, "单位甲")
    admin = make.admin(committee, username="admin")
    return {"committee": committee, "unit": unit, "admin": admin}


def cli_problems(result: Any) -> tuple[list[str], str]:
    """The CLI's refusal: the problem lines on stderr and the last ('Error: …') line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0 and lines[-1].startswith("Error: "), result.stderr
    return lines[:-1], lines[-1]


@pytest.mark.parametrize(
    "rows",
    [
        # unreadable rows (a bad number, an unknown type) and rows the database refuses
        # (an unknown unit, a point outside the district), with a good row between them
        [
            venue_row(),
            venue_row(name="坏经度", lon="东经119度"),
            venue_row(name="外星", type="swimming_pool_on_the_moon"),
            venue_row(name="别人的", unit="不存在的单位"),
            venue_row(name="在北京", lon="116.397", lat="39.909"),
        ],
        # only rows the database refuses
        [venue_row(), venue_row(name="别人的", unit="不存在的单位")],
    ],
    ids=["file-and-database", "database-only"],
)
def test_web_and_cli_import_refuse_a_file_with_the_same_messages(
    client, cli, db, world, tmp_path, rows
):
    data = csv_bytes(rows)
    login(client, "admin")
    page = upload(client, data, "venues.csv", lang="zh")
    assert page.status_code == 422
    on_page = [html.unescape(p).strip() for p in problems_of(page.get_data(as_text=True))]
    path = tmp_path / "venues.csv"
    path.write_bytes(data)
    on_console, last = cli_problems(cli("import", "venues", str(path)))
    assert on_console == on_page and on_page
    assert f"未导入任何数据：共{len(on_page)}处问题" in last
    reload(db)
    assert db.scalar(select(Venue.id).where(Venue.name == "甲羽毛球馆")) is None


def test_web_and_cli_import_a_good_file_alike(client, cli, db, world, tmp_path):
    path = tmp_path / "venues.csv"
    path.write_bytes(csv_bytes([venue_row()]))
    result = cli("import", "venues", str(path))
    assert result.exit_code == 0, result.stderr
    assert "created 1, updated 0, unchanged 0" in result.output
    login(client, "admin")
    again = upload(client, path.read_bytes(), "venues.csv", lang="en")
    assert again.status_code == 200
    reload(db)
    venue = db.scalars(select(Venue).where(Venue.name == "甲羽毛球馆")).one()
    assert (venue.lon, venue.lat) == pytest.approx(RUNZHOU_POINT, abs=1e-6)
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.action == "venue.import"))
    assert len(list(actions)) == 2  # both imports audited the same way


def test_printed_map_from_the_cli_and_the_dashboard_is_the_same(
    client, cli, db, make, world, tmp_path, monkeypatch
):
    """The same title (the committee's, translated) over the same venues and areas."""
    make.venue(world["unit"], name="青年之家", type="youth_home")
    make.venue(world["unit"], name="未发布", published=False)
    printed: list[dict[str, Any]] = []

    def fake_print_map(venues: Any, district: Any, streets: Any, **kw: Any) -> bytes:
        names = sorted(v.name for v in venues)
        printed.append({"venues": names, "streets": sorted(n for n, _g in streets), **kw})
        return b"%PDF-1.4 fake"

    monkeypatch.setattr("mapservice.operations.printing.print_map", fake_print_map)
    out = tmp_path / "map.pdf"
    result = cli("map", "print", "--paper", "A4", "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert "(1 venues)" in result.output
    login(client, "admin")
    resp = client.get("/dashboard/print.pdf?paper=A4&lang=zh")
    assert resp.status_code == 200 and resp.data == out.read_bytes()
    assert resp.headers["Content-Disposition"].endswith(f"{world['committee'].slug}-one-map-A4.pdf")
    from_cli, from_web = printed
    assert from_cli == from_web
    assert from_cli["title"] == f"{world['committee'].name} 功能阵地分布图"
    assert from_cli["venues"] == ["青年之家"]


def test_api_utilization_and_the_dashboard_table_agree(client, db, make, hand_case):  # noqa: F811
    committee, *_ = hand_case
    admin = make.admin(committee, username="admin")
    _t, secret = create_token(db, None, admin, ["read"])
    db.commit()
    login(client, "admin")
    for by, label in (("venue", "场地"), ("unit", "单位"), ("type", "类型")):
        raw = client.get(f"/dashboard/export/grouped.csv?{Q}&by={by}")
        rows = list(csv.DictReader(io.StringIO(raw.data.decode("utf-8-sig"))))
        page = {r[label]: r for r in rows}
        body = client.get(
            f"/api/v1/stats/utilization?from=2026-03-02&to=2026-03-03&group_by={by}",
            headers={"Authorization": f"Bearer {secret}"},
        ).get_json()
        api = {r["name"]: r for r in body["rows"]}
        assert set(api) == set(page) and api, by
        for name, row in api.items():
            for key, header in (
                ("open_cap_hours", "开放容量小时"),
                ("booked_cap_hours", "预约容量小时"),
                ("shared_cap_hours", "跨单位共享容量小时"),
                ("utilization", "使用率"),
                ("sharing_rate", "共享率"),
            ):
                assert row[key] == pytest.approx(float(page[name][header]), abs=1e-3), (by, key)
        if by == "venue":
            assert api["夜场羽毛球馆"]["booked_cap_hours"] == 12.0  # the hand-computed case


def test_cli_and_account_page_revoke_tokens_alike(client, cli, db, world):
    admin = world["admin"]
    first, first_secret = create_token(db, None, admin, ["read"], "one")
    second, _s = create_token(db, None, admin, ["read"], "two")
    db.commit()
    result = cli("token", "revoke", "--user", "admin", "--prefix", first_secret[:12])
    assert result.exit_code == 0, result.stderr
    assert "revoked 1 token(s)" in result.output
    assert (
        client.get(
            "/api/v1/bookings", headers={"Authorization": f"Bearer {first_secret}"}
        ).status_code
        == 401
    )
    login(client, "admin")
    resp = client.post(f"/account/tokens/{second.id}/revoke")
    assert resp.status_code in (302, 303)
    reload(db)
    assert all(t.revoked_at is not None for t in db.scalars(select(ApiToken)))
    revoked = db.scalars(select(AuditEntry.action).where(AuditEntry.action == "token.revoke"))
    assert len(list(revoked)) == 2  # the console's revocation is audited too
    again = cli("token", "revoke", "--user", "admin", "--prefix", first_secret[:12])
    assert again.exit_code != 0
