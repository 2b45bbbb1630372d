"""Coverage analysis (覆盖率): which parts of each street lie within reach of a venue type.

Reach is the union of discs of ``radius_m`` metres around the venues, drawn in a metric CRS
(the CGCS2000 Gauss-Krüger zone nearest the region, :func:`mapservice.core.geo.metric_crs`),
so a kilometre is a kilometre wherever the district lies. A street's coverage is the share of
its area inside reach; when community points are given, also the share of them within reach.
The gaps (street area out of reach) come back as WGS-84 geometry to draw. Pure: no Flask.

A community point is "within reach" when its geodesic distance on the WGS-84 ellipsoid to some
venue is at most ``radius_m`` (:func:`within_reach`): an exact definition that does not depend
on the projection, answered with a spatial index in the metric CRS (candidates) and the exact
distance for the candidates only. The drawn discs are polygons (128 sides) in the projection,
so a point within centimetres of the edge may look covered while not counted, or the reverse.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod, Proj, Transformer
from shapely.geometry.base import BaseGeometry

from mapservice.core.collector import cycle_collector_paused
from mapservice.core.geo import WGS84, metric_crs

__all__ = ["GEOD", "Coverage", "StreetCoverage", "coverage", "within_reach"]

#: The ellipsoid distances are measured on (CGCS2000's differs from it by 0.1 mm).
GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class StreetCoverage:
    name: str
    area_km2: float
    covered_km2: float
    #: covered_km2 / area_km2 (0 for an empty street)
    share: float
    #: venues of the type inside the street
    venues: int
    communities: int
    communities_covered: int
    #: the street's area out of reach (WGS-84; empty when fully covered)
    gap: BaseGeometry


@dataclass(frozen=True)
class Coverage:
    crs: str
    radius_m: float
    streets: list[StreetCoverage]
    #: union of the discs (WGS-84)
    reach: BaseGeometry
    area_km2: float
    covered_km2: float
    communities: int
    communities_covered: int

    @property
    def share(self) -> float:
        return self.covered_km2 / self.area_km2 if self.area_km2 > 0 else 0.0

    @property
    def community_share(self) -> float | None:
        return self.communities_covered / self.communities if self.communities else None

    @property
    def uncovered(self) -> list[StreetCoverage]:
        """Streets with no venue of the type within reach of any of their area."""
        return [s for s in self.streets if s.covered_km2 <= 1e-9]


@lru_cache(maxsize=16)
def _to_metric(crs: str) -> Transformer:
    return Transformer.from_crs(WGS84, crs, always_xy=True)


@lru_cache(maxsize=16)
def _proj(crs: str) -> Proj:
    return Proj(crs)


def _scale_range(crs: str, lons: np.ndarray, lats: np.ndarray) -> tuple[float, float]:
    """Bounds (low, high) of the projection's scale factor over the points' bounding box.

    The factor is sampled on a 5 x 5 grid over the box, corners included: in a transverse
    Mercator (Gauss-Krüger) projection it grows with the distance from the central meridian
    and towards the equator, so its extremes over a box lie on the grid's edges. A distance
    in the projection is between ``low`` and ``high`` times the geodesic distance; a margin
    of 0.1 % each way covers geodesics bending off the box and the grid's sampling."""
    gx, gy = np.meshgrid(
        np.linspace(float(lons.min()), float(lons.max()), 5),
        np.linspace(float(lats.min()), float(lats.max()), 5),
    )
    factors = _proj(crs).get_factors(gx.ravel(), gy.ravel())
    scales = np.concatenate([factors.meridional_scale, factors.parallel_scale])
    return float(scales.min()) / 1.001, float(scales.max()) * 1.001


def _lonlat(points: Sequence[tuple[float, float]]) -> np.ndarray:
    return np.fromiter(itertools.chain.from_iterable(points), float, 2 * len(points)).reshape(-1, 2)


