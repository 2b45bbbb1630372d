"""What the one map's activity layer shows (issue 20, "on the map"): the upcoming activities
the user sees, under the list's filters (month, kind, open for sign-up), and the committee's
pairings (结对挂钩) in force today — lines from a unit to its partner, the paired streets
shaded. Both as GeoJSON in the base map's coordinate system, every text a property (the
layer's script puts them into the DOM as text).

Activities are members' information (``policy.activities_seen_by``), pairings too
(``policy.can_see_pairings``): a visitor gets empty collections.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mapservice.booking.rows import aware
from mapservice.core.i18n import _
from mapservice.core.mapdata import convert_geometry
from mapservice.core.vocab import ActivityKind, ActivityStatus
from mapservice.models import Area, User, Venue
from mapservice.operations.activities import list_activities
from mapservice.operations.pairings import list_pairings
from mapservice.operations.signups import committee_tz, counts, shown_status
from mapservice.policy.plans import can_see_pairings

#: A colour per activity kind (markers, legend, the filter's swatches).
KIND_COLORS = {
    "reading_club": "#6a1b9a",
    "social_mixer": "#d81b60",
    "salon": "#ef6c00",
    "volunteer": "#2e7d32",
    "sports": "#1565c0",
    "study": "#00838f",
    "other": "#546e7a",
}
#: Statuses an upcoming activity on the map may have (drafts, cancelled and done ones are not
#: on the map).
SHOWN = (ActivityStatus.OPEN.value, ActivityStatus.FULL.value, ActivityStatus.CLOSED.value)


@dataclass(frozen=True)
class ActivityFilter:
    """The layer's filter: ``month`` "YYYY-MM" (committee time) or "", a kind key or "",
    only those open for sign-up."""

    month: str = ""
    kind: str = ""
    open_only: bool = False


def kinds(lang: str) -> list[dict[str, str]]:
    """The kinds as the layer's filter and legend show them: key, label, colour."""
    return [
        {"key": k.value, "label": k.label(lang), "color": KIND_COLORS[k.value]}
        for k in ActivityKind
    ]


def month_choices(today: date, count: int = 6) -> list[str]:
    """This month and the next ``count - 1`` as "YYYY-MM" (the layer's month filter)."""
    out = []
    year, month = today.year, today.month
    for _i in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _feature(geometry: dict[str, Any], crs: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": convert_geometry(geometry, crs),
        "properties": properties,
    }


def _collection(features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def activity_features(
    session: Session,
    actor: User | None,
    flt: ActivityFilter,
    *,
    crs: str = "wgs84",
    lang: str = "zh",
    url: str = "/activities/",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The upcoming activities ``actor`` sees under ``flt`` as points (a site's drawn area
    as the ``area`` property, converted as the point is)."""
    now = aware(now)
    if actor is None:
        return _collection([])
    found = [
        a
        for a in list_activities(
            session, actor, month=flt.month, kind=flt.kind, open_only=flt.open_only, now=now
        )
        if a.end_at > now and shown_status(a, now) in SHOWN
    ]
    tz = committee_tz(session, actor.committee_id)
    counted = counts(session, [a.id for a in found])
    features = []
    for a in found:
        if a.venue is not None:
            lon, lat, place = a.venue.lon, a.venue.lat, a.venue.name
        elif a.site_lon is not None and a.site_lat is not None:
            lon, lat, place = a.site_lon, a.site_lat, a.site_name or _("Site")
        else:  # pragma: no cover - the place constraint forbids it
            continue
        status = shown_status(a, now)
        confirmed, waiting = counted.get(a.id, (0, 0))
        start, end = a.start_at.astimezone(tz), a.end_at.astimezone(tz)
        area = json.loads(a.site_area) if a.site_area else None
        features.append(
            _feature(
                {"type": "Point", "coordinates": [lon, lat]},
                crs,
                id=a.id,
                title=a.title,
                kind=a.kind,
                kindLabel=ActivityKind(a.kind).label(lang),
                unit=a.lead_unit.name,
                place=place,
                street=a.site_street,
                when=f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}",
                month=f"{start:%Y-%m}",
                status=status,
                statusLabel=ActivityStatus(status).label(lang),
                open=status == ActivityStatus.OPEN.value and now < a.signup_deadline,
                confirmed=confirmed,
                waitlisted=waiting,
                capacity=a.capacity,
                url=f"{url}{a.id}",
                area=convert_geometry(area, crs) if area else None,
            )
        )
    return _collection(features)


def _unit_points(session: Session, committee_id: int) -> dict[int, tuple[float, float]]:
    """Where a unit is drawn: the mean of its published venues' points (a unit has no
    address of its own); units with none are not drawn."""
    rows = session.execute(
        select(Venue.unit_id, func.avg(Venue.lon), func.avg(Venue.lat))
        .where(
            Venue.committee_id == committee_id,
            Venue.published.is_(True),
            Venue.retired.is_(False),
        )
        .group_by(Venue.unit_id)
    )
    return {uid: (float(lon), float(lat)) for uid, lon, lat in rows}


def pairing_features(
    session: Session, actor: User | None, *, today: date, crs: str = "wgs84"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pairings in force ``today``: (lines from each unit to its partner — a street's
    inner point or the partner unit's —, the paired streets as shaded areas with the names of
    the units paired with each)."""
    if actor is None or not can_see_pairings(actor, actor.committee_id):
        return _collection([]), _collection([])
    rows = list_pairings(session, actor, today, current_only=True)
    points = _unit_points(session, actor.committee_id)
    area_ids = {r.pairing.partner_area_id for r in rows if r.pairing.partner_area_id}
    shapes = {
        a.id: (a.name, json.loads(a.geometry))
        for a in session.scalars(select(Area).where(Area.id.in_(area_ids)))
    }
    units_of_area: dict[int, list[str]] = defaultdict(list)
    lines = []
    for r in rows:
        p = r.pairing
        start = points.get(p.unit_id)
        if p.partner_area_id is not None:
            units_of_area[p.partner_area_id].append(p.unit.name)
            inner = shape(shapes[p.partner_area_id][1]).representative_point()
            end: tuple[float, float] | None = (inner.x, inner.y)
        else:
            end = points.get(p.partner_unit_id or 0)
        if start is None or end is None:
            continue
        lines.append(
            _feature(
                {"type": "LineString", "coordinates": [list(start), list(end)]},
                crs,
                id=p.id,
                unit=p.unit.name,
                partner=p.partner_name,
                kind=r.kind,
                since=p.start_on.isoformat(),
            )
        )
    areas = [
        _feature(shapes[aid][1], crs, id=aid, name=shapes[aid][0], units=names)
        for aid, names in sorted(units_of_area.items())
    ]
    return _collection(lines), _collection(areas)


def layer_data(
    session: Session,
    actor: User | None,
    flt: ActivityFilter,
    *,
    crs: str = "wgs84",
    lang: str = "zh",
    url: str = "/activities/",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The activity layer's answer: ``activities``, ``pairings`` (lines) and ``paired``
    (shaded streets), all FeatureCollections."""
    now = aware(now)
    today = now.date()
    if actor is not None:
        today = now.astimezone(committee_tz(session, actor.committee_id)).date()
    lines, paired = pairing_features(session, actor, today=today, crs=crs)
    return {
        "activities": activity_features(session, actor, flt, crs=crs, lang=lang, url=url, now=now),
        "pairings": lines,
        "paired": paired,
    }


__all__ = [
    "KIND_COLORS",
    "SHOWN",
    "ActivityFilter",
    "activity_features",
    "kinds",
    "layer_data",
    "month_choices",
    "pairing_features",
]
