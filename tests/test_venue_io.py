"""Bulk venue import/export: formats, validation errors, never-raise, round trips."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapservice.core.venue_io import (
    COLUMNS,
    KEYS,
    MESSAGES,
    RowError,
    VenueRow,
    message,
    read_venues,
    write_venues,
)

EN_HEADER = ["name", "unit", "type", "lon", "lat"]
ZH_HEADER = ["名称", "所属单位", "类型", "经度", "纬度"]
FORMATS = ["csv", "xlsx", "geojson"]


def make_csv(rows: list[list[Any]], *, encoding: str = "utf-8", sep: str = ",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def make_xlsx(rows: list[list[Any]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def make_geojson(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def feature(lon: Any, lat: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


def table(header: list[str], *data: list[Any]) -> list[list[Any]]:
    return [header, *[list(d) for d in data]]


def read_table(fmt: str, rows: list[list[Any]]) -> tuple[list[VenueRow], list[RowError]]:
    """Read a header+rows table in csv or xlsx."""
    if fmt == "csv":
        return read_venues(make_csv(rows), "v.csv")
    return read_venues(make_xlsx(rows), "v.xlsx")


def codes(errors: list[RowError]) -> list[tuple[int, str, str]]:
    return [(e.row, e.field, e.code) for e in errors]


# ---------------------------------------------------------------------------- good files


def test_full_csv_all_columns_english() -> None:
    data = make_csv(
        [
            list(KEYS),
            [
                "羽毛球馆",
                "国网供电公司",
                "badminton",
                "119.45",
                "32.2",
                "gcj02",
                "润州区某路1号",
                "七里甸街道",
                "3",
                "30",
                "3 片场地",
                "0511-8888 0000",
                "周一-周五 09:00-21:00；周六 08:00-12:00",
                "30",
                "30",
                "120",
                "14",
                "0",
                "是",
                "结对单位",
                "4",
                "否",
            ],
        ]
    )
    rows, errors = read_venues(data, "venues.CSV")
    assert errors == []
    assert rows == [
        VenueRow(
            name="羽毛球馆",
            unit="国网供电公司",
            type="badminton",
            lon=119.45,
            lat=32.2,
            crs="gcj02",
            address="润州区某路1号",
            street="七里甸街道",
            capacity_units=3,
            max_headcount=30,
            facilities="3 片场地",
            phone="0511-8888 0000",
            hours="Mon-Fri 09:00-21:00; Sat 08:00-12:00",
            slot_minutes=30,
            min_duration_minutes=30,
            max_duration_minutes=120,
            max_days_ahead=14,
            min_notice_minutes=0,
            requires_approval=True,
            bookable_by="paired",
            weekly_quota_hours=4,
            published=False,
            row=2,
        )
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("header", [EN_HEADER, ZH_HEADER, [" NAME ", "Unit", "TYPE", "Lon", "LAT"]])
def test_minimal_file_either_header_set(fmt: str, header: list[str]) -> None:
    rows, errors = read_table(
        fmt,
        table(
            header, ["会议室A", "某银行", "会议室", 119.4, 32.1], ["球场", "某银行", "Gym", 1, 2]
        ),
    )
    assert errors == []
    assert [(r.name, r.type, r.lon, r.lat, r.row) for r in rows] == [
        ("会议室A", "meeting_room", 119.4, 32.1, 2),
        ("球场", "gym", 1.0, 2.0, 3),
    ]
    # defaults for the omitted optional columns
    assert rows[0].crs == "wgs84" and rows[0].capacity_units == 1 and rows[0].published


@pytest.mark.parametrize(
    "encoding,prefix",
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b""), ("gb18030", b""), ("utf-16", b"")],
)
def test_csv_encodings(encoding: str, prefix: bytes) -> None:
    data = prefix + make_csv(
        [ZH_HEADER + ["地址"], ["青年之家", "七里甸社区", "青年之家", "119.4", "32.1", "镇江市"]],
        encoding=encoding,
    )
    rows, errors = read_venues(data, "v.csv")
    assert errors == []
    assert (rows[0].name, rows[0].unit, rows[0].type, rows[0].address) == (
        "青年之家",
        "七里甸社区",
        "youth_home",
        "镇江市",
    )


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_delimiters_sniffed(sep: str) -> None:
    data = make_csv([EN_HEADER, ["a", "u", "gym", "119.5", "32.5"]], sep=sep)
    rows, errors = read_venues(data, "v.csv")
    assert errors == [] and rows[0].lon == 119.5


def test_csv_blank_lines_skipped_and_row_numbers_kept() -> None:
    data = b"name,unit,type,lon,lat\r\n\r\na,u,gym,1,2\r\n,,,,\r\nb,u,gym,x,2\r\n"
    rows, errors = read_venues(data, "v.csv")
    assert [r.row for r in rows] == [3]
    assert codes(errors) == [(5, "lon", "not_a_number")]


def test_xlsx_numbers_as_floats_and_real_booleans() -> None:
    data = make_xlsx(
        [
            [
                "名称",
                "所属单位",
                "类型",
                "经度",
                "纬度",
                "可并行数量",
                "最大人数",
                "需要审批",
                "已发布",
            ],
            ["健身房", "某公司", "健身房", 119.0, 32.0, 3.0, 20.0, True, False],
            ["乒乓", "某公司", "table tennis", 119, 32, 2, None, 1, 0],
            [],
            ["空", "某公司", "其他", 119.1, 32.1, 3.5, 0.0, "maybe", "是"],
        ]
    )
    rows, errors = read_venues(data, "v.xlsx")
    assert [
        (r.capacity_units, r.max_headcount, r.requires_approval, r.published) for r in rows
    ] == [
        (3, 20, True, False),
        (2, None, True, False),
    ]
    assert rows[1].type == "table_tennis"
    assert codes(errors) == [
        (5, "capacity_units", "not_an_integer"),
        (5, "max_headcount", "out_of_range"),
        (5, "requires_approval", "not_a_boolean"),
    ]


def test_xlsx_phone_typed_as_number() -> None:
    data = make_xlsx([EN_HEADER + ["phone"], ["a", "u", "gym", 1, 2, 13800000000]])
    rows, errors = read_venues(data, "v.xlsx")
    assert errors == [] and rows[0].phone == "13800000000"


@pytest.mark.parametrize("ext", ["geojson", "json", "GeoJSON"])
def test_geojson_good(ext: str) -> None:
    data = make_geojson(
        [
            feature(119.4, 32.1, name="阅览室", unit="某学校", type="reading_room"),
            feature(119.5, 32.2, 名称="报告厅", 所属单位="某学校", 类型="报告厅", crs="bd09"),
        ]
    )
    rows, errors = read_venues(data, "x." + ext)
    assert errors == []
    assert [(r.name, r.type, r.lon, r.lat, r.crs, r.row) for r in rows] == [
        ("阅览室", "reading_room", 119.4, 32.1, "wgs84", 1),
        ("报告厅", "lecture_hall", 119.5, 32.2, "bd09", 2),
    ]


@pytest.mark.parametrize(
    "text,key",
    [
        ("wgs84", "wgs84"),
        ("GCJ02", "gcj02"),
        ("BD-09（百度）", "bd09"),
        ("WGS-84（GPS/天地图）", "wgs84"),
        ("GCJ-02 (AMap / Tencent)", "gcj02"),
    ],
)
def test_crs_by_key_or_label(text: str, key: str) -> None:
    rows, errors = read_table("csv", [EN_HEADER + ["crs"], ["a", "u", "gym", "1", "2", text]])
    assert errors == [] and rows[0].crs == key


@pytest.mark.parametrize(
    "text,value",
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("No", False)]
    + [("是", True), ("否", False), ("", False)],
)
def test_boolean_spellings(text: str, value: bool) -> None:
    rows, errors = read_table(
        "csv", [EN_HEADER + ["requires_approval"], ["a", "u", "gym", 1, 2, text]]
    )
    assert errors == [] and rows[0].requires_approval is value


@pytest.mark.parametrize("text,value", [("3", 3), ("3.0", 3), (" 7 ", 7), ("", 1)])
def test_int_spellings(text: str, value: int) -> None:
    rows, errors = read_table(
        "csv", [EN_HEADER + ["capacity_units"], ["a", "u", "gym", 1, 2, text]]
    )
    assert errors == [] and rows[0].capacity_units == value


def test_hours_stored_canonical() -> None:
    rows, errors = read_table(
        "csv", [EN_HEADER + ["hours"], ["a", "u", "gym", 1, 2, "sat,sun 08:00-12:00,12:00-18:00"]]
    )
    assert errors == [] and rows[0].hours == "Sat-Sun 08:00-18:00"


# ---------------------------------------------------------------------------- row errors

BASE = {"name": "a", "unit": "u", "type": "gym", "lon": "119", "lat": "32"}


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("name", "", "required"),
        ("name", "x" * 121, "too_long"),
        ("unit", " ", "required"),
        ("type", "", "required"),
        ("type", "swimming", "unknown_type"),
        ("lon", "", "required"),
        ("lon", "abc", "not_a_number"),
        ("lon", "nan", "not_a_number"),
        ("lon", "180.5", "out_of_range"),
        ("lat", "-91", "out_of_range"),
        ("crs", "utm", "unknown_crs"),
        ("capacity_units", "abc", "not_an_integer"),
        ("capacity_units", "3.5", "not_an_integer"),
        ("capacity_units", "0", "out_of_range"),
        ("capacity_units", "101", "out_of_range"),
        ("max_headcount", "10001", "out_of_range"),
        ("phone", "call me", "bad_phone"),
        ("phone", "12", "bad_phone"),
        ("hours", "Mon 9-21", "bad_hours"),
        ("hours", "Mon 09:00-12:00,11:00-13:00", "bad_hours"),
        ("slot_minutes", "45", "not_allowed"),
        ("min_duration_minutes", "45", "not_multiple_of_slot"),
        ("max_duration_minutes", "90", "not_multiple_of_slot"),
        ("max_days_ahead", "0", "out_of_range"),
        ("max_days_ahead", "366", "out_of_range"),
        ("min_notice_minutes", "-1", "out_of_range"),
        ("min_notice_minutes", "10081", "out_of_range"),
        ("requires_approval", "perhaps", "not_a_boolean"),
        ("bookable_by", "everyone", "unknown_bookable_by"),
        ("weekly_quota_hours", "0", "out_of_range"),
        ("weekly_quota_hours", "x", "not_an_integer"),
        ("published", "2", "not_a_boolean"),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_row_error_codes(fmt: str, field: str, value: str, code: str) -> None:
    good = dict(BASE, name="ok")
    bad = dict(BASE, **{field: value})
    header = list(dict.fromkeys([*BASE, field]))
    rows, errors = read_table(
        fmt, [header, [good.get(h, "") for h in header], [bad.get(h, "") for h in header]]
    )
    assert codes(errors) == [(3, field, code)]
    assert [r.row for r in rows] == [2]  # the bad row is not returned


def test_max_duration_below_min() -> None:
    _, errors = read_table(
        "csv",
        [
            EN_HEADER + ["slot_minutes", "min_duration_minutes", "max_duration_minutes"],
            ["a", "u", "gym", 1, 2, 30, 120, 60],
        ],
    )
    assert codes(errors) == [(2, "max_duration_minutes", "max_below_min")]
    assert errors[0].params == {"value": "60", "min": "120"}


def test_coordinates_rounded_to_7_decimals() -> None:
    rows, errors = read_table("csv", [EN_HEADER, ["a", "u", "gym", "119.123456789", "-32.5"]])
    assert errors == [] and (rows[0].lon, rows[0].lat) == (119.1234568, -32.5)


def test_every_bad_cell_in_a_row_is_reported() -> None:
    _, errors = read_table("csv", [EN_HEADER + ["capacity_units"], ["", "", "x", "y", "z", "0"]])
    assert codes(errors) == [
        (2, "name", "required"),
        (2, "unit", "required"),
        (2, "type", "unknown_type"),
        (2, "lon", "not_a_number"),
        (2, "lat", "not_a_number"),
        (2, "capacity_units", "out_of_range"),
    ]


def test_error_params() -> None:
    _, errors = read_table("csv", [EN_HEADER + ["capacity_units"], ["a", "u", "gym", 1, 2, "abc"]])
    assert errors[0].params == {"value": "abc", "min": "1", "max": "100"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_duplicate_name_in_same_unit(fmt: str) -> None:
    rows, errors = read_table(
        fmt,
        table(
            EN_HEADER,
            ["球场", "甲", "gym", 1, 2],
            ["球场", "乙", "gym", 1, 2],
            ["球场 ", "甲", "gym", 1, 2],
        ),
    )
    assert codes(errors) == [(4, "name", "duplicate_name")]
    assert errors[0].params["first_row"] == "2"
    assert [r.row for r in rows] == [2, 3]


def test_geojson_row_errors_use_feature_index() -> None:
    data = make_geojson(
        [
            feature(1, 2, name="a", unit="u", type="gym"),
            feature(200, 2, name="b", unit="u", type="gym"),
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}},
            feature(1, 2, name="a", unit="u", type="gym"),
            {"type": "Feature", "geometry": None, "properties": {"name": "c"}},
        ]
    )
    rows, errors = read_venues(data, "x.geojson")
    assert codes(errors) == [
        (2, "lon", "out_of_range"),
        (3, "", "bad_geometry"),
        (4, "name", "duplicate_name"),
        (5, "", "bad_geometry"),
    ]
    assert [r.row for r in rows] == [1]


# ---------------------------------------------------------------------------- columns


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_unknown_column_named(fmt: str) -> None:
    rows, errors = read_table(fmt, [EN_HEADER + ["capacity"], ["a", "u", "gym", 1, 2, 3]])
    assert codes(errors) == [(0, "", "unknown_column")]
    assert errors[0].params["columns"] == "capacity"
    assert "capacity" in message(errors[0]) and "capacity" in message(errors[0], "en")


def test_unknown_property_in_geojson() -> None:
    data = make_geojson([feature(1, 2, name="a", unit="u", type="gym", colour="red")])
    _, errors = read_venues(data, "x.geojson")
    assert codes(errors) == [(0, "", "unknown_column")]
    assert errors[0].params["columns"] == "colour"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_missing_required_columns_is_one_file_error(fmt: str) -> None:
    rows, errors = read_table(fmt, [["name", "type", "lon"], ["a", "gym", 1], ["b", "gym", 1]])
    assert rows == []
    assert codes(errors) == [(0, "", "missing_column")]
    assert errors[0].params["columns"] == "unit, lat"


def test_missing_required_property_in_geojson() -> None:
    data = make_geojson([feature(1, 2, name="a", type="gym")])
    assert codes(read_venues(data, "x.geojson")[1]) == [(0, "", "missing_column")]


def test_duplicate_column() -> None:
    _, errors = read_table("csv", [EN_HEADER + ["名称"], ["a", "u", "gym", 1, 2, "b"]])
    assert codes(errors) == [(0, "", "duplicate_column")]


def test_value_under_empty_header() -> None:
    _, errors = read_table("csv", [EN_HEADER, ["a", "u", "gym", 1, 2, "stray"]])
    assert codes(errors) == [(2, "", "extra_cells")]
    assert errors[0].params["column"] == "F"


# ---------------------------------------------------------------------------- file errors


@pytest.mark.parametrize(
    "data,filename,code",
    [
        (b"name,unit\n", "v.txt", "unknown_format"),
        (b"", "noext", "unknown_format"),
        (b"\xff\xfe\xfd\x80\x81" * 3, "v.csv", "bad_encoding"),
        (b"\xef\xbb\xbf\xff\xff", "v.csv", "bad_encoding"),
        (b"", "v.csv", "empty_file"),
        (b"\r\n\r\n", "v.csv", "empty_file"),
        (b"name,unit,type,lon,lat\r\n", "v.csv", "empty_file"),
        (b"not a zip", "v.xlsx", "not_xlsx"),
        (b"PK\x03\x04garbage", "v.xlsx", "not_xlsx"),
        (b"", "v.geojson", "empty_file"),
        (b'{"type": "FeatureCollection", "features": [', "v.geojson", "bad_json"),
        (b'{"type": "Feature"}', "v.geojson", "not_geojson"),
        (b"[1, 2]", "v.json", "not_geojson"),
        (b'{"type": "FeatureCollection", "features": {}}', "v.json", "not_geojson"),
        (b'{"type": "FeatureCollection", "features": []}', "v.json", "empty_file"),
        (b"[" * 100000, "v.json", "not_geojson"),
        (b"\xff\xfe{}", "v.geojson", "not_geojson"),
    ],
)
def test_file_level_errors(data: bytes, filename: str, code: str) -> None:
    rows, errors = read_venues(data, filename)
    assert rows == []
    assert codes(errors) == [(0, "", code)]


def test_xlsx_header_only_is_empty() -> None:
    assert codes(read_venues(make_xlsx([EN_HEADER]), "v.xlsx")[1]) == [(0, "", "empty_file")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_many_rows(fmt: str) -> None:
    rows = [VenueRow(name=f"v{i}", unit="u", type="gym", lon=1, lat=2) for i in range(6)]
    data = write_venues(rows, fmt)
    assert codes(read_venues(data, "x." + fmt, max_rows=5)[1]) == [(0, "", "too_many_rows")]
    assert read_venues(data, "x." + fmt, max_rows=6)[1] == []


def _sample_export(fmt: str) -> bytes:
    rows = [VenueRow(name=f"场地{i}", unit="单位", type="gym", lon=119, lat=32) for i in range(20)]
    return write_venues(rows, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_never_raise(fmt: str) -> None:
    data = _sample_export(fmt)
    for cut in range(0, len(data), max(1, len(data) // 60)):
        rows, errors = read_venues(data[:cut], "x." + fmt)
        assert isinstance(rows, list) and isinstance(errors, list)
        if fmt != "csv":  # a truncated CSV is just fewer (or one damaged) rows
            assert errors and (
                cut == 0 or errors[0].code in ("not_xlsx", "not_geojson", "bad_json")
            )


@pytest.mark.parametrize("ext", ["csv", "xlsx", "geojson", "json", "txt"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096))
def test_never_raises_on_random_bytes(ext: str, data: bytes) -> None:
    rows, errors = read_venues(data, "random." + ext)
    assert all(isinstance(e, RowError) for e in errors)
    for e in errors:
        assert message(e) and message(e, "en")


@settings(max_examples=100, deadline=None)
@given(pos=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_never_raises_on_corrupted_xlsx(pos: int, byte: int) -> None:
    data = bytearray(_sample_export("xlsx"))
    data[pos % len(data)] = byte
    read_venues(bytes(data), "x.xlsx")


@settings(max_examples=200, deadline=None)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["type", "features", "geometry", "properties", "coordinates"])
                | st.sampled_from(list(KEYS))
                | st.text(max_size=5),
                children,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_never_raises_on_odd_geojson(doc: Any) -> None:
    wrapped = [doc, {"type": "FeatureCollection", "features": doc}]
    wrapped.append({"type": "FeatureCollection", "features": [doc]})
    wrapped.append(
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": doc}]}
    )
    wrapped.append(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [1, 2]},
                    "properties": doc if isinstance(doc, dict) else {"name": doc},
                }
            ],
        }
    )
    for w in wrapped:
        read_venues(json.dumps(w).encode(), "x.geojson")


@pytest.mark.parametrize(
    "lon,capacity",
    [(10**400, 1), (1, "9" * 5000), ("1" * 5000, 1), (float("inf"), 1), (1, 10**400), (True, 1)],
)
def test_huge_values_in_geojson(lon: Any, capacity: Any) -> None:
    data = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [feature(lon, 2, name="a", unit="u", type="gym", capacity_units=capacity)],
        }
    ).encode()
    rows, errors = read_venues(data, "x.geojson")
    assert rows == [] and len(errors) == 1


# ---------------------------------------------------------------------------- round trip

TRICKY = ["场地，甲", 'a, "quoted"', "line\nbreak", "=SUM(A1)", "@x", "-1", "+1", "'=x", "''@y"]


def tricky_rows() -> list[VenueRow]:
    rows = [
        VenueRow(
            name=text,
            unit="国网镇江供电公司" if i % 2 else '=HYPERLINK("x")',
            type=["badminton", "yoga_dance", "public_land"][i % 3],
            lon=round(-1.0 - i / 7, 7),
            lat=32.1234567 + i,
            crs=["wgs84", "gcj02", "bd09"][i % 3],
            address=TRICKY[(i + 1) % len(TRICKY)],
            street=TRICKY[(i + 2) % len(TRICKY)],
            capacity_units=1 + i,
            max_headcount=None if i % 2 else 10000,
            facilities=TRICKY[(i + 3) % len(TRICKY)],
            phone=["+86 511 8888 0000", "-1234", "(0511) 8888-0000", ""][i % 4],
            hours=["", "Mon-Fri 09:00-21:00; Sat-Sun 08:00-12:00,14:00-18:00"][i % 2],
            slot_minutes=[15, 30, 60, 120][i % 4],
            min_duration_minutes=[15, 30, 60, 120][i % 4],
            max_duration_minutes=[15, 30, 60, 120][i % 4] * 2,
            max_days_ahead=365,
            min_notice_minutes=0 if i % 2 else 10080,
            requires_approval=bool(i % 2),
            bookable_by=["members", "paired", "public"][i % 3],
            weekly_quota_hours=None if i % 3 else 168,
            published=not i % 2,
        )
        for i, text in enumerate(TRICKY)
    ]
    return rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(fmt: str) -> None:
    rows = tricky_rows()
    first = 1 if fmt == "geojson" else 2
    expected = [dataclasses.replace(r, row=first + i) for i, r in enumerate(rows)]
    assert read_venues(write_venues(rows, fmt), "x." + fmt) == (expected, [])


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_empty(fmt: str) -> None:
    # an empty export is a valid file, but importing it has nothing to do
    assert codes(read_venues(write_venues([], fmt), "x." + fmt)[1]) == [(0, "", "empty_file")]


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None)
@given(name=_text, unit=_text, address=_text, facilities=_text)
def test_round_trip_of_imported_text(
    fmt: str, name: str, unit: str, address: str, facilities: str
) -> None:
    # Whatever an import accepts, exporting and re-importing gives the same row.
    src = make_csv(
        [["name", "unit", "type", "lon", "lat", "address", "facilities"]]
        + [[_q(name), _q(unit), "gym", "1.5", "2", _q(address), _q(facilities)]]
    )
    rows, errors = read_venues(src, "src.csv")
    if errors:
        return
    first = 1 if fmt == "geojson" else 2
    expected = [dataclasses.replace(r, row=first) for r in rows]
    assert read_venues(write_venues(rows, fmt), "x." + fmt) == (expected, [])


def _q(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_exported_csv_neutralises_formulas() -> None:
    rows = tricky_rows()
    text = write_venues(rows, "csv").decode("utf-8-sig")
    assert text.startswith("name,unit,type,lon,lat,crs,")
    assert "\n'=SUM(A1)," in text
    assert ",'+86 511 8888 0000," in text
    assert "\n'@x," in text
    assert "\n'-1," in text
    assert "\n''=x," in text  # an existing quote gets one more so the importer strips only ours
    assert ',"\'=HYPERLINK(""x"")",' in text
    # numbers are not quoted even when negative, booleans are true/false, None is empty
    assert ",-1.0," in text and ",true," in text and ",false," in text and ",," in text
    assert write_venues(rows, "csv").startswith(b"\xef\xbb\xbf")


def test_exported_xlsx_neutralises_formulas_and_is_formatted() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(write_venues(tricky_rows(), "xlsx")))
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]] == [zh for _, zh in COLUMNS]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width >= 20
    by_name = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    assert "'=SUM(A1)" in by_name and "'@x" in by_name and "'-1" in by_name
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@"):
                pytest.fail(f"unneutralised formula text {cell.value!r}")
    phone_col = KEYS.index("phone") + 1
    assert ws.cell(2, phone_col).value == "'+86 511 8888 0000"
    assert ws.cell(2, KEYS.index("type") + 1).value == "羽毛球场"
    assert ws.cell(2, KEYS.index("lon") + 1).value == -1.0


def test_exported_geojson_shape() -> None:
    doc = json.loads(write_venues(tricky_rows()[3:4], "geojson"))
    assert doc["type"] == "FeatureCollection"
    (feat,) = doc["features"]
    assert feat["geometry"] == {"type": "Point", "coordinates": [-1.4285714, 35.1234567]}
    assert feat["properties"]["name"] == "=SUM(A1)"  # no quote: not a spreadsheet format
    assert feat["properties"]["crs"] == "wgs84"
    assert feat["properties"]["max_headcount"] is None
    assert "lon" not in feat["properties"] and "row" not in feat["properties"]


def test_write_unknown_format() -> None:
    with pytest.raises(ValueError):
        write_venues([], "xls")


# ---------------------------------------------------------------------------- messages


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_code_has_both_messages(code: str) -> None:
    err = RowError(7, "capacity_units", code, {})
    zh, en = message(err), message(err, "en")
    assert "第 7 行「可并行数量」" in zh and "Row 7, capacity_units" in en
    assert "{" not in zh and "{" not in en


def test_message_examples() -> None:
    err = RowError(
        5, "capacity_units", "not_an_integer", {"value": "abc", "min": "1", "max": "100"}
    )
    assert message(err) == "第 5 行「可并行数量」：必须是 1 到 100 之间的整数，实际为「abc」"
    assert (
        message(err, "en")
        == "Row 5, capacity_units: must be a whole number from 1 to 100, got 'abc'"
    )
    file_err = RowError(0, "", "bad_encoding", {})
    assert message(file_err).startswith("文件：") and message(file_err, "en").startswith("File: ")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_messages_for_real_errors_name_row_and_field(fmt: str) -> None:
    _, errors = read_table(
        fmt,
        table(
            EN_HEADER + ["hours", "slot_minutes"],
            ["a", "u", "gym", 1, 2, "", ""],
            ["b", "u", "gym", 1, 2, "Mon 25:00-26:00", "45"],
        ),
    )
    assert codes(errors) == [(3, "hours", "bad_hours"), (3, "slot_minutes", "not_allowed")]
    zh = [message(e) for e in errors]
    en = [message(e, "en") for e in errors]
    assert zh[0].startswith("第 3 行「开放时间」：") and "时间不正确" in zh[0] and "25:00" in zh[0]
    assert en[0].startswith("Row 3, hours: ") and "bad time" in en[0]
    assert "15, 30, 60, 120" in zh[1] and "45" in en[1]


# ---------------------------------------------------------------------------- issue 16, defect 7


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_common_chinese_synonyms_are_accepted(fmt: str) -> None:
    header = ["场地名称", "单位", "场地类型", "经度", "纬度", "最多容纳人数", "时段长度", "电话"]
    rows, errors = read_table(fmt, [header, ["a", "u", "羽毛球场", 119.4, 32.2, 30, 30, "110"]])
    assert errors == []
    (row,) = rows
    assert (row.unit, row.type, row.max_headcount, row.slot_minutes) == ("u", "badminton", 30, 30)
    assert row.phone == "110"


def test_an_overlap_names_its_day_in_the_readers_language() -> None:
    _, errors = read_table(
        "csv", [[*EN_HEADER, "hours"], ["a", "u", "gym", 1, 2, "周三 09:00-12:00,11:00-14:00"]]
    )
    (err,) = errors
    assert "周三 11:00-14:00" in message(err) and "Wed" not in message(err)
    assert "Wednesday 11:00-14:00" in message(err, "en")


def test_chinese_messages_list_chinese_headers_and_labels() -> None:
    _, errors = read_table("csv", [[*EN_HEADER, "colour"], ["a", "u", "moon", 1, 2, "red"]])
    zh = [message(e) for e in errors]
    en = [message(e, "en") for e in errors]
    assert "可用列：名称、所属单位、类型" in zh[0] and "allowed: name, unit, type" in en[0]
    assert "第 2 行「类型」" in zh[1] and "羽毛球场、乒乓球室" in zh[1] and "badminton" not in zh[1]
    assert "Row 2, type" in en[1] and "badminton, table_tennis" in en[1]
    _, errors = read_table("csv", [["name", "type", "lon"], ["a", "gym", 1]])
    assert "缺少必需的列：所属单位、纬度" in message(errors[0])
    assert "missing: unit, lat" in message(errors[0], "en")
