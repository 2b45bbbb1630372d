"""What the engine and the availability search load of a venue: its time zone, the rules a
request is checked against, and the quota a group already holds there."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.booking import capacity
from mapservice.booking.rules import VenueRules, week_bounds
from mapservice.core import venue_spec
from mapservice.core.hours import OpeningRange
from mapservice.models import Booking, Venue
from mapservice.policy import venue_is_open


class RulesSource(Protocol):
    """What :func:`venue_rules_of` reads of a venue: the ORM object, or the booking path's row."""

    @property
    def name(self) -> str: ...
    @property
    def capacity_units(self) -> int: ...
    @property
    def slot_minutes(self) -> int: ...
    @property
    def min_duration_minutes(self) -> int: ...
    @property
    def max_duration_minutes(self) -> int: ...
    @property
    def max_days_ahead(self) -> int: ...
    @property
    def min_notice_minutes(self) -> int: ...
    @property
    def max_headcount(self) -> int | None: ...
    @property
    def weekly_quota_hours(self) -> int | None: ...
    @property
    def published(self) -> bool: ...
    @property
    def retired(self) -> bool: ...
    @property
    def unit_status(self) -> str: ...


def venue_tz(venue: Venue) -> ZoneInfo:
    """The venue's committee's time zone."""
    return ZoneInfo(venue.committee.timezone)


def venue_rules(venue: Venue) -> VenueRules:
    """The rules of a loaded venue (its committee, hours and closures read from it)."""
    return venue_rules_of(
        venue,
        venue_tz(venue),
        venue.opening_ranges,
        tuple((c.start_at, c.end_at, c.reason) for c in venue.closures),
    )


def quota_used_minutes(
    session: Session,
    venue: Venue,
    group_id: int,
    start: datetime,
    now: datetime,
    exclude: int | None = None,
) -> float:
    """Capacity-minutes the group already holds at the venue in the local week of ``start``."""
    return quota_minutes(session, venue.id, venue_tz(venue), group_id, start, now, exclude)


def quota_minutes(
    session: Session,
    venue_id: int,
    tz: ZoneInfo,
    group_id: int,
    start: datetime,
    now: datetime,
    exclude: int | None = None,
) -> float:
    week_start, week_end = week_bounds(start, tz)
    stmt = select(Booking.start_at, Booking.end_at, Booking.units).where(
        Booking.venue_id == venue_id,
        Booking.group_id == group_id,
        Booking.start_at < week_end,
        Booking.end_at > week_start,
        capacity.live_condition(now),
    )
    if exclude is not None:
        stmt = stmt.where(Booking.id != exclude)
    return sum(
        (min(e, week_end) - max(s, week_start)).total_seconds() / 60 * u
        for s, e, u in session.execute(stmt)
    )


def venue_rules_of(
    venue: RulesSource,
    tz: ZoneInfo,
    ranges: list[OpeningRange],
    closures: tuple[tuple[datetime, datetime, str], ...],
) -> VenueRules:
    """The rules a request at ``venue`` is checked against (the ORM venue or the booking
    path's row), with its time zone, opening ranges and closures loaded by the caller."""
    return VenueRules(
        name=venue.name,
        tz=tz,
        **{name: getattr(venue, name) for name in venue_spec.RULE_FIELDS},
        ranges=ranges,
        closures=closures,
        bookable=venue_is_open(venue.published, venue.retired, venue.unit_status),
    )
