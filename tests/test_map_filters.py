"""The one map's filters and data: each filter alone and combined returns exactly the expected
venues, scoping (visitors vs the committee), GCJ-02 display coordinates, downloads, gzip."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.core.coords import wgs84_to_gcj02
from mapservice.core.geo import haversine_km
from mapservice.core.hours import OpeningRange
from mapservice.core.mapdata import tile_layers
from mapservice.core.mapfilter import (
    MapFilter,
    VenueFacts,
    parse_filter,
    select_venues,
)
from mapservice.models import Area, Closure
from tests.conftest import login
from tests.test_map_data import same_as_geojson

TZ = ZoneInfo("Asia/Shanghai")
# Next Monday and the Saturday after it, from a fixed date far enough ahead.
MONDAY = date(2030, 6, 3) + timedelta(days=(-date(2030, 6, 3).weekday()) % 7)
SATURDAY = MONDAY + timedelta(days=5)


def slot(day: date, start: str, end: str) -> dict[str, str]:
    return {"free_from": f"{day.isoformat()}T{start}", "free_to": f"{day.isoformat()}T{end}"}


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
        hours="Mon-Sun 08:00-22:00",
    )
    w["gym_a"] = make.venue(
        a,
        name="移动健身房",
        type="gym",
        max_headcount=10,
        lon=119.4431,
        lat=32.1909,
        hours="Mon-Fri 09:00-17:00",
    )
    w["meet_b"] = make.venue(
        b,
        name="会议室 Alpha",
        type="meeting_room",
        max_headcount=50,
        lon=119.4108,
        lat=32.2151,
        hours="Sat,Sun 09:00-12:00",
    )
    w["bad_b"] = make.venue(
        b,
        name="银行羽毛球场",
        type="badminton",
        capacity_units=2,
        lon=119.3776,
        lat=32.1733,
        hours="Mon-Sun 08:00-22:00",
    )
    db.add(
        Closure(
            venue_id=w["bad_b"].id,
            start_at=datetime.combine(MONDAY, datetime.min.time(), TZ) + timedelta(hours=9),
            end_at=datetime.combine(MONDAY, datetime.min.time(), TZ) + timedelta(hours=12),
            reason="检修",
        )
    )
    w["hidden"] = make.venue(a, name="移动内部活动室", type="badminton", published=False)
    w["retired"] = make.venue(b, name="已停用健身房", type="gym")
    w["retired"].retired = True
    db.commit()
    streets = {a.name: a.id for a in db.scalars(select(Area).where(Area.level == "street"))}
    w["streets"] = streets
    return w


def names(client: Any, params: dict[str, Any] | list[tuple[str, str]]) -> list[str]:
    """Names of the venues shown for ``params``; the page's columns (``/map/data.json``) are
    checked to say the same as the GeoJSON."""
    return [v["n"] for v in same_as_geojson(client, params)]


ALL = ["会议室 Alpha", "移动健身房", "移动羽毛球馆", "银行羽毛球场"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ALL),
        ({"types": "badminton"}, ["移动羽毛球馆", "银行羽毛球场"]),
        (
            [("types", "badminton"), ("types", "gym")],
            ["移动健身房", "移动羽毛球馆", "银行羽毛球场"],
        ),
        ({"types": "badminton,gym"}, ["移动健身房", "移动羽毛球馆", "银行羽毛球场"]),
        ({"unit": "{a}"}, ["移动健身房", "移动羽毛球馆"]),
        ({"street": "{和平路街道}"}, ["移动羽毛球馆"]),
        ({"street": "{宝塔路街道}"}, ["移动健身房"]),
        ({"min_units": "2"}, ["移动羽毛球馆", "银行羽毛球场"]),
        ({"min_units": "3"}, ["移动羽毛球馆"]),
        ({"min_headcount": "20"}, ["会议室 Alpha", "移动羽毛球馆"]),
        # Ordered by distance from the point; 会议室 is ~2.4 km away, 银行 ~4.8 km.
        ({"near": "119.4253,32.1975", "radius_km": "2"}, ["移动羽毛球馆", "移动健身房"]),
        (
            {"near": "119.4253,32.1975", "radius_km": "3"},
            ["移动羽毛球馆", "移动健身房", "会议室 Alpha"],
        ),
        ({"q": "淋浴"}, ["移动羽毛球馆"]),  # facilities
        ({"q": "alpha"}, ["会议室 Alpha"]),  # name, case-insensitive
        ({"q": "工商"}, ["会议室 Alpha", "银行羽毛球场"]),  # unit name
        ({"q": "和平路1号"}, ["移动羽毛球馆"]),  # address
        ({"q": "没有这个"}, []),
        # Monday 10-11: the gym is open, the meeting room is weekends only, 银行 is closed.
        (slot(MONDAY, "10:00", "11:00"), ["移动健身房", "移动羽毛球馆"]),
        # The closure ends at 12:00: free 12-13.
        (slot(MONDAY, "12:00", "13:00"), ["移动健身房", "移动羽毛球馆", "银行羽毛球场"]),
        # 16:30-17:30 runs past the gym's closing time.
        (slot(MONDAY, "16:30", "17:30"), ["移动羽毛球馆", "银行羽毛球场"]),
        (slot(SATURDAY, "10:00", "11:00"), ["会议室 Alpha", "移动羽毛球馆", "银行羽毛球场"]),
        (slot(SATURDAY, "11:00", "13:00"), ["移动羽毛球馆", "银行羽毛球场"]),
        # Combined.
        ({"types": "badminton", **slot(MONDAY, "10:00", "11:00")}, ["移动羽毛球馆"]),
        ({"types": "badminton", "unit": "{b}", "min_units": "2"}, ["银行羽毛球场"]),
        ({"types": "badminton", "near": "119.4253,32.1975", "radius_km": "3"}, ["移动羽毛球馆"]),
        ({"q": "移动", "min_headcount": "20", "street": "{和平路街道}"}, ["移动羽毛球馆"]),
        ({"types": "meeting_room", **slot(MONDAY, "10:00", "11:00")}, []),
    ],
)
def test_filters_return_exactly_the_expected_venues(client, world, params, expected):
    ids = {"a": world["a"].id, "b": world["b"].id, **world["streets"]}

    def fill(value: str) -> str:
        return str(ids[value[1:-1]]) if value.startswith("{") else value

    if isinstance(params, dict):
        params = {k: fill(v) for k, v in params.items()}
    else:
        params = [(k, fill(v)) for k, v in params]
    got = names(client, params)
    if isinstance(params, dict) and "near" in params:
        assert got == expected  # sorted by distance
    else:
        assert sorted(got) == sorted(expected)


def test_the_distance_is_reported_in_km(client, world):
    resp = client.get("/map/data.geojson", query_string={"near": "119.4253,32.1975"})
    by_name = {f["properties"]["n"]: f["properties"]["d"] for f in resp.get_json()["features"]}
    assert by_name["移动羽毛球馆"] == 0
    expected = haversine_km(119.4253, 32.1975, 119.4431, 32.1909)
    assert by_name["移动健身房"] == pytest.approx(expected, abs=0.001)
    assert 1.7 < by_name["移动健身房"] < 1.9  # about 1.8 km on the ground, not 0.019 degrees


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"near": "abc"}, "near"),
        ({"near": "200,32"}, "near"),
        ({"near": "119.4,32.2", "radius_km": "-1"}, "radius_km"),
        ({"radius_km": "2"}, "near"),
        ({"types": "casino"}, "types"),
        ({"unit": "x"}, "unit"),
        ({"min_units": "0"}, "min_units"),
        ({"min_headcount": "many"}, "min_headcount"),
        ({"free_from": "2030-06-03T10:00"}, "free_to"),
        ({"free_from": "2030-06-03T10:00", "free_to": "2030-06-03T09:00"}, "free_to"),
        ({"free_from": "tomorrow", "free_to": "2030-06-03T09:00"}, "free_from"),
        ({"free_from": "2030-06-03T10:00", "free_to": "2030-08-03T09:00"}, "free_to"),
    ],
)
def test_bad_filters_are_refused_with_a_message(client, world, params, field):
    resp = client.get("/map/data.geojson", query_string={**params, "lang": "en"})
    assert resp.status_code == 422
    body = resp.get_json()["error"]
    assert body["code"] == "validation_failed" and body["fields"][field]
    # The page shows the message beside the field and still draws the map.
    page = client.get("/map", query_string={**params, "lang": "en"})
    assert page.status_code == 200
    assert f'data-field="{field}"' in page.get_data(as_text=True)


def test_visitors_see_published_venues_the_committee_sees_its_own(client, db, world, make):
    other = make.committee("qiqihar", with_streets=False)
    make.venue(make.unit(other, "齐市单位"), name="别处的场地", lon=119.42, lat=32.2)
    applied = make.unit(world["committee"], "待准入单位", status="applied")
    venue = make.venue(make.unit(world["committee"], "临时"), name="待准入单位的场地")
    venue.unit_id = applied.id
    db.commit()
    assert sorted(names(client, {})) == sorted(ALL)
    admin = make.admin(world["committee"], username="boss")
    login(client, admin.username)
    assert sorted(names(client, {})) == sorted([*ALL, "移动内部活动室", "待准入单位的场地"])
    # Retired venues are never on the map; another committee's never shown.
    assert "已停用健身房" not in names(client, {}) and "别处的场地" not in names(client, {})


def test_gcj02_output_is_the_conversion_of_the_stored_point(client, world):
    wgs = client.get("/map/data.geojson").get_json()
    gcj = client.get("/map/data.geojson?crs=gcj02").get_json()
    assert gcj["crs_name"] == "gcj02"
    stored = {v.id: (v.lon, v.lat) for k, v in world.items() if k in ("bad_a", "gym_a", "meet_b")}
    for f in gcj["features"]:
        vid = f["properties"]["i"]
        if vid in stored:
            x, y = wgs84_to_gcj02(*stored[vid])
            assert f["geometry"]["coordinates"] == pytest.approx([x, y], abs=1e-6)
    # And the WGS-84 output is the stored point; the offset is several hundred metres.
    for f in wgs["features"]:
        vid = f["properties"]["i"]
        if vid in stored:
            assert f["geometry"]["coordinates"] == pytest.approx(list(stored[vid]), abs=1e-6)
            g = next(g for g in gcj["features"] if g["properties"]["i"] == vid)
            shift = haversine_km(*f["geometry"]["coordinates"], *g["geometry"]["coordinates"])
            assert 0.3 < shift < 0.8
    areas_w = client.get("/map/areas.geojson").get_json()["features"]
    areas_g = client.get("/map/areas.geojson?crs=gcj02").get_json()["features"]
    assert [a["properties"]["name"] for a in areas_w] == [a["properties"]["name"] for a in areas_g]
    ring_w = areas_w[0]["geometry"]["coordinates"][0]
    ring_g = areas_g[0]["geometry"]["coordinates"][0]
    if areas_w[0]["geometry"]["type"] == "MultiPolygon":
        ring_w, ring_g = ring_w[0], ring_g[0]
    for pw, pg in list(zip(ring_w, ring_g, strict=True))[:20]:
        assert pg == pytest.approx(list(wgs84_to_gcj02(*pw)), abs=1e-6)
    assert client.get("/map/data.geojson?crs=bd09").status_code == 422


def test_street_boundaries_say_when_they_are_approximate(client, world):
    features = client.get("/map/areas.geojson").get_json()["features"]
    levels = [f["properties"]["level"] for f in features]
    assert levels[0] == "district" and levels.count("street") == 7
    assert all(
        f["properties"]["approximate"] for f in features if f["properties"]["level"] == "street"
    )
    page = client.get("/map?lang=en").get_data(as_text=True)
    assert "(approximate)" in page  # in the street filter's choices


def test_popup_data_has_todays_hours_phone_and_unit(client, world):
    fc = client.get("/map/data.geojson", query_string={"q": "移动羽毛球馆"}).get_json()
    (f,) = fc["features"]
    p = f["properties"]
    assert p["o"] == "08:00-22:00" and p["p"] == "0511-88880001" and p["c"] == 3 and p["h"] == 30
    assert fc["units"][str(p["u"])] == "移动公司" and p["f"] == "淋浴, 更衣室"


def test_downloads_hold_the_filtered_result(client, world):
    resp = client.get("/map/export.csv", query_string={"types": "badminton"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert sorted(r["name"] for r in rows) == ["移动羽毛球馆", "银行羽毛球场"]
    assert "attachment" in resp.headers["Content-Disposition"]
    resp = client.get("/map/export.geojson", query_string={"near": "119.4253,32.1975"})
    fc = json.loads(resp.data)
    assert [f["properties"]["name"] for f in fc["features"]][:2] == ["移动羽毛球馆", "移动健身房"]
    assert len(fc["features"]) == 4
    assert client.get("/map/export.xls").status_code == 404


def test_data_is_gzipped_and_revalidates(client, world):
    plain = client.get("/map/data.geojson")
    assert "Content-Encoding" not in plain.headers
    zipped = client.get("/map/data.geojson", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.data)) == plain.get_json()
    again = client.get(
        "/map/data.geojson",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status_code == 304 and again.data == b""
    asset = client.get(
        "/vendor/leaflet.markercluster/leaflet.markercluster.js",
        headers={"Accept-Encoding": "gzip"},
    )
    assert asset.headers["Content-Encoding"] == "gzip"
    assert b"MarkerClusterGroup" in gzip.decompress(asset.data)
    plain_asset = client.get("/vendor/leaflet.fullscreen/Control.FullScreen.umd.js")
    assert plain_asset.status_code == 200 and "Content-Encoding" not in plain_asset.headers
    plain_asset.close()
    assert client.get("/vendor/left-pad/index.js").status_code == 404


def test_map_page_embed_and_permalink(client, world):
    page = client.get(f"/map?lang=en&types=gym&venue={world['gym_a'].id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="nav-map"' in html
    config = json.loads(html.split('id="map-config">')[1].split("</script>")[0])
    assert config["venue"] == world["gym_a"].id
    assert "types=gym" in config["dataUrl"]
    assert "types=gym" in html.split('id="download-csv"')[0].rsplit("href=", 1)[1]
    assert [t["key"] for t in config["tiles"]] == ["none"]
    embed = client.get("/map/embed?types=gym").get_data(as_text=True)
    assert "navbar" not in embed and 'id="one-map"' in embed
    assert 'allow="geolocation' in html  # the embed snippet
    # No page of the map names anything off the app's own origin.
    for text in (html, embed):
        for attr in ("src=", "href="):
            for part in text.split(attr)[1:]:
                url = part[1:].split(part[0])[0] if part[0] in "\"'" else ""
                own = url.startswith("http://localhost/")  # the embed snippet's own URL
                assert own or not url.startswith(("http:", "https:", "//")), url


def test_tile_layers_are_configurable(app, client, world):
    assert [t.key for t in tile_layers("osm,amap,tianditu")] == ["osm", "amap"]
    layers = tile_layers("tianditu, amap, bogus", tianditu_key="k123")
    assert [(t.key, t.crs) for t in layers] == [("tianditu", "wgs84"), ("amap", "gcj02")]
    assert "tk=k123" in layers[0].url and all(t.attribution for t in layers)
    assert [t.key for t in tile_layers("")] == ["none"]
    app.config["MAPSERVICE_TILES"] = "amap,osm"
    html = client.get("/map").get_data(as_text=True)
    config = json.loads(html.split('id="map-config">')[1].split("</script>")[0])
    assert [(t["key"], t["crs"]) for t in config["tiles"]] == [("amap", "gcj02"), ("osm", "wgs84")]


def test_venue_page_shows_a_week_and_the_book_anchor(client, world):
    html = client.get(f"/venues/{world['bad_b'].id}?lang=en").get_data(as_text=True)
    assert 'id="book"' in html and 'id="week-table"' in html
    week = html.split('id="week-table"')[1].split("</table>")[0]
    assert week.count("<tr") == 7 and "08:00–22:00" in week


# -------------------------------------------------------------------------------------------
# The pure module, without the web


def facts(**kw: Any) -> VenueFacts:
    base: dict[str, Any] = {
        "id": 1,
        "name": "场地",
        "unit_id": 1,
        "unit_name": "单位",
        "type": "gym",
        "lon": 119.42,
        "lat": 32.2,
        "ranges": tuple(OpeningRange(d, 8 * 60, 22 * 60) for d in range(7)),
    }
    base.update(kw)
    return VenueFacts(**base)


def test_parse_filter_round_trips_through_its_query():
    args = {
        "types": ["gym,badminton"],
        "unit": ["3"],
        "near": ["119.4,32.2"],
        "radius_km": ["2.5"],
        "q": [" 球 "],
        "free_from": ["2030-06-03T10:00"],
        "free_to": ["2030-06-03T11:30"],
        "min_units": ["2"],
    }
    flt, errors = parse_filter(args, TZ)
    assert errors == {}
    assert flt.free_from == datetime(2030, 6, 3, 10, 0, tzinfo=TZ)
    again, errors = parse_filter(
        {k: [v] for k, v in flt.query_pairs() if k != "types"}
        | {"types": [v for k, v in flt.query_pairs() if k == "types"]},
        TZ,
    )
    assert errors == {} and again == flt
    assert MapFilter().is_empty and not flt.is_empty


def test_the_free_check_is_pluggable_and_asked_last():
    asked: list[int] = []

    def engine(venue: VenueFacts, start: datetime, end: datetime) -> bool:
        asked.append(venue.id)
        return venue.id == 2

    venues = [facts(id=1), facts(id=2), facts(id=3, type="badminton")]
    flt = MapFilter(
        types=frozenset({"gym"}),
        free_from=datetime(2030, 6, 3, 10, tzinfo=TZ),
        free_to=datetime(2030, 6, 3, 11, tzinfo=TZ),
    )
    assert [m.venue.id for m in select_venues(venues, flt, TZ, engine)] == [2]
    assert asked == [1, 2]  # venue 3 was filtered out by type before the engine was asked


def test_haversine_is_in_kilometres():
    assert haversine_km(119.0, 32.0, 119.0, 33.0) == pytest.approx(111.2, abs=0.1)
    assert haversine_km(119.0, 32.0, 120.0, 32.0) == pytest.approx(94.3, abs=0.2)
