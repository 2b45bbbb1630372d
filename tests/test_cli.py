"""The ``mapservice`` console script, driven through Click's runner against the test database:
every command's happy path, and that every refusal exits non-zero with a one-line reason and
writes nothing."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from click.testing import CliRunner, Result
from flask.cli import ScriptInfo
from shapely.geometry import box
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mapservice import cli as cli_module
from mapservice.cli import main
from mapservice.core import geo
from mapservice.core.venue_io import read_venues
from mapservice.models import Area, Committee, Unit, User, Venue
from tests.conftest import GEODATA, PASSWORD, RUNZHOU_POINT, Snapshot, login, reload

DEMO_PASSWORD = "mapservice-demo"


class Cli:
    def __init__(self, database_url: str, instance: Path) -> None:
        self.runner = CliRunner()
        self.env = {
            "DATABASE_URL": database_url,
            "MAPSERVICE_INSTANCE": str(instance),
            "MAPSERVICE_SECRET_KEY": "x",
            "MAPSERVICE_LANGUAGE": "zh_CN",
        }

    def __call__(self, *args: str) -> Result:
        # The console script's own app factory, wrapped only to close the app's connection
        # pool afterwards (a real process exits; the test process would leak connections).
        apps: list[Any] = []

        def create_app() -> Any:
            apps.append(cli_module._factory())
            return apps[-1]

        try:
            return self.runner.invoke(
                main,
                list(args),
                env=self.env,
                obj=ScriptInfo(create_app=create_app),
                catch_exceptions=False,
            )
        finally:
            for app in apps:
                app.extensions["db_engine"].dispose()


@pytest.fixture
def cli(db: Any, database_url: str, tmp_path: Path) -> Cli:
    return Cli(database_url, tmp_path)


_DEMO: dict[str, Snapshot] = {}  # the demo world the first ``seeded`` test seeded, by URL


@pytest.fixture
def seeded(cli: Cli, database_url: str, engine: Engine) -> Cli:
    """The database as ``mapservice seed demo`` leaves it: seeded through the console script
    by the module's first test that asks (test_seed_demo_… checks that seeding), then, for
    the others, the very same rows put back (the seed takes ~30 s; a copy, a second)."""
    if database_url not in _DEMO:
        result = cli("seed", "demo")
        assert result.exit_code == 0, result.output
        _DEMO[database_url] = Snapshot(engine)
    else:
        _DEMO[database_url].restore(engine)
    return cli


def count(db: Any, model: Any, *where: Any) -> int:
    reload(db)
    return int(db.scalar(select(func.count()).select_from(model).where(*where)))


def committee_of(db: Any, slug: str) -> Committee:
    return db.scalars(select(Committee).where(Committee.slug == slug)).one()


def one_line_reason(result: Result) -> str:
    """The refusal: non-zero exit, and the last stderr line is 'Error: <reason>'."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), result.stderr
    return lines[-1]


