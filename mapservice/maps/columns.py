"""The popup details as extra columns of the map data, for the file that has no server to ask
(the pages fetch them one venue at a time from ``/map/venues/ID/popup``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mapservice.core import mapdata
from mapservice.core.hours import day_text
from mapservice.core.mapfilter import Match

__all__ = ["columns_with_details"]


def columns_with_details(
    matches: Sequence[Match], weekday: int, crs: str = "wgs84"
) -> dict[str, Any]:
    """:func:`mapservice.core.mapdata.venue_columns` plus, in the same order, ``capacity``,
    ``headcount`` (null when not set), ``today`` (opening hours on ``weekday``, 0 = Monday;
    ``""`` closed), ``facilities``, ``address`` and ``phone``: what a popup shows."""
    out = mapdata.venue_columns(matches, crs)
    venues = [m.venue for m in matches]
    out["capacity"] = [v.capacity_units for v in venues]
    out["headcount"] = [v.max_headcount for v in venues]
    out["today"] = [day_text(list(v.ranges), weekday) for v in venues]
    out["facilities"] = [v.facilities for v in venues]
    out["address"] = [v.address for v in venues]
    out["phone"] = [v.phone for v in venues]
    return out
