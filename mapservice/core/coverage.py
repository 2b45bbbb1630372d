"""Coverage analysis (覆盖率): which parts of each street lie within reach of a venue type.

Reach is the union of discs of ``radius_m`` metres around the venues, drawn in a metric CRS
(the CGCS2000 Gauss-Krüger zone nearest the region, :func:`mapservice.core.geo.metric_crs`),
so a kilometre is a kilometre wherever the district lies. A street's coverage is the share of
its area inside reach; when community points are given, also the share of them within reach.
The gaps (street area out of reach) come back as WGS-84 geometry to draw. Pure: no Flask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

from mapservice.core.geo import WGS84, metric_crs

__all__ = ["Coverage", "StreetCoverage", "coverage"]


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


def coverage(
    points: Sequence[tuple[float, float]],
    streets: Sequence[tuple[str, BaseGeometry]],
    radius_m: float = 1000.0,
    communities: Sequence[tuple[float, float]] = (),
    crs: str | None = None,
) -> Coverage:
    """Coverage of ``streets`` (name, WGS-84 polygon) by discs of ``radius_m`` around
    ``points`` (WGS-84 lon, lat); ``communities`` are optional (lon, lat) points counted
    as covered when within reach. ``crs`` overrides the metric CRS (chosen from the
    streets' centre otherwise)."""
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
    comm_in_reach: list[bool] = (
        [bool(x) for x in shapely.intersects(reach_m, comm.to_numpy())] if len(comm) else []
    )
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