def test_db_upgrade_is_idempotent(cli):
    for _ in range(2):
        result = cli("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output


def test_seed_demo_loads_two_committees_and_is_idempotent(seeded, db):
    runzhou, qiqihar = committee_of(db, "runzhou"), committee_of(db, "qiqihar-jianhua")
    assert count(db, Unit, Unit.committee_id == runzhou.id) >= 30
    assert count(db, Venue, Venue.committee_id == runzhou.id) >= 80
    assert count(db, Venue, Venue.committee_id == qiqihar.id) > 0
    with_street = count(db, Venue, Venue.committee_id == runzhou.id, Venue.street_id.is_not(None))
    assert with_street >= 0.8 * count(db, Venue, Venue.committee_id == runzhou.id)
    before = {m.__name__: count(db, m) for m in (Committee, Unit, Venue, User, Area)}

    again = seeded("seed", "demo")
    assert again.exit_code == 0, again.output
    assert "demo-admin" in again.output and DEMO_PASSWORD in again.output
    assert re.findall(r"venues \+(\d+)", again.output) == ["0", "0"]
    assert {m.__name__: count(db, m) for m in (Committee, Unit, Venue, User, Area)} == before


def test_demo_log_ins_work_in_the_web_app(seeded, db, client):
    users = {u.username: u for u in db.scalars(select(User))}
    assert users["demo-admin"].role == "committee_admin"
    assert users["demo-secretary"].role == "unit_secretary"
    assert db.get(Unit, users["demo-secretary"].unit_id).name == "中国移动镇江分公司"
    assert users["demo-booker"].role == "booker"
    assert users["demo-booker"].group.name == "瑞祥科技集团青年团支部"
    for username in ("demo-admin", "demo-secretary", "demo-booker"):
        resp = login(client, username, DEMO_PASSWORD)
        assert resp.status_code == 302, username
        client.post("/logout")
    assert login(client, "demo-admin", "wrong-password-123").status_code == 401


# ------------------------------------------------------------------------------------------
# Users


@pytest.fixture
def small(make: Any) -> dict[str, Any]:
    """One committee with streets, two units, a group, and a venue (no demo seed: fast)."""
    committee = make.committee()
    unit = make.unit(committee, "单位甲")
    group = make.group(committee, unit, "甲团支部")
    make.venue(unit, name="甲羽毛球馆")
    return {"committee": committee, "unit": unit, "group": group}


@pytest.mark.parametrize(
    "role, extra",
    [
        ("committee_admin", []),
        ("unit_secretary", ["--unit", "单位甲"]),
        ("booker", ["--group", "甲团支部"]),
    ],
)
def test_user_create_for_each_role(cli, db, client, small, role, extra):
    result = cli(
        "user", "create", "--username", "new-user", "--role", role, "--password", PASSWORD, *extra
    )
    assert result.exit_code == 0, result.output
    assert "created new-user" in result.output
    user = db.scalars(select(User).where(User.username == "new-user")).one()
    assert user.role == role and user.committee_id == small["committee"].id
    assert user.unit_id == (small["unit"].id if role == "unit_secretary" else None)
    assert user.group_id == (small["group"].id if role == "booker" else None)
    assert login(client, "new-user").status_code == 302


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--role", "unit_secretary", "--unit", "没有这个单位"], "没有这个单位"),
        (["--role", "unit_secretary"], "--unit"),
        (["--role", "booker"], "--group"),
        (["--role", "booker", "--group", "没有这个团支部"], "没有这个团支部"),
        (["--role", "committee_admin", "--password", "short"], "password"),
        (["--role", "committee_admin", "--username", "taken"], "taken"),
    ],
)
def test_user_create_refusals(cli, db, small, make, args, reason):
    make.admin(small["committee"], username="taken")
    before = count(db, User)
    defaults = {"--username": "someone", "--password": PASSWORD}
    for key, value in defaults.items():
        if key not in args:
            args = [*args, key, value]
    line = one_line_reason(cli("user", "create", *args))
    assert reason in line
    assert count(db, User) == before


def test_user_reset_password(cli, db, client, small, make):
    make.admin(small["committee"], username="forgetful")
    result = cli(
        "user", "reset-password", "--username", "forgetful", "--password", "a-brand-new-secret"
    )
    assert result.exit_code == 0, result.output
    assert login(client, "forgetful").status_code == 401
    assert login(client, "forgetful", "a-brand-new-secret").status_code == 302
    assert "no user" in one_line_reason(
        cli("user", "reset-password", "--username", "nobody", "--password", "a-brand-new-secret")
    )
    assert "password" in one_line_reason(
        cli("user", "reset-password", "--username", "forgetful", "--password", "short")
    )
    assert login(client, "forgetful", "a-brand-new-secret").status_code == 302


