"""Tests for mapservice.core.geo and the boundary files in geodata/."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Point, Polygon, box

from mapservice.core import geo
from mapservice.core.geo import Area, GeoDataError

GEODATA = Path(__file__).resolve().parent.parent / "geodata"

RUNZHOU_STREETS = {
    "和平路街道",
    "宝塔路街道",
    "金山街道",
    "七里甸街道",
    "蒋乔街道",
    "官塘桥街道",
    "韦岗街道",
}
JIANHUA_STREETS = {"中华街道", "新华街道", "西大桥街道", "建设街道", "卜奎街道", "文化街道"}
QIQIHAR = {
    "龙沙区", "建华区", "铁锋区", "昂昂溪区", "富拉尔基区", "碾子山区", "梅里斯达斡尔族区",
    "依安县", "龙江县", "泰来县", "甘南县", "富裕县", "克山县", "克东县", "拜泉县", "讷河市",
}  # fmt: skip
JINCHENG = {"城区", "沁水县", "阳城县", "陵川县", "高平市", "泽州县"}

# (file, level, expected names, approximate)
FILES = [
    ("runzhou/district.geojson", "district", {"润州区"}, False),
    ("runzhou/streets.geojson", "street", RUNZHOU_STREETS, True),
    ("qiqihar/districts.geojson", "district", QIQIHAR, False),
    ("qiqihar/jianhua-streets.geojson", "street", JIANHUA_STREETS, True),
    ("saihan/district.geojson", "district", {"赛罕区"}, False),
    ("jincheng/districts.geojson", "district", JINCHENG, False),
]

# 润州区人民政府, approximately: the district centre AMap publishes (GCJ-02 119.411959,
# 32.195264, the `cp` of the source data) converted to WGS-84. Not surveyed; ~100 m.
RUNZHOU_GOVT = (119.4065, 32.1971)
# 京口区人民政府, likewise from its `cp` (GCJ-02 119.47016, 32.19828).
JINGKOU_GOVT = (119.4648, 32.2002)


def _load(rel: str) -> list[Area]:
    return geo.read_areas(GEODATA / rel)


def _union(areas: list[Area]) -> shapely.Geometry:
    return shapely.union_all([a.geometry for a in areas])


@pytest.mark.parametrize(("rel", "level", "names", "approximate"), FILES)
def test_geodata_files_load(rel: str, level: str, names: set[str], approximate: bool) -> None:
    path = GEODATA / rel
    assert path.stat().st_size < 1_000_000
    areas = _load(rel)
    assert {a.name for a in areas} == names
    assert len(areas) == len(names)
    for a in areas:
        assert a.level == level
        assert a.approximate is approximate
        assert a.name_en
        assert isinstance(a.geometry, Polygon | MultiPolygon)
        assert a.geometry.is_valid
        assert not a.geometry.is_empty
        # Everything is in China, in WGS-84 degrees.
        minx, miny, maxx, maxy = a.geometry.bounds
        assert 73 < minx < maxx < 135
        assert 18 < miny < maxy < 54


def test_runzhou_contains_its_government_not_jingkou() -> None:
    (runzhou,) = _load("runzhou/district.geojson")
    assert geo.contains(runzhou.geometry, *RUNZHOU_GOVT)
    assert not geo.contains(runzhou.geometry, *JINGKOU_GOVT)
    assert not geo.contains(runzhou.geometry, 118.7969, 32.0603)  # Nanjing


def test_runzhou_area_plausible() -> None:
    # The official figure is about 130 km² (sources differ: 123–135 km²); the source data are
    # simplified on a ~100 m grid, so accept a wide band.
    (runzhou,) = _load("runzhou/district.geojson")
    assert 100 < geo.area_km2(runzhou.geometry) < 160


@pytest.mark.parametrize(
    ("district_file", "district", "streets_file"),
    [
        ("runzhou/district.geojson", "润州区", "runzhou/streets.geojson"),
        ("qiqihar/districts.geojson", "建华区", "qiqihar/jianhua-streets.geojson"),
    ],
)
def test_streets_partition_district(district_file: str, district: str, streets_file: str) -> None:
    whole = next(a for a in _load(district_file) if a.name == district).geometry
    streets = _load(streets_file)
    union = _union(streets)
    whole_km2 = geo.area_km2(whole)
    assert geo.area_km2(union) == pytest.approx(whole_km2, rel=0.005)
    assert geo.area_km2(shapely.symmetric_difference(union, whole)) < 0.005 * whole_km2
    for a, b in itertools.combinations(streets, 2):
        overlap = shapely.intersection(a.geometry, b.geometry)
        assert geo.area_km2(overlap) < 1e-4, (a.name, b.name)  # < 100 m²


def test_streets_hold_their_own_offices() -> None:
    streets = _load("runzhou/streets.geojson")
    frame = gpd.read_file(GEODATA / "runzhou/streets.geojson")
    offices = [tuple(o) for o in frame["office"]]
    keyed = [(s.name, s.geometry) for s in streets]
    assert geo.assign_streets(offices, keyed) == [s.name for s in streets]


def test_assign_streets_sample_points() -> None:
    streets = [(s.name, s.geometry) for s in _load("runzhou/streets.geojson")]
    points = [
        (119.3200, 32.1050),  # the south-western exclave: Weigang
        (119.4110, 32.2150),  # by the Jinshan office
        JINGKOU_GOVT,  # outside Runzhou
        (0.0, 0.0),
    ]
    assert geo.assign_streets(points, streets) == ["韦岗街道", "金山街道", None, None]
    assert geo.street_for_point(119.4290, 32.1700, streets) == "七里甸街道"
    assert geo.street_for_point(*JINGKOU_GOVT, streets) is None
    assert geo.assign_streets([], streets) == []
    assert geo.assign_streets([(119.4, 32.2)], []) == [None]


def test_assign_streets_border_goes_to_first_listed() -> None:
    left, right = box(0.5, 0.5, 1.0, 1.0), box(1.0, 0.5, 1.5, 1.0)
    on_border = (1.0, 0.75)
    corner = (1.0, 1.0)
    assert geo.assign_streets([on_border, corner], [("L", left), ("R", right)]) == ["L", "L"]
    assert geo.assign_streets([on_border, corner], [(2, right), (1, left)]) == [2, 2]
    assert geo.street_for_point(0.75, 0.75, [(7, left), (8, right)]) == 7


def test_contains_boundary_is_inside() -> None:
    square = box(119.0, 32.0, 119.5, 32.5)
    assert geo.contains(square, 119.0, 32.25)
    assert geo.contains(square, 119.5, 32.5)
    assert geo.contains(square, 119.2, 32.2)
    assert not geo.contains(square, 119.6, 32.2)


@pytest.mark.parametrize(
    ("lon", "epsg"),
    [
        (119.4, 4549),  # Runzhou: CM 120°E
        (119.45, 4549),
        (123.95, 4550),  # Qiqihar: CM 123°E
        (111.7, 4546),  # Hohhot: CM 111°E
        (112.85, 4547),  # Jincheng: CM 114°E
        (75.0, 4534),
        (135.0, 4554),
        (60.0, 4534),  # clamped
        (140.0, 4554),
    ],
)
def test_metric_crs(lon: float, epsg: int) -> None:
    assert geo.metric_crs(lon) == f"EPSG:{epsg}"
    name = CRS.from_user_input(geo.metric_crs(lon)).name
    assert name.startswith("CGCS2000 / 3-degree Gauss-Kruger CM ")
    cm = int(name.rsplit(" ", 1)[1].rstrip("E"))
    assert abs(cm - min(max(lon, 75), 135)) <= 1.5


def test_area_km2_known_square() -> None:
    # A 0.1° square at 32°N: about 11.1 km × 9.43 km.
    sq = box(119.4, 32.0, 119.5, 32.1)
    assert geo.area_km2(sq) == pytest.approx(11.09 * 9.43, rel=0.01)
    assert geo.area_km2(Polygon()) == 0.0


def test_read_areas_reprojects_shapefile(tmp_path: Path) -> None:
    (runzhou,) = _load("runzhou/district.geojson")
    # Shapefile column names have at most 10 characters: "approximate" becomes "approximat".
    frame = gpd.GeoDataFrame(
        {"NAME": ["润州区"], "approximat": [1]}, geometry=[runzhou.geometry], crs="EPSG:4326"
    ).to_crs("EPSG:4549")
    assert frame.geometry.iloc[0].bounds[0] > 1000  # metres now
    path = tmp_path / "runzhou.shp"
    frame.to_file(path, encoding="utf-8")
    (area,) = geo.read_areas(path, level="district")
    assert area.name == "润州区"
    assert area.level == "district"
    assert area.approximate is True
    assert area.name_en == ""
    assert area.geometry.bounds == pytest.approx(runzhou.geometry.bounds, abs=1e-6)
    assert geo.contains(area.geometry, *RUNZHOU_GOVT)


def test_read_areas_geopackage_chinese_name_column(tmp_path: Path) -> None:
    path = tmp_path / "a.gpkg"
    gpd.GeoDataFrame(
        {"名称": ["甲", "乙"], "level": ["street", "street"]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
        crs="EPSG:4326",
    ).to_file(path)
    areas = geo.read_areas(path)
    assert [(a.name, a.level, a.approximate) for a in areas] == [
        ("甲", "street", False),
        ("乙", "street", False),
    ]


def test_read_areas_without_names(tmp_path: Path) -> None:
    path = tmp_path / "nameless.geojson"
    gpd.GeoDataFrame({"code": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(path)
    with pytest.raises(GeoDataError, match="no name column"):
        geo.read_areas(path)


def test_read_areas_not_polygons(tmp_path: Path) -> None:
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[Point(1, 1)], crs="EPSG:4326").to_file(path)
    with pytest.raises(GeoDataError, match="not polygons"):
        geo.read_areas(path)


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".gpkg", ".bin"])
def test_read_areas_garbage(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"\x00\x01\x02 this is not geodata \xff\xfe" * 20)
    with pytest.raises(GeoDataError, match="cannot read"):
        geo.read_areas(path)


def test_read_areas_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GeoDataError):
        geo.read_areas(tmp_path / "nope.geojson")


def test_geodata_error_is_value_error() -> None:
    assert issubclass(GeoDataError, ValueError)
