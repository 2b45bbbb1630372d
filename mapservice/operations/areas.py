"""Loading district and street polygons for a committee, and re-assigning venue streets."""

from __future__ import annotations

import json

from shapely.geometry import mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core import geo
from mapservice.models import Area, Committee, User, Venue
from mapservice.models.audit import record


def load_areas(
    session: Session, actor: User | None, committee: Committee, areas: list[geo.Area], level: str
) -> int:
    """Replace the committee's areas of ``level`` with ``areas`` (by name; existing ids kept so
    venue links survive), then re-assign every venue's street. Returns the number loaded."""
    existing = {
        a.name: a
        for a in session.scalars(
            select(Area).where(Area.committee_id == committee.id, Area.level == level)
        )
    }
    seen = set()
    for item in areas:
        geom = item.geometry
        area = existing.get(item.name) or Area(
            committee_id=committee.id, level=level, name=item.name
        )
        area.name_en = item.name_en
        area.approximate = item.approximate
        area.geometry = json.dumps(mapping(geom), separators=(",", ":"))
        area.min_lon, area.min_lat, area.max_lon, area.max_lat = geom.bounds
        session.add(area)
        seen.add(item.name)
    for name, area in existing.items():
        if name not in seen:
            session.delete(area)
    session.flush()
    if level == "street":
        assign_venue_streets(session, committee)
    record(
        session,
        actor,
        "areas.load",
        committee,
        committee_id=committee.id,
        level=level,
        count=len(areas),
    )
    return len(areas)


def assign_venue_streets(session: Session, committee: Committee) -> None:
    streets = [
        (a.id, a.shape())
        for a in session.scalars(
            select(Area).where(Area.committee_id == committee.id, Area.level == "street")
        )
    ]
    venues = list(session.scalars(select(Venue).where(Venue.committee_id == committee.id)))
    if not venues:
        return
    keys = (
        geo.assign_streets([(v.lon, v.lat) for v in venues], streets)
        if streets
        else [None] * len(venues)
    )
    for venue, key in zip(venues, keys, strict=True):
        venue.street_id = key
