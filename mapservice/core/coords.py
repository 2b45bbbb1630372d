"""Conversions between the coordinate systems used by Chinese web maps.

* **WGS-84** (``"wgs84"``): GPS, OpenStreetMap, Tianditu (to within CGCS2000's few centimetres).
* **GCJ-02** (``"gcj02"``): the state-mandated obfuscated system used by AMap (高德) and Tencent
  maps, and by coordinates copied from their location pickers.
* **BD-09** (``"bd09"``): Baidu's system, a further distortion applied on top of GCJ-02.

The forward formulas (WGS-84 → GCJ-02 and GCJ-02 → BD-09) are the published ones found in many
open-source projects (eviltransform, coordtransform). They have no closed-form inverse, so both
inverses here are computed by fixed-point iteration until the forward transform of the result
reproduces the input to within :data:`_TOLERANCE` degrees; round trips are therefore exact to far
better than 1e-6° (about 0.1 m).

All functions take and return ``(lon, lat)`` in decimal degrees: longitude first, as in GeoJSON.
Outside China (a rough bounding box, :func:`out_of_china`) no offset is applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = [
    "CRS_NAMES",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

Point = tuple[float, float]

#: The coordinate-system keys accepted by :func:`to_wgs84` / :func:`from_wgs84`; they are the
#: values of :class:`mapservice.core.vocab.Crs`.
CRS_NAMES: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

# Inverses iterate until the forward transform of the estimate is this close to the input (deg).
_TOLERANCE = 1e-9
_MAX_ITERATIONS = 50


def out_of_china(lon: float, lat: float) -> bool:
    """True if the point lies outside the rough bounding box in which GCJ-02 applies.

    This is the standard box of the published formula (72.004–137.8347°E, 0.8293–55.8271°N); it
    is deliberately coarse and includes parts of neighbouring countries, exactly as AMap does.
    """
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj_offset(lon: float, lat: float) -> Point:
    """The (dlon, dlat) GCJ-02 adds to a WGS-84 point inside China."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = math.sin(radlat)
    magic = 1 - _EE * magic * magic
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def _invert(
    forward: Callable[[float, float], Point], lon: float, lat: float, start: Point | None = None
) -> Point:
    """Solve ``forward(x, y) == (lon, lat)`` by fixed-point iteration from ``start`` (default:
    ``(lon, lat)`` itself).

    Both forward transforms are a small perturbation of the identity (Jacobian ≈ I), so
    ``p ← p − (forward(p) − target)`` converges geometrically, typically in 3–6 steps.
    """
    x, y = (lon, lat) if start is None else start
    for _ in range(_MAX_ITERATIONS):
        fx, fy = forward(x, y)
        ex, ey = fx - lon, fy - lat
        if abs(ex) < _TOLERANCE and abs(ey) < _TOLERANCE:
            break
        x -= ex
        y -= ey
    return x, y


def wgs84_to_gcj02(lon: float, lat: float) -> Point:
    """WGS-84 → GCJ-02 (the published forward formula); unchanged outside China."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> Point:
    """GCJ-02 → WGS-84, the exact inverse of :func:`wgs84_to_gcj02` (by iteration)."""
    if out_of_china(lon, lat):
        return lon, lat
    return _invert(wgs84_to_gcj02, lon, lat)


def gcj02_to_bd09(lon: float, lat: float) -> Point:
    """GCJ-02 → BD-09 (Baidu's published formula); unchanged outside China."""
    if out_of_china(lon, lat):
        return lon, lat
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _bd09_to_gcj02_closed_form(lon: float, lat: float) -> Point:
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_gcj02(lon: float, lat: float) -> Point:
    """BD-09 → GCJ-02, the exact inverse of :func:`gcj02_to_bd09`.

    The commonly published closed form is only approximate (errors of a few 1e-6°), so it is
    used as the starting point and refined by iteration.
    """
    if out_of_china(lon, lat):
        return lon, lat
    return _invert(gcj02_to_bd09, lon, lat, _bd09_to_gcj02_closed_form(lon, lat))


def wgs84_to_bd09(lon: float, lat: float) -> Point:
    """WGS-84 → BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> Point:
    """BD-09 → WGS-84 (via GCJ-02), exact inverse of :func:`wgs84_to_bd09`."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84: dict[str, Callable[[float, float], Point]] = {
    "wgs84": lambda lon, lat: (lon, lat),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS84: dict[str, Callable[[float, float], Point]] = {
    "wgs84": lambda lon, lat: (lon, lat),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def _lookup(
    table: dict[str, Callable[[float, float], Point]], crs: str
) -> Callable[[float, float], Point]:
    key = str(crs).strip().lower().replace("-", "").replace("_", "")
    try:
        return table[key]
    except KeyError:
        raise ValueError(
            f"unknown coordinate system {crs!r}: expected one of {', '.join(CRS_NAMES)}"
        ) from None


def to_wgs84(lon: float, lat: float, crs: str) -> Point:
    """Convert a point given in ``crs`` ("wgs84", "gcj02" or "bd09") to WGS-84."""
    return _lookup(_TO_WGS84, crs)(float(lon), float(lat))


def from_wgs84(lon: float, lat: float, crs: str) -> Point:
    """Convert a WGS-84 point to ``crs`` ("wgs84", "gcj02" or "bd09")."""
    return _lookup(_FROM_WGS84, crs)(float(lon), float(lat))
