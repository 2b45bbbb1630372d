"""What the map page downloads: ``/map/data.json`` (delta-encoded columns) says exactly what the
GeoJSON says — same venues in the same order, names, types, units, coordinates to a metre, in
WGS-84 and GCJ-02, for every filter — and nothing a popup fetches later; ``/map/venues/ID/popup``
gives those details within the map's scope; the map's script goes out gzipped."""

from __future__ import annotations

import gzip
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mapservice.core.coords import wgs84_to_gcj02
from tests.conftest import login

TZ = ZoneInfo("Asia/Shanghai")
# The quantisation step is 1e-5°: a decoded coordinate is within half of it.
HALF_STEP = 0.5e-5 + 1e-12


def decode_columns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The venues of a ``/map/data.json`` answer, decoded as the page's script does."""
    assert body["v"] == 1
    n = len(body["id"])
    assert all(len(body[k]) == n for k in ("x", "y", "t", "u", "name"))
    out = []
    i = x = y = 0
    for k in range(n):
        i += body["id"][k]
        x += body["x"][k]
        y += body["y"][k]
        unit_id, unit_name = body["units"][body["u"][k]]
        out.append(
            {
                "i": i,
                "n": body["name"][k],
                "t": body["types"][body["t"][k]],
                "u": unit_id,
                "unit_name": unit_name,
                "lon": x / body["scale"],
                "lat": y / body["scale"],
            }
        )
    return out


def same_as_geojson(client: Any, params: Any, crs: str = "wgs84") -> list[dict[str, Any]]:
    """Fetch both answers for ``params`` and check they agree; the decoded venues."""
    query = [*(params.items() if isinstance(params, dict) else params), ("crs", crs)]
    geo = client.get("/map/data.geojson", query_string=query)
    cols = client.get("/map/data.json", query_string=query)
    assert geo.status_code == cols.status_code == 200, (geo.data, cols.data)
    fc, body = geo.get_json(), cols.get_json()
    venues = decode_columns(body)
    assert body["crs"] == fc["crs_name"] == crs
    assert [v["i"] for v in venues] == [f["properties"]["i"] for f in fc["features"]]
    for v, f in zip(venues, fc["features"], strict=True):
        p = f["properties"]
        assert (v["n"], v["t"], v["u"]) == (p["n"], p["t"], p["u"])
        assert v["unit_name"] == fc["units"][str(p["u"])]
        lon, lat = f["geometry"]["coordinates"]
        assert abs(v["lon"] - lon) <= HALF_STEP and abs(v["lat"] - lat) <= HALF_STEP
    assert body.get("near") == fc.get("near")
    return venues


@pytest.fixture
def world(db, make) -> dict[str, Any]:
    committee = make.committee()
    a = make.unit(committee, "移动公司")
    b = make.unit(committee, "工商银行")
    w: dict[str, Any] = {"committee": committee, "a": a, "b": b}
    w["bad_a"] = make.venue(
        a,
        name="移动羽毛球馆",
        type="badminton",
        capacity_units=3,
        max_headcount=30,
        lon=119.4253,
        lat=32.1975,
        facilities="淋浴, 更衣室",
        address="和平路1号",
        phone="0511-88880001",
        hours="Mon-Sun 08:00-12:00,13:00-22:00",
    )
    w["gym_a"] = make.venue(a, name="移动健身房", type="gym", lon=119.4431, lat=32.1909)
    w["meet_b"] = make.venue(
        b, name="会议室 Alpha", type="meeting_room", lon=119.4108, lat=32.2151, max_headcount=50
    )
    w["bad_b"] = make.venue(
        b, name="银行羽毛球场", type="badminton", capacity_units=2, lon=119.3776, lat=32.1733
    )
    w["hidden"] = make.venue(a, name="移动内部活动室", type="badminton", published=False)
    w["of_suspended"] = make.venue(make.unit(committee, "暂停单位"), name="暂停单位的场地")
    w["of_suspended"].unit.status = "suspended"
    w["retired"] = make.venue(b, name="已停用健身房", type="gym")
    w["retired"].retired = True
    db.commit()
    return w


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"types": "badminton"},
        {"unit": "B"},
        {"min_units": "2"},
        {"near": "119.4253,32.1975", "radius_km": "3"},
        {"q": "alpha"},
        {"q": "没有这个"},
    ],
)
def test_columns_say_what_the_geojson_says(client, world, crs, params):
    params = {k: str(world["b"].id) if v == "B" else v for k, v in params.items()}
    venues = same_as_geojson(client, params, crs)
    if not params:
        # Visitors: published venues of admitted units; sorted by unit and name.
        # (工商银行 before 移动公司 in code-point order).
        assert [v["n"] for v in venues] == [
            "会议室 Alpha",
            "银行羽毛球场",
            "移动健身房",
            "移动羽毛球馆",
        ]