# ------------------------------------------------------------------------------------------
# Export and import


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def test_export_every_format_and_round_trip(seeded, db, tmp_path):
    runzhou = committee_of(db, "runzhou")
    n = count(db, Venue, Venue.committee_id == runzhou.id, Venue.retired.is_(False))
    for fmt in ("csv", "xlsx", "geojson"):
        out = tmp_path / f"venues.{fmt}"
        result = seeded(
            "export", "venues", "--format", fmt, "--output", str(out), "--committee", "runzhou"
        )
        assert result.exit_code == 0, result.output
        assert f"wrote {n} venues" in result.output
        rows, errors = read_venues(out.read_bytes(), out.name)
        assert errors == [] and len(rows) == n

    # Importing the very same file changes nothing.
    audit_before = count(db, Venue)
    same = seeded("import", "venues", str(tmp_path / "venues.csv"), "--committee", "runzhou")
    assert same.exit_code == 0, same.output + same.stderr
    assert f"created 0, updated 0, unchanged {n}" in same.output
    assert count(db, Venue) == audit_before

    # Edit one cell: exactly that venue is updated.
    rows = read_csv(tmp_path / "venues.csv")
    target = rows[5]
    new_capacity = str(int(target["capacity_units"]) % 100 + 1)
    target["capacity_units"] = new_capacity
    edited = tmp_path / "edited.csv"
    write_csv(edited, rows)
    result = seeded("import", "venues", str(edited), "--committee", "runzhou")
    assert result.exit_code == 0, result.output + result.stderr
    assert f"created 0, updated 1, unchanged {n - 1}" in result.output
    reload(db)
    venue = db.scalars(
        select(Venue).join(Unit).where(Unit.name == target["unit"], Venue.name == target["name"])
    ).one()
    assert venue.capacity_units == int(new_capacity)


def test_export_to_an_unwritable_path_fails_cleanly(cli, small, tmp_path):
    line = one_line_reason(
        cli(
            "export",
            "venues",
            "--format",
            "csv",
            "--output",
            str(tmp_path / "no" / "such" / "dir.csv"),
        )
    )
    assert "cannot write" in line