def within_reach(
    points: Sequence[tuple[float, float]],
    targets: Sequence[tuple[float, float]],
    radius_m: float,
    crs: str | None = None,
) -> np.ndarray:
    """For each of ``targets`` (WGS-84 lon, lat): is some point of ``points`` at most
    ``radius_m`` metres away, measured along the WGS-84 ellipsoid (geodesic distance)?

    Answered with an STR-tree (of the larger of the two sets) in the metric ``crs`` (default:
    the Gauss-Krüger zone of the points' mean longitude). With ``low``..``high`` the
    projection's scale over the data (:func:`_scale_range`), pairs farther apart than
    ``radius_m * high`` in the projection cannot be within reach (the tree never returns
    them), pairs closer than ``radius_m * low`` certainly are; only the pairs in between are
    measured on the ellipsoid.
    Same answer as measuring every pair on the ellipsoid."""
    if radius_m <= 0:
        raise ValueError("radius must be positive")
    n = len(targets)
    if not n or not points:
        return np.zeros(n, dtype=bool)
    p = _lonlat(points)
    t = _lonlat(targets)
    if crs is None:
        crs = metric_crs(float(p[:, 0].mean()))
    to_metric = _to_metric(crs)
    px, py = to_metric.transform(p[:, 0], p[:, 1])
    tx, ty = to_metric.transform(t[:, 0], t[:, 1])
    low, high = _scale_range(
        crs, np.concatenate([p[:, 0], t[:, 0]]), np.concatenate([p[:, 1], t[:, 1]])
    )
    with cycle_collector_paused():
        # The tree holds the larger set and the smaller one queries it (fewer, larger answers).
        p_geoms, t_geoms = shapely.points(px, py), shapely.points(tx, ty)
        if len(t_geoms) > len(p_geoms):
            p_idx, t_idx = shapely.STRtree(t_geoms).query(
                p_geoms, predicate="dwithin", distance=radius_m * high
            )
        else:
            t_idx, p_idx = shapely.STRtree(p_geoms).query(
                t_geoms, predicate="dwithin", distance=radius_m * high
            )
    out = np.zeros(n, dtype=bool)
    if not len(t_idx):
        return out
    projected = np.hypot(tx[t_idx] - px[p_idx], ty[t_idx] - py[p_idx])
    out[t_idx[projected <= radius_m * low]] = True
    band = ~out[t_idx]  # pairs of targets not yet known to be covered
    if band.any():
        ti, pi = t_idx[band], p_idx[band]
        _az, _baz, dist = GEOD.inv(t[ti, 0], t[ti, 1], p[pi, 0], p[pi, 1])
        out[ti[np.asarray(dist) <= radius_m]] = True
    return out


def coverage(
    points: Sequence[tuple[float, float]],
    streets: Sequence[tuple[str, BaseGeometry]],
    radius_m: float = 1000.0,
    communities: Sequence[tuple[float, float]] = (),
    crs: str | None = None,
) -> Coverage:
    """Coverage of ``streets`` (name, WGS-84 polygon) by discs of ``radius_m`` around
    ``points`` (WGS-84 lon, lat); ``communities`` are optional (lon, lat) points counted
    as covered when within ``radius_m`` of a point on the ellipsoid (:func:`within_reach`).
    ``crs`` overrides the metric CRS (chosen from the streets' centre otherwise)."""
    if radius_m <= 0:
        raise ValueError("radius must be positive")
    geoms = [g for _, g in streets]
    if crs is None:
        centre = shapely.union_all(geoms).centroid if geoms else None
        lon = (
            float(centre.x)
            if centre is not None and not centre.is_empty
            else (points[0][0] if points else 117.0)
        )
        crs = metric_crs(lon)
    street_m = gpd.GeoSeries(geoms, crs=WGS84).to_crs(crs)
    pts = gpd.GeoSeries(
        gpd.points_from_xy([p[0] for p in points], [p[1] for p in points]), crs=WGS84
    ).to_crs(crs)
    reach_m = (
        shapely.union_all(pts.buffer(radius_m, quad_segs=32).to_numpy())
        if len(pts)
        else shapely.Polygon()
    )
    comm = gpd.GeoSeries(
        gpd.points_from_xy([c[0] for c in communities], [c[1] for c in communities]), crs=WGS84
    ).to_crs(crs)
    comm_in_reach: list[bool] = [bool(x) for x in within_reach(points, communities, radius_m, crs)]
    out: list[StreetCoverage] = []
    gaps_m: list[BaseGeometry] = []
    for (name, _), geom in zip(streets, street_m, strict=True):
        inside = shapely.intersection(geom, reach_m)
        gap = shapely.difference(geom, reach_m)
        gaps_m.append(gap)
        area = float(geom.area) / 1e6
        covered = float(inside.area) / 1e6
        in_street = [bool(x) for x in shapely.intersects(geom, pts.to_numpy())] if len(pts) else []
        c_in = [bool(x) for x in shapely.intersects(geom, comm.to_numpy())] if len(comm) else []
        out.append(
            StreetCoverage(
                name=name,
                area_km2=area,
                covered_km2=covered,
                share=min(covered / area, 1.0) if area > 0 else 0.0,
                venues=sum(in_street),
                communities=sum(c_in),
                communities_covered=sum(a and b for a, b in zip(c_in, comm_in_reach, strict=True)),
                gap=shapely.Polygon(),  # filled below, after one reprojection of all gaps
            )
        )
    gaps = list(gpd.GeoSeries(gaps_m, crs=crs).to_crs(WGS84)) if gaps_m else []
    out = [StreetCoverage(**{**s.__dict__, "gap": g}) for s, g in zip(out, gaps, strict=True)]
    reach = gpd.GeoSeries([reach_m], crs=crs).to_crs(WGS84).iloc[0]
    n_comm = len(comm)
    n_cov = sum(comm_in_reach)
    return Coverage(
        crs=crs,
        radius_m=float(radius_m),
        streets=out,
        reach=reach,
        area_km2=sum(s.area_km2 for s in out),
        covered_km2=sum(s.covered_km2 for s in out),
        communities=n_comm,
        communities_covered=n_cov,
    )
