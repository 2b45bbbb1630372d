"""Community points within reach (mapservice.core.coverage.within_reach): the spatial index
gives exactly the answer of measuring every pair on the ellipsoid, including at the edge and
far from the projection's central meridian, and the dashboard's coverage counts with it."""

from __future__ import annotations

import random

import pytest
from shapely.geometry import box

from mapservice.core.coverage import GEOD, coverage, within_reach


def brute_force(points, targets, radius_m):
    return [any(GEOD.inv(tx, ty, px, py)[2] <= radius_m for px, py in points) for tx, ty in targets]


@pytest.mark.parametrize(
    ("centre", "radius_m"),
    [
        ((119.45, 32.18), 1000.0),  # Runzhou, 0.55° from EPSG:4549's meridian
        ((121.45, 31.23), 1000.0),  # Shanghai, 1.45° from it (scale 1.0002)
        ((87.6, 43.8), 2500.0),  # Ürümqi, EPSG:4538
    ],
)
def test_same_answer_as_every_pair_on_the_ellipsoid(centre, radius_m):
    rnd = random.Random(5)
    lon, lat = centre
    homes = [(lon + rnd.uniform(-0.1, 0.1), lat + rnd.uniform(-0.08, 0.08)) for _ in range(40)]
    targets = [(lon + rnd.uniform(-0.12, 0.12), lat + rnd.uniform(-0.1, 0.1)) for _ in range(1500)]
    # ... and points placed on either side of the edge, a few centimetres off, in all directions.
    for i, (hx, hy) in enumerate(homes[:20]):
        az = 18.0 * i
        for d in (radius_m - 0.03, radius_m + 0.03):
            x, y, _ = GEOD.fwd(hx, hy, az, d)
            targets.append((float(x), float(y)))
    got = within_reach(homes, targets, radius_m)
    expected = brute_force(homes, targets, radius_m)
    assert [bool(x) for x in got] == expected
    assert 0 < sum(expected) < len(targets)


def test_the_edge_is_measured_on_the_ellipsoid_not_in_the_projection():
    """Far from the zone's central meridian a kilometre on the ground is ~1000.2 m in the
    projection: a point 999.9 m away is within 1 km, one 1000.1 m away is not."""
    home = (121.45, 31.23)
    inside = GEOD.fwd(*home, 90.0, 999.9)[:2]
    outside = GEOD.fwd(*home, 90.0, 1000.1)[:2]
    got = within_reach([home], [inside, outside], 1000.0)
    assert [bool(x) for x in got] == [True, False]


def test_nothing_to_reach_and_bad_radius():
    assert list(within_reach([], [(119.4, 32.2)], 1000.0)) == [False]
    assert list(within_reach([(119.4, 32.2)], [], 1000.0)) == []
    with pytest.raises(ValueError):
        within_reach([(119.4, 32.2)], [(119.4, 32.2)], 0)


def test_coverage_counts_communities_within_reach():
    rnd = random.Random(9)
    streets = [
        ("西街道", box(119.38, 32.15, 119.43, 32.22)),
        ("东街道", box(119.43, 32.15, 119.48, 32.22)),
    ]
    homes = [(rnd.uniform(119.38, 119.48), rnd.uniform(32.15, 32.22)) for _ in range(6)]
    comm = [(rnd.uniform(119.38, 119.48), rnd.uniform(32.15, 32.22)) for _ in range(400)]
    cov = coverage(homes, streets, 1000.0, comm)
    expected = brute_force(homes, comm, 1000.0)
    assert cov.communities == 400
    assert cov.communities_covered == sum(expected)
    assert 0 < cov.communities_covered < 400
    west, east = cov.streets
    in_west = [x < 119.43 for x, _ in comm]
    assert west.communities_covered == sum(e and w for e, w in zip(expected, in_west, strict=True))
    assert west.communities_covered + east.communities_covered == cov.communities_covered
