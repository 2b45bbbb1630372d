"""The one map's filters: which venues match "badminton, near here, free Saturday 9–11".

Pure: takes plain values (query parameters as strings, venues as :class:`VenueFacts`) and
returns plain values, so the web edge, the CLI, a benchmark or a notebook can use it alike.
"Free between FROM and TO" is answered by a pluggable predicate (:data:`FreeCheck`); until the
booking engine exists the default asks only opening hours and closures
(:func:`mapservice.core.opening.is_open_throughout`). Distances are great-circle (haversine on
the WGS-84 mean radius), never degrees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from mapservice.core.dates import parse_instant
from mapservice.core.geo import haversine_km
from mapservice.core.hours import OpeningRange
from mapservice.core.i18n import _
from mapservice.core.ids import as_id
from mapservice.core.opening import Interval, is_open_throughout
from mapservice.core.vocab import VenueType

__all__ = [
    "FreeCheck",
    "MapFilter",
    "Match",
    "VenueFacts",
    "open_hours_check",
    "parse_filter",
    "select_venues",
]

MAX_RADIUS_KM = 500.0
MAX_QUERY_LEN = 100
#: Longest "free between" window answered (the engine will have its own horizon).
MAX_FREE_DAYS = 31


@dataclass(frozen=True)
class VenueFacts:
    """What the map knows of one venue: plain values, WGS-84 coordinates."""

    id: int
    name: str
    unit_id: int
    unit_name: str
    type: str
    lon: float
    lat: float
    street_id: int | None = None
    capacity_units: int = 1
    max_headcount: int | None = None
    address: str = ""
    facilities: str = ""
    phone: str = ""
    ranges: tuple[OpeningRange, ...] = ()
    closures: tuple[Interval, ...] = ()


#: ``check(venue, start, end) -> bool``: may the venue be booked for the whole of [start, end)?
FreeCheck = Callable[[VenueFacts, datetime, datetime], bool]


@dataclass(frozen=True)
class MapFilter:
    """A validated set of map filters; empty fields do not filter."""

    types: frozenset[str] = frozenset()
    unit_ids: frozenset[int] = frozenset()
    street_ids: frozenset[int] = frozenset()
    min_units: int | None = None
    min_headcount: int | None = None
    near: tuple[float, float] | None = None  # (lon, lat), WGS-84
    radius_km: float | None = None
    q: str = ""
    free_from: datetime | None = None
    free_to: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not self.query_pairs()

    def query_pairs(self) -> list[tuple[str, str]]:
        """The filter as canonical URL parameters (what :func:`parse_filter` reads back)."""
        pairs: list[tuple[str, str]] = [("types", t) for t in sorted(self.types)]
        pairs += [("unit", str(u)) for u in sorted(self.unit_ids)]
        pairs += [("street", str(s)) for s in sorted(self.street_ids)]
        if self.min_units is not None:
            pairs.append(("min_units", str(self.min_units)))
        if self.min_headcount is not None:
            pairs.append(("min_headcount", str(self.min_headcount)))
        if self.near is not None:
            pairs.append(("near", f"{self.near[0]:.6f},{self.near[1]:.6f}"))
            if self.radius_km is not None:
                pairs.append(("radius_km", f"{self.radius_km:g}"))
        if self.q:
            pairs.append(("q", self.q))
        if self.free_from is not None and self.free_to is not None:
            pairs.append(("free_from", self.free_from.strftime("%Y-%m-%dT%H:%M")))
            pairs.append(("free_to", self.free_to.strftime("%Y-%m-%dT%H:%M")))
        return pairs


@dataclass(frozen=True)
class Match:
    """A venue that passed the filter, with its distance from ``near`` (km) if one was given."""

    venue: VenueFacts
    distance_km: float | None = None


@dataclass
class _Parsed:
    values: dict[str, object] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _all(args: Mapping[str, Sequence[str]], key: str) -> list[str]:
    """Every non-blank value of ``key``; comma lists are split (``types=gym,yoga_dance``)."""
    out: list[str] = []
    for raw in args.get(key, ()):
        out += [p.strip() for p in str(raw).split(",") if p.strip()]
    return out


def _one(args: Mapping[str, Sequence[str]], key: str) -> str:
    values = [str(v).strip() for v in args.get(key, ()) if str(v).strip()]
    return values[0] if values else ""


def _ids(values: list[str], key: str, p: _Parsed) -> frozenset[int]:
    ids = [as_id(v) for v in values]
    if any(i is None for i in ids):
        p.errors[key] = _("'%(value)s' is not a valid choice.", value=values[0][:40])
        return frozenset()
    return frozenset(i for i in ids if i is not None)


def _positive_int(text: str, key: str, p: _Parsed) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 100000:
        p.errors[key] = _("Enter a whole number of at least 1.")
        return None
    return int(text)


def _local(text: str, tz: ZoneInfo, key: str, p: _Parsed) -> datetime | None:
    if not text:
        return None
    try:
        naive = parse_instant(text.replace(" ", "T"))
    except ValueError:
        p.errors[key] = _("Enter a date and time like 2025-06-07T09:00.")
        return None
    if naive.tzinfo is not None:
        return naive.astimezone(tz)
    return naive.replace(tzinfo=tz)


def parse_filter(
    args: Mapping[str, Sequence[str]], tz: ZoneInfo
) -> tuple[MapFilter, dict[str, str]]:
    """Read the map's URL parameters. Returns the filter built from every valid parameter and a
    dict of translated messages for the invalid ones (which are left out of the filter).

    ``args`` maps a parameter to its values (``request.args.to_dict(flat=False)``). Times in
    ``free_from``/``free_to`` are local wall-clock times in ``tz`` unless they carry an offset.
    """
    p = _Parsed()
    known = {t.value for t in VenueType}
    types = _all(args, "types") + _all(args, "type")
    bad = [t for t in types if t not in known]
    if bad:
        p.errors["types"] = _("'%(value)s' is not a valid choice.", value=bad[0])
    units = _ids(_all(args, "unit"), "unit", p)
    streets = _ids(_all(args, "street"), "street", p)
    min_units = _positive_int(_one(args, "min_units"), "min_units", p)
    min_headcount = _positive_int(_one(args, "min_headcount"), "min_headcount", p)

    near: tuple[float, float] | None = None
    radius: float | None = None
    near_text = _one(args, "near")
    if near_text:
        try:
            lon_s, lat_s = near_text.split(",")
            lon, lat = float(lon_s), float(lat_s)
            if not (-180 <= lon <= 180 and -90 <= lat <= 90) or math.isnan(lon + lat):
                raise ValueError
            near = (lon, lat)
        except ValueError:
            p.errors["near"] = _("Give the point as longitude,latitude (e.g. 119.43,32.20).")
    radius_text = _one(args, "radius_km")
    if radius_text:
        try:
            radius = float(radius_text)
            if not 0 < radius <= MAX_RADIUS_KM:
                raise ValueError
        except ValueError:
            radius = None
            p.errors["radius_km"] = _(
                "The radius must be a number of kilometres between 0 and %(max)s.",
                max=int(MAX_RADIUS_KM),
            )
        if radius is not None and near is None and "near" not in p.errors:
            p.errors["near"] = _("Choose a point for the radius (near me, or click the map).")
            radius = None

    q = _one(args, "q")[:MAX_QUERY_LEN]
    free_from = _local(_one(args, "free_from"), tz, "free_from", p)
    free_to = _local(_one(args, "free_to"), tz, "free_to", p)
    if (free_from is None) != (free_to is None) and not {"free_from", "free_to"} & p.errors.keys():
        p.errors["free_to"] = _("Give both the start and the end of the time you need.")
        free_from = free_to = None
    elif free_from is not None and free_to is not None:
        if free_to <= free_from:
            p.errors["free_to"] = _("The end must be after the start.")
            free_from = free_to = None
        elif (free_to - free_from).days >= MAX_FREE_DAYS:
            p.errors["free_to"] = _("Ask for at most %(days)s days at once.", days=MAX_FREE_DAYS)
            free_from = free_to = None

    flt = MapFilter(
        types=frozenset(t for t in types if t in known),
        unit_ids=units,
        street_ids=streets,
        min_units=min_units,
        min_headcount=min_headcount,
        near=near,
        radius_km=radius if near is not None else None,
        q=q,
        free_from=free_from,
        free_to=free_to,
    )
    return flt, p.errors


def open_hours_check(tz: ZoneInfo) -> FreeCheck:
    """The stand-in for the booking engine: free = open for the whole window, no closure."""

    def check(venue: VenueFacts, start: datetime, end: datetime) -> bool:
        return is_open_throughout(venue.ranges, venue.closures, start, end, tz)

    return check


def _matches_text(venue: VenueFacts, needle: str) -> bool:
    return any(
        needle in text.casefold()
        for text in (venue.name, venue.unit_name, venue.address, venue.facilities)
    )


def select_venues(
    venues: Sequence[VenueFacts],
    flt: MapFilter,
    tz: ZoneInfo,
    free_check: FreeCheck | None = None,
) -> list[Match]:
    """The venues passing every filter. Sorted by distance when ``near`` is set, else by unit
    and name. ``free_check`` decides "free between" (default: :func:`open_hours_check`); it is
    called last, on venues that passed everything else, as it is the expensive one."""
    check = free_check or open_hours_check(tz)
    needle = flt.q.casefold()
    out: list[Match] = []
    for v in venues:
        if flt.types and v.type not in flt.types:
            continue
        if flt.unit_ids and v.unit_id not in flt.unit_ids:
            continue
        if flt.street_ids and v.street_id not in flt.street_ids:
            continue
        if flt.min_units is not None and v.capacity_units < flt.min_units:
            continue
        if flt.min_headcount is not None and (v.max_headcount or 0) < flt.min_headcount:
            continue
        if needle and not _matches_text(v, needle):
            continue
        distance: float | None = None
        if flt.near is not None:
            distance = haversine_km(flt.near[0], flt.near[1], v.lon, v.lat)
            if flt.radius_km is not None and distance > flt.radius_km:
                continue
        if flt.free_from is not None and flt.free_to is not None:
            if not check(v, flt.free_from, flt.free_to):
                continue
        out.append(Match(v, distance))
    if flt.near is not None:
        out.sort(key=lambda m: (m.distance_km or 0.0, m.venue.id))
    else:
        out.sort(key=lambda m: (m.venue.unit_name, m.venue.name, m.venue.id))
    return out
