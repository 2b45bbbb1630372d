"""Demo seed files in seeds/*.json: structure, enums, hours, rules and geography."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from shapely.geometry import Point, shape
from shapely.ops import unary_union

from mapservice.core.hours import parse_hours

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GEODATA = ROOT / "geodata"
SEED_FILES = ["runzhou.json", "qiqihar-jianhua.json"]

COMMITTEE_KEYS = {
    "slug",
    "name",
    "name_en",
    "city",
    "region_dir",
    "region_file",
    "region_name",
    "streets_file",
    "timezone",
}
UNIT_KEYS = {"name", "name_en", "kind", "secretary", "phone", "status", "demo"}
GROUP_KEYS = {"name", "unit", "contact_name", "contact_phone"}
VENUE_KEYS = {
    "name",
    "unit",
    "type",
    "lon",
    "lat",
    "crs",
    "address",
    "capacity_units",
    "max_headcount",
    "facilities",
    "phone",
    "hours",
    "slot_minutes",
    "min_duration_minutes",
    "max_duration_minutes",
    "max_days_ahead",
    "min_notice_minutes",
    "requires_approval",
    "bookable_by",
    "weekly_quota_hours",
    "published",
    "demo",
    "closures",
}
KINDS = {"government", "soe", "financial", "school", "community", "two_new", "other"}
STATUSES = {"applied", "active", "suspended"}
TYPES = {
    "badminton",
    "table_tennis",
    "basketball",
    "football",
    "gym",
    "yoga_dance",
    "meeting_room",
    "lecture_hall",
    "reading_room",
    "patriotic_base",
    "youth_home",
    "entrepreneurship_base",
    "social_practice_base",
    "public_land",
    "other",
}
BOOKABLE_BY = {"members", "paired", "public"}
SLOTS = {15, 30, 60, 120}
PHONE_RE = re.compile(r"^[0-9 +\-()]+$")


def load(name: str) -> dict:
    return json.loads((SEEDS / name).read_text(encoding="utf-8"))


def district_polygon(committee: dict):
    path = GEODATA / committee["region_dir"] / committee["region_file"]
    data = json.loads(path.read_text(encoding="utf-8"))
    feats = data["features"] if data.get("type") == "FeatureCollection" else [data]
    wanted = committee["region_name"]
    named = [f for f in feats if (f.get("properties") or {}).get("name") == wanted]
    if not named and len(feats) == 1:
        named = feats
    assert named, f"no feature named {committee['region_name']} in {path}"
    return unary_union([shape(f["geometry"]) for f in named])


@pytest.mark.parametrize("name", SEED_FILES)
def test_structure(name):
    data = load(name)
    assert set(data) == {"committee", "units", "groups", "venues"}
    assert set(data["committee"]) == COMMITTEE_KEYS
    assert data["committee"]["timezone"] == "Asia/Shanghai"
    for u in data["units"]:
        assert set(u) == UNIT_KEYS, u["name"]
    for g in data["groups"]:
        assert set(g) == GROUP_KEYS, g["name"]
    for v in data["venues"]:
        assert set(v) == VENUE_KEYS, v["name"]


@pytest.mark.parametrize("name", SEED_FILES)
def test_references_and_uniqueness(name):
    data = load(name)
    unit_names = [u["name"] for u in data["units"]]
    assert len(unit_names) == len(set(unit_names))
    group_names = [g["name"] for g in data["groups"]]
    assert len(group_names) == len(set(group_names))
    for g in data["groups"]:
        assert g["unit"] is None or g["unit"] in unit_names, g["name"]
    keys = [(v["unit"], v["name"]) for v in data["venues"]]
    assert len(keys) == len(set(keys))
    for v in data["venues"]:
        assert v["unit"] in unit_names, v["name"]


@pytest.mark.parametrize("name", SEED_FILES)
def test_enums_and_phones(name):
    data = load(name)
    for u in data["units"]:
        assert u["kind"] in KINDS, u["name"]
        assert u["status"] in STATUSES, u["name"]
        assert isinstance(u["demo"], bool)
        assert PHONE_RE.match(u["phone"]), u["name"]
    for g in data["groups"]:
        assert PHONE_RE.match(g["contact_phone"]), g["name"]
    for v in data["venues"]:
        assert v["type"] in TYPES, v["name"]
        assert v["bookable_by"] in BOOKABLE_BY, v["name"]
        assert v["crs"] == "wgs84", v["name"]
        assert PHONE_RE.match(v["phone"]), v["name"]
        for flag in ("requires_approval", "published", "demo"):
            assert isinstance(v[flag], bool), (v["name"], flag)


@pytest.mark.parametrize("name", SEED_FILES)
def test_booking_rules(name):
    for v in load(name)["venues"]:
        slot = v["slot_minutes"]
        assert slot in SLOTS, v["name"]
        lo, hi = v["min_duration_minutes"], v["max_duration_minutes"]
        assert lo % slot == 0 and hi % slot == 0, v["name"]
        assert 0 < lo <= hi, v["name"]
        assert isinstance(v["capacity_units"], int) and v["capacity_units"] >= 1, v["name"]
        assert isinstance(v["max_headcount"], int) and v["max_headcount"] >= 1, v["name"]
        assert v["max_days_ahead"] > 0 and v["min_notice_minutes"] >= 0, v["name"]
        quota = v["weekly_quota_hours"]
        assert quota is None or (isinstance(quota, int) and quota > 0), v["name"]
        for c in v["closures"]:
            start, end = datetime.fromisoformat(c["start"]), datetime.fromisoformat(c["end"])
            assert start.tzinfo is not None and start < end and c["reason"], v["name"]


@pytest.mark.parametrize("name", SEED_FILES)
def test_hours_parse_and_fit_slots(name):
    for v in load(name)["venues"]:
        ranges = parse_hours(v["hours"])
        assert ranges, v["name"]
        for r in ranges:
            assert r.start_min % v["slot_minutes"] == 0, v["name"]
            assert r.end_min % v["slot_minutes"] == 0, v["name"]
            assert r.end_min - r.start_min >= v["min_duration_minutes"], v["name"]


@pytest.mark.parametrize("name", SEED_FILES)
def test_venues_inside_district(name):
    data = load(name)
    district = district_polygon(data["committee"])
    outside = [
        v["name"] for v in data["venues"] if not district.contains(Point(v["lon"], v["lat"]))
    ]
    assert not outside


def test_runzhou_size_and_coverage():
    data = load("runzhou.json")
    assert len(data["units"]) >= 30
    assert len(data["venues"]) >= 80
    assert len(data["groups"]) >= 12
    assert {v["type"] for v in data["venues"]} == TYPES
    statuses = [u["status"] for u in data["units"]]
    assert statuses.count("applied") == 2 and statuses.count("suspended") == 1
    assert sum(not v["published"] for v in data["venues"]) >= 3
    assert sum(bool(v["closures"]) for v in data["venues"]) >= 2
    assert "瑞祥科技集团青年团支部" in {g["name"] for g in data["groups"]}
    mobile = {v["type"]: v for v in data["venues"] if v["unit"] == "中国移动镇江分公司"}
    assert mobile["badminton"]["capacity_units"] == 3
    assert mobile["table_tennis"]["capacity_units"] == 2
    assert {"gym", "yoga_dance"} <= set(mobile)
