"""Areas (districts, streets) and the point-in-area questions the map asks of them.

Everything here works in WGS-84 longitude/latitude (EPSG:4326); areas and lengths are measured
in the CGCS2000 3-degree Gauss-Krüger zone nearest the data (:func:`metric_crs`). Pure: no Flask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = [
    "Area",
    "GeoDataError",
    "NAME_COLUMNS",
    "area_km2",
    "assign_streets",
    "contains",
    "haversine_km",
    "haversine_m",
    "metric_crs",
    "read_areas",
    "street_for_point",
]

K = TypeVar("K")

WGS84 = "EPSG:4326"
#: Mean Earth radius (IUGG), metres: the sphere the great-circle distances use.
EARTH_RADIUS_M = 6371008.8
#: Columns that may hold an area's name, in order of preference.
NAME_COLUMNS: tuple[str, ...] = ("name", "NAME", "Name", "名称")
_TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "是"})


class GeoDataError(ValueError):
    """A boundary file that cannot be used: unreadable, unnamed or not polygons."""


@dataclass(frozen=True)
class Area:
    """A named polygonal area in WGS-84 (a district, a street…)."""

    name: str
    name_en: str
    level: str
    approximate: bool
    geometry: BaseGeometry


def _as_bool(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return bool(value)


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def read_areas(path: str | Path, level: str | None = None) -> list[Area]:
    """Read polygons with names from any file GeoPandas reads (GeoJSON, shapefile, GeoPackage…).

    Geometries are reprojected to WGS-84 if the file declares another CRS (a file declaring
    none is taken to be WGS-84 already). The name comes from a ``name``/``NAME``/``名称``
    column, ``name_en`` and ``approximate`` (``approximat`` in a shapefile) from columns of those
    names if present, the level
    from ``level`` if given, else from a ``level`` column, else ``"area"``.

    Raises :class:`GeoDataError` if the file cannot be read, has no name column, or holds
    anything but polygons.
    """
    path = Path(path)
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types; all mean "cannot read"
        raise GeoDataError(f"{path.name}: cannot read as a geographic data file ({exc})") from exc
    if frame.geometry.name not in frame or len(frame) == 0:
        raise GeoDataError(f"{path.name}: the file holds no features")
    name_col = next((c for c in NAME_COLUMNS if c in frame.columns), None)
    if name_col is None:
        raise GeoDataError(
            f"{path.name}: no name column (expected one of {', '.join(NAME_COLUMNS)}; "
            f"found {', '.join(str(c) for c in frame.columns if c != frame.geometry.name)})"
        )
    geoms = frame.geometry
    bad = [
        i
        for i, g in enumerate(geoms)
        if g is None or g.is_empty or not isinstance(g, Polygon | MultiPolygon)
    ]
    if bad:
        kinds = sorted({"empty" if geoms.iloc[i] is None else geoms.iloc[i].geom_type for i in bad})
        raise GeoDataError(
            f"{path.name}: {len(bad)} feature(s) are not polygons ({', '.join(kinds)}); "
            "areas must be Polygon or MultiPolygon"
        )
    if frame.crs is not None and not frame.crs.equals(WGS84):
        frame = frame.to_crs(WGS84)
    # Shapefiles truncate column names to 10 characters.
    approx_col = next((c for c in ("approximate", "approximat") if c in frame.columns), None)
    areas: list[Area] = []
    for _, row in frame.iterrows():
        name = _as_text(row[name_col])
        if not name:
            raise GeoDataError(f"{path.name}: a feature has an empty {name_col!r}")
        areas.append(
            Area(
                name=name,
                name_en=_as_text(row["name_en"]) if "name_en" in frame.columns else "",
                level=level
                or (_as_text(row["level"]) if "level" in frame.columns else "")
                or "area",
                approximate=_as_bool(row[approx_col]) if approx_col else False,
                geometry=row[frame.geometry.name],
            )
        )
    return areas


def metric_crs(lon: float) -> str:
    """The CGCS2000 3-degree Gauss-Krüger zone (``EPSG:45xx``) whose central meridian is nearest.

    EPSG:4534 is the zone with central meridian 75°E, EPSG:4535 78°E … EPSG:4554 135°E
    (the "CM" variants, with no zone number prefixed to the easting). Longitudes outside
    China's range are clamped to the end zones.
    """
    cm = 3 * round(lon / 3)
    cm = min(max(cm, 75), 135)
    return f"EPSG:{4534 + (cm - 75) // 3}"


def _street_frame(streets: Sequence[tuple[Any, BaseGeometry]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"order": range(len(streets))}, geometry=[g for _, g in streets], crs=WGS84
    )


def assign_streets(
    points: Sequence[tuple[float, float]], streets: Sequence[tuple[K, BaseGeometry]]
) -> list[K | None]:
    """For each (lon, lat) point, the key of the street containing it, or None.

    Done as one spatial join. A point on a border shared by several streets (or in an overlap)
    goes to the one listed first in ``streets``, so the answer is deterministic.
    """
    if not points:
        return []
    if not streets:
        return [None] * len(points)
    pts = gpd.GeoDataFrame(
        {"pt": range(len(points))},
        geometry=gpd.points_from_xy([p[0] for p in points], [p[1] for p in points]),
        crs=WGS84,
    )
    joined = gpd.sjoin(pts, _street_frame(streets), how="inner", predicate="intersects")
    first = joined.sort_values(["pt", "order"]).drop_duplicates("pt")
    result: list[K | None] = [None] * len(points)
    for pt, order in zip(first["pt"], first["order"], strict=True):
        result[int(pt)] = streets[int(order)][0]
    return result


def street_for_point(lon: float, lat: float, streets: Sequence[tuple[K, BaseGeometry]]) -> K | None:
    """The key of the street containing (lon, lat), or None; see :func:`assign_streets`."""
    return assign_streets([(lon, lat)], streets)[0]


def contains(region: BaseGeometry, lon: float, lat: float) -> bool:
    """True if (lon, lat) is inside ``region`` or exactly on its boundary."""
    return bool(shapely.intersects(region, Point(lon, lat)))


def area_km2(geom: BaseGeometry) -> float:
    """Area of a WGS-84 geometry in km², measured in the nearest CGCS2000 Gauss-Krüger zone."""
    if geom.is_empty:
        return 0.0
    crs = metric_crs(float(geom.centroid.x))
    projected = gpd.GeoSeries([geom], crs=WGS84).to_crs(crs)
    return float(projected.area.iloc[0]) / 1e6


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points (on the sphere: accurate to
    well under 1 % at city scale, enough to rank venues by distance)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """:func:`haversine_m` in kilometres."""
    return haversine_m(lon1, lat1, lon2, lat2) / 1000