def test_import_with_bad_rows_writes_nothing_and_reports_every_row(cli, db, small, tmp_path):
    good = {
        "name": "新羽毛球馆",
        "unit": "单位甲",
        "type": "badminton",
        "lon": str(RUNZHOU_POINT[0]),
        "lat": str(RUNZHOU_POINT[1]),
        "hours": "Mon-Sun 08:00-22:00",
    }
    rows = [
        good,  # row 2
        {**good, "name": "坏类型", "type": "swimming_pool_on_the_moon"},  # row 3
        {**good, "name": "在北京", "lon": "116.397", "lat": "39.909"},  # row 4
        {**good, "name": "别人的", "unit": "不存在的单位"},  # row 5
        {**good, "name": "另一个好场地"},  # row 6
    ]
    path = tmp_path / "bad.csv"
    write_csv(path, rows)
    before = count(db, Venue)
    result = cli("import", "venues", str(path))
    assert result.exit_code != 0
    reported = {int(n) for n in re.findall(r"第\s*(\d+)\s*行", result.stderr)}
    assert reported == {3, 4, 5}, result.stderr
    assert "swimming_pool_on_the_moon" in result.stderr
    assert "不存在的单位" in result.stderr
    assert count(db, Venue) == before
    assert count(db, Venue, Venue.name.in_(["新羽毛球馆", "另一个好场地"])) == 0


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("missing.csv", None, "no such file"),
        ("venues.txt", b"name,unit\n", "不支持的文件类型「txt」"),
        ("empty.csv", b"", "文件中没有场地数据"),
        ("columns.csv", b"name,unit\n", "缺少必需的列：类型、经度、纬度"),
    ],
)
def test_import_of_an_unusable_file_is_refused(cli, db, small, tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    before = count(db, Venue)
    result = cli("import", "venues", str(path))
    line = one_line_reason(result)
    assert reason in (line if content is None else result.stderr)
    # The refusal is the import page's, in the console's language (MAPSERVICE_LANGUAGE).
    assert content is None or "未导入任何数据：共1处问题" in line
    assert count(db, Venue) == before


# ------------------------------------------------------------------------------------------
# Geodata and committees


def halves_in_gk(path: Path, with_names: bool = True) -> float:
    """Write two polygons splitting Runzhou's bounding box (east/west) in EPSG:4549; returns
    the splitting longitude."""
    (district,) = geo.read_areas(GEODATA / "runzhou" / "district.geojson", level="district")
    minx, miny, maxx, maxy = district.geometry.bounds
    split = RUNZHOU_POINT[0]
    pad = 0.01
    shapes = [
        box(split, miny - pad, maxx + pad, maxy + pad),
        box(minx - pad, miny - pad, split, maxy + pad),
    ]
    columns = {"name": ["东片", "西片"]} if with_names else {"code": [1, 2]}
    frame = gpd.GeoDataFrame(columns, geometry=shapes, crs="EPSG:4326").to_crs("EPSG:4549")
    frame.to_file(path, driver="GPKG")
    return split


def test_geodata_import_reassigns_streets(cli, db, make, small, tmp_path):
    east = make.venue(small["unit"], name="东边", lon=RUNZHOU_POINT[0] + 0.02, lat=RUNZHOU_POINT[1])
    west = make.venue(small["unit"], name="西边", lon=RUNZHOU_POINT[0] - 0.02, lat=RUNZHOU_POINT[1])
    path = tmp_path / "halves.gpkg"
    halves_in_gk(path)
    result = cli("geodata", "import", str(path), "--level", "street")
    assert result.exit_code == 0, result.output + result.stderr
    assert "loaded 2 street" in result.output
    reload(db)
    streets = db.scalars(select(Area.name).where(Area.level == "street")).all()
    assert sorted(streets) == ["东片", "西片"]
    assert db.get(Venue, east.id).street.name == "东片"
    assert db.get(Venue, west.id).street.name == "西片"
    assert all(v.street is not None for v in db.scalars(select(Venue)))


def test_geodata_import_refusals_change_nothing(cli, db, small, tmp_path):
    before = sorted(db.scalars(select(Area.name)).all())
    unnamed = tmp_path / "unnamed.gpkg"
    halves_in_gk(unnamed, with_names=False)
    assert "no name column" in one_line_reason(
        cli("geodata", "import", str(unnamed), "--level", "street")
    )
    assert "no such file" in one_line_reason(
        cli("geodata", "import", str(tmp_path / "nope.gpkg"), "--level", "street")
    )
    garbage = tmp_path / "garbage.geojson"
    garbage.write_bytes(b"\x00\x01 not a map")
    assert "garbage.geojson" in one_line_reason(
        cli("geodata", "import", str(garbage), "--level", "street")
    )
    reload(db)
    assert sorted(db.scalars(select(Area.name)).all()) == before


def test_committee_create(cli, db):
    district = str(GEODATA / "saihan" / "district.geojson")
    result = cli(
        "committee", "create", "--slug", "saihan", "--name", "赛罕区青工委", "--district", district
    )
    assert result.exit_code == 0, result.output + result.stderr
    committee = committee_of(db, "saihan")
    assert committee.name == "赛罕区青工委" and committee.timezone == "Asia/Shanghai"
    assert [a.name for a in committee.areas] == ["赛罕区"]
    assert "青工委“saihan”已存在" in one_line_reason(
        cli("committee", "create", "--slug", "saihan", "--name", "又一个", "--district", district)
    )
    line = one_line_reason(
        cli(
            "committee",
            "create",
            "--slug",
            "mars",
            "--name",
            "火星",
            "--district",
            district,
            "--timezone",
            "Mars/Olympus_Mons",
        )
    )
    assert "Mars/Olympus_Mons" in line
    assert count(db, Committee) == 1


def test_serve_refuses_a_negative_worker_count(cli: Cli) -> None:
    result = cli("serve", "--workers", "-1")
    assert result.exit_code == 2
    assert "--workers" in result.output and "-1" in result.output
