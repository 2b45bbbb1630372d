"""Loading what the one map shows, within what the user may see.

Venues come out as plain :class:`~mapservice.core.mapfilter.VenueFacts` read with column
queries (no ORM objects: 10,000 venues load in tens of milliseconds), scoped by
:func:`mapservice.policy.venues_seen_by` and restricted to one committee. The loaders the maps
themselves need live in :mod:`mapservice.maps.loading` (a notebook uses them without the app);
this module names them for the views and adds the page's own queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, selectinload

from mapservice.core.mapfilter import VenueFacts
from mapservice.core.opening import is_open_throughout
from mapservice.maps.loading import (
    engine_free_check,
    filter_choices,
    load_areas,
    load_facts,
    load_one,
)
from mapservice.models import Closure, Committee, OpeningHours, Unit, User, Venue
from mapservice.policy import venues_seen_by

__all__ = [
    "VenueCounts",
    "data_stamp",
    "engine_free_check",
    "filter_choices",
    "load_areas",
    "load_facts",
    "load_one",
    "load_venues",
    "map_committee",
    "venue_counts",
    "window_availability",
]


def map_committee(session: Session, user: User | None, slug: str = "") -> Committee | None:
    """The committee whose venues a page shows: the one named by ``slug`` (for anyone: a
    logged-in user may look at another committee's public venues), else the user's own, else
    the first one created. None when ``slug`` names no committee, or there is none."""
    if slug:
        return session.scalars(select(Committee).where(Committee.slug == slug)).one_or_none()
    if user is not None:
        return session.get(Committee, user.committee_id)
    return session.scalars(select(Committee).order_by(Committee.id).limit(1)).first()


def load_venues(session: Session, ids: Sequence[int]) -> list[Venue]:
    """Full venue objects for downloads, in the order of ``ids``."""
    if not ids:
        return []
    found = {
        v.id: v
        for v in session.scalars(
            select(Venue)
            .where(Venue.id.in_(list(ids)))
            .options(
                selectinload(Venue.unit), selectinload(Venue.street), selectinload(Venue.hours)
            )
        )
    }
    return [found[i] for i in ids if i in found]


def data_stamp(session: Session, committee: Committee) -> tuple[Any, ...]:
    """A value that changes whenever a venue, its hours or closures, or a unit of the
    committee is added, removed or edited (edits bump ``updated_at`` or replace rows), so a
    cached map answer can be reused while it is unchanged."""
    venues = select(func.count(Venue.id), func.max(Venue.updated_at), func.max(Venue.id)).where(
        Venue.committee_id == committee.id
    )
    in_committee = Venue.committee_id == committee.id
    hours = (
        select(func.count(OpeningHours.id), func.max(OpeningHours.id))
        .join(Venue, OpeningHours.venue_id == Venue.id)
        .where(in_committee)
    )
    closures = (
        select(func.count(Closure.id), func.max(Closure.id))
        .join(Venue, Closure.venue_id == Venue.id)
        .where(in_committee)
    )
    units = select(func.count(Unit.id), func.max(Unit.id)).where(Unit.committee_id == committee.id)
    return (
        *session.execute(venues).one(),
        *session.execute(hours).one(),
        *session.execute(closures).one(),
        *session.execute(units).one(),
    )


def window_availability(
    session: Session, venue: VenueFacts, start: datetime, end: datetime, tz: ZoneInfo, now: datetime
) -> tuple[bool, int]:
    """Whether ``venue`` is open for the whole of ``[start, end)`` (its hours, and its closures
    read here) and how many of its capacity units are free throughout (pending holds and
    confirmed bookings count): what a popup says about the map's "free between" window, by
    the same rules as :func:`engine_free_check`."""
    from mapservice.booking import capacity

    closures = [
        (a, b)
        for a, b in session.execute(
            select(Closure.start_at, Closure.end_at).where(
                Closure.venue_id == venue.id, Closure.start_at < end, Closure.end_at > start
            )
        )
    ]
    if not is_open_throughout(venue.ranges, closures, start, end, tz):
        return False, 0
    holds = capacity.held(session, [venue.id], start, end, now)
    return True, len(capacity.free_unit_numbers(venue.capacity_units, holds, start, end))


@dataclass(frozen=True)
class VenueCounts:
    """How the venues a committee's staff see divide up, so that the list, the map and the
    dashboard can be reconciled. Of the venues not retired (``shown``), the ``public`` ones
    are what anyone sees; staff also see the ``unpublished`` ones and the published ones of
    units ``not_admitted`` (applying or suspended). The dashboard's statistics count the
    public ones (``in_stats``; of the secretary's own unit, for a unit secretary: a venue of
    a unit not admitted counts in no figure). ``retired`` ones
    are listed only on request and never on the map."""

    shown: int
    public: int
    unpublished: int
    not_admitted: int
    in_stats: int
    retired: int


def venue_counts(session: Session, user: User, committee: Committee) -> VenueCounts:
    """:class:`VenueCounts` of ``committee`` as ``user``, one of its staff, sees them (a
    unit secretary: the public venues and its own unit's others)."""
    admitted = Unit.status == "active"
    live = Venue.retired.is_(False)
    published = and_(live, Venue.published.is_(True))
    public = and_(published, admitted)
    in_stats = public if user.is_admin else and_(public, Venue.unit_id == user.unit_id)

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    row = session.execute(
        select(
            n(live),
            n(public),
            n(and_(live, Venue.published.is_(False))),
            n(and_(published, ~admitted)),
            n(in_stats),
            n(Venue.retired.is_(True)),
        )
        .join(Unit, Venue.unit_id == Unit.id)
        .where(Venue.committee_id == committee.id, venues_seen_by(user))
    ).one()
    return VenueCounts(*(int(x) for x in row))