def test_coordinates_are_the_stored_point_or_its_gcj02_conversion(client, world):
    wgs = {v["i"]: v for v in same_as_geojson(client, {})}
    gcj = {v["i"]: v for v in same_as_geojson(client, {}, "gcj02")}
    for key in ("bad_a", "gym_a", "meet_b", "bad_b"):
        venue = world[key]
        assert wgs[venue.id]["lon"] == pytest.approx(venue.lon, abs=HALF_STEP)
        assert wgs[venue.id]["lat"] == pytest.approx(venue.lat, abs=HALF_STEP)
        x, y = wgs84_to_gcj02(venue.lon, venue.lat)
        assert gcj[venue.id]["lon"] == pytest.approx(x, abs=HALF_STEP)
        assert gcj[venue.id]["lat"] == pytest.approx(y, abs=HALF_STEP)
    body = client.get("/map/data.json?near=119.4253,32.1975&crs=gcj02").get_json()
    assert body["near"] == pytest.approx(list(wgs84_to_gcj02(119.4253, 32.1975)), abs=1e-6)
    assert client.get("/map/data.json?crs=bd09").status_code == 422
    assert client.get("/map/data.json?min_units=zero").status_code == 422


def test_the_columns_leave_popup_details_out_and_the_popup_gives_them(client, world):
    raw = client.get("/map/data.json").get_data(as_text=True)
    assert "和平路1号" not in raw and "0511-88880001" not in raw and "淋浴" not in raw
    venue = world["bad_a"]
    body = client.get(f"/map/venues/{venue.id}/popup").get_json()
    assert body == {
        "venue": venue.id,
        "capacity": 3,
        "headcount": 30,
        "today": "08:00-12:00,13:00-22:00",
        "facilities": "淋浴, 更衣室",
        "address": "和平路1号",
        "phone": "0511-88880001",
    }
    plain = client.get(f"/map/venues/{world['bad_b'].id}/popup").get_json()
    assert (plain["capacity"], plain["headcount"], plain["address"]) == (2, None, "")


def test_the_popup_is_only_for_venues_on_the_users_map(client, world, make):
    hidden, suspended, retired = world["hidden"], world["of_suspended"], world["retired"]
    for venue in (hidden, suspended, retired):
        assert client.get(f"/map/venues/{venue.id}/popup").status_code == 404
    assert client.get("/map/venues/999999/popup").status_code == 404
    admin = make.admin(world["committee"], username="boss")
    login(client, admin.username)
    assert client.get(f"/map/venues/{hidden.id}/popup").status_code == 200
    assert client.get(f"/map/venues/{suspended.id}/popup").status_code == 200
    assert client.get(f"/map/venues/{retired.id}/popup").status_code == 404
    # The admin's map shows those two as well, and the popup answers for each venue shown.
    shown = {v["i"] for v in same_as_geojson(client, {})}
    assert {hidden.id, suspended.id} <= shown and retired.id not in shown


def test_closed_today_is_an_empty_string(client, world, make):
    today = datetime.now(TZ).weekday()
    other = "Mon-Sun 09:00-10:00".replace(
        "Mon-Sun", ["Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon"][today]
    )
    venue = make.venue(world["a"], name="只开别的日子", type="gym", hours=other)
    assert client.get(f"/map/venues/{venue.id}/popup").get_json()["today"] == ""


def test_the_map_script_goes_out_gzipped_and_revalidates(client, world):
    page = client.get("/map").get_data(as_text=True)
    assert 'src="/map/one-map.js"' in page
    resp = client.get("/map/one-map.js", headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    script = gzip.decompress(resp.data).decode()
    # The page's own script (the list, the filter helpers); the map is folium's, its venue
    # layer mapservice/maps/static/venue-layer.js (served under /vendor/mapservice/).
    assert "renderList" in script
    assert len(resp.data) < len(script) / 2
    again = client.get(
        "/map/one-map.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": resp.headers["ETag"]},
    )
    assert again.status_code == 304 and again.data == b""
