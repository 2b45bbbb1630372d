"""Tests for mapservice.core.coords (WGS-84 / GCJ-02 / BD-09 conversions)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapservice.core import coords
from mapservice.core.vocab import Crs

# --- published reference vectors -------------------------------------------------------------
# (lon, lat) in, (lon, lat) out.
#
# From googollee/eviltransform, python/test.py (MIT): WGS-84 -> GCJ-02, asserted there to 6
# decimals. The GCJ-02 -> WGS-84 direction is checked by round trip against the same pairs.
EVILTRANSFORM_WGS_GCJ = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]

# From wandergis/coordtransform, README.md "result" block (MIT), input (116.404, 39.915) each.
# The two forward transforms are exact formulas, so they must agree to ~1e-9 degrees.
COORDTRANSFORM_FORWARD = [
    ("wgs84_to_gcj02", (116.41024449916938, 39.91640428150164)),
    ("gcj02_to_bd09", (116.41036949371029, 39.92133699351021)),
]
# Its two inverses are one-step approximations (not iterated), so ours, which are exact, differ
# from them by up to a few 1e-6 degrees (well under a metre).
COORDTRANSFORM_APPROX_INVERSE = [
    ("bd09_to_gcj02", (116.39762729119315, 39.90865673957631), 2e-6),
    ("gcj02_to_wgs84", (116.39775550083061, 39.91359571849836), 2e-5),
]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance in metres, fine for the sub-kilometre offsets tested here."""
    mean_lat = math.radians((a[1] + b[1]) / 2)
    dx = (a[0] - b[0]) * 111_320 * math.cos(mean_lat)
    dy = (a[1] - b[1]) * 110_574
    return math.hypot(dx, dy)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    got = coords.wgs84_to_gcj02(*wgs)
    assert got == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_WGS_GCJ)
def test_gcj02_to_wgs84_inverts_eviltransform_vectors(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    got = coords.gcj02_to_wgs84(*gcj)
    assert got == pytest.approx(wgs, abs=1e-7)


@pytest.mark.parametrize(("name", "expected"), COORDTRANSFORM_FORWARD)
def test_forward_matches_coordtransform(name: str, expected: tuple[float, float]) -> None:
    got = getattr(coords, name)(116.404, 39.915)
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("name", "expected", "tol"), COORDTRANSFORM_APPROX_INVERSE)
def test_inverse_close_to_coordtransform(
    name: str, expected: tuple[float, float], tol: float
) -> None:
    got = getattr(coords, name)(116.404, 39.915)
    assert got == pytest.approx(expected, abs=tol)


# --- round trips -------------------------------------------------------------------------------

# Points across China: corners of the country, big cities and the seed districts.
CHINA_POINTS = [
    (119.45, 32.2),  # Runzhou, Zhenjiang
    (123.95, 47.35),  # Jianhua, Qiqihar
    (111.70, 40.80),  # Saihan, Hohhot
    (112.85, 35.50),  # Jincheng
    (116.3975, 39.9087),  # Beijing
    (121.4737, 31.2304),  # Shanghai
    (113.2644, 23.1291),  # Guangzhou
    (87.6168, 43.8256),  # Urumqi
    (91.1409, 29.6456),  # Lhasa
    (126.5350, 45.8038),  # Harbin
    (109.5120, 18.2528),  # Sanya
    (134.3, 48.3),  # far north-east
    (73.9, 39.4),  # far west
    (100.0, 1.0),  # just inside the bounding box, far south
]


@pytest.mark.parametrize(("lon", "lat"), CHINA_POINTS)
@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_round_trip_table(lon: float, lat: float, crs: str) -> None:
    there = coords.from_wgs84(lon, lat, crs)
    assert there != (lon, lat)
    back = coords.to_wgs84(*there, crs)
    assert back == pytest.approx((lon, lat), abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(min_value=73.5, max_value=135.0),
    lat=st.floats(min_value=18.0, max_value=53.5),
)
def test_round_trips_hypothesis(lon: float, lat: float) -> None:
    g = coords.wgs84_to_gcj02(lon, lat)
    assert coords.gcj02_to_wgs84(*g) == pytest.approx((lon, lat), abs=1e-6)
    b = coords.gcj02_to_bd09(lon, lat)
    assert coords.bd09_to_gcj02(*b) == pytest.approx((lon, lat), abs=1e-6)
    wb = coords.wgs84_to_bd09(lon, lat)
    assert coords.bd09_to_wgs84(*wb) == pytest.approx((lon, lat), abs=1e-6)
    # And the inverse direction: a GCJ point taken to WGS and back.
    assert coords.wgs84_to_gcj02(*coords.gcj02_to_wgs84(lon, lat)) == pytest.approx(
        (lon, lat), abs=1e-6
    )


def test_runzhou_offset_is_about_half_a_kilometre() -> None:
    wgs = (119.45, 32.2)
    gcj = coords.wgs84_to_gcj02(*wgs)
    assert 450 <= _metres(wgs, gcj) <= 650
    # GCJ-02 shifts eastern China east and south.
    assert gcj[0] > wgs[0]
    assert gcj[1] < wgs[1]
    # Baidu adds roughly another 0.0065/0.006 degrees on top: about 1 km more.
    bd = coords.wgs84_to_bd09(*wgs)
    assert 800 <= _metres(gcj, bd) <= 1300


# --- outside China ------------------------------------------------------------------------------

OUTSIDE = [
    (-0.1276, 51.5072),  # London
    (139.6917, 35.6895),  # Tokyo (east of the box)
    (151.2093, -33.8688),  # Sydney
    (-74.006, 40.7128),  # New York
    (37.6173, 55.7558),  # Moscow
    (0.0, 0.0),
]


@pytest.mark.parametrize(("lon", "lat"), OUTSIDE)
def test_out_of_china_unchanged(lon: float, lat: float) -> None:
    assert coords.out_of_china(lon, lat)
    for crs in ("wgs84", "gcj02", "bd09"):
        assert coords.from_wgs84(lon, lat, crs) == (lon, lat)
        assert coords.to_wgs84(lon, lat, crs) == (lon, lat)


@pytest.mark.parametrize(("lon", "lat"), CHINA_POINTS)
def test_china_points_inside(lon: float, lat: float) -> None:
    assert not coords.out_of_china(lon, lat)


# --- dispatch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("crs", list(Crs))
def test_every_vocab_crs_is_supported(crs: Crs) -> None:
    lon, lat = coords.from_wgs84(119.45, 32.2, crs)
    assert coords.to_wgs84(lon, lat, crs) == pytest.approx((119.45, 32.2), abs=1e-6)


def test_wgs84_is_identity() -> None:
    assert coords.to_wgs84(119.45, 32.2, "wgs84") == (119.45, 32.2)
    assert coords.from_wgs84(119.45, 32.2, "wgs84") == (119.45, 32.2)


@pytest.mark.parametrize("bad", ["", "epsg:4326", "bd-10", "mars"])
def test_unknown_crs_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        coords.to_wgs84(119.45, 32.2, bad)
    with pytest.raises(ValueError, match="unknown coordinate system"):
        coords.from_wgs84(119.45, 32.2, bad)
