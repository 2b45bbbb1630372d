"""What a refused request is offered instead: the nearest free windows of the same length at
the venue and the nearest similar venues free for the window, every proposal passing every
rule. Reads only, and never under the venue's lock: a refusal (:class:`BookingConflict`)
carries :func:`suggest`, and whoever answers it computes the alternatives once, after ending
the transaction that held the lock (``BookingConflict.resolve``), so they cost the other
bookers of the venue nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, selectinload

from mapservice import policy
from mapservice.booking import capacity
from mapservice.booking.availability import FreeCandidate, free_candidate_ids
from mapservice.booking.loading import quota_used_minutes, venue_rules, venue_tz
from mapservice.booking.prepare import Prepared
from mapservice.booking.results import Alternatives, Occupied, VenueOption
from mapservice.booking.rules import Request, check, week_bounds
from mapservice.core.errors import BookingConflict, Violation
from mapservice.core.geo import haversine_m
from mapservice.core.i18n import _
from mapservice.core.opening import day_open_intervals, local_instant
from mapservice.models import Group, User, Venue
from mapservice.policy import can_group_book_venue, can_run_venue, group_is_active

SEARCH_DAYS = 7
NEAREST_VENUES = 40


class Refused(NamedTuple):
    """A refused request, as the search for its alternatives reads it."""

    actor: User
    venue: Venue
    group: Group
    start: datetime
    end: datetime
    units: int
    now: datetime


def _violations(
    session: Session,
    actor: User | None,
    venue: Venue,
    group: Group,
    s: datetime,
    e: datetime,
    units: int,
    now: datetime,
    quota_cache: dict[Any, Any],
) -> list[Violation]:
    """The rules ``group``'s request at ``venue`` breaks. ``quota_cache`` keeps, across the
    calls of one search, each venue's rules (by id) and the group's used quota (by venue and
    week)."""
    rules = quota_cache.get(venue.id)
    if rules is None:  # built once per venue: hours and closures turned into rules
        rules = quota_cache[venue.id] = venue_rules(venue)
    week = week_bounds(s, rules.tz)[0]
    key = (venue.id, week)
    if key not in quota_cache:
        # Only a venue with a weekly quota needs what the group used (a query per venue).
        quota_cache[key] = (
            quota_used_minutes(session, venue, group.id, s, now)
            if venue.weekly_quota_hours is not None
            else 0.0
        )
    return check(
        Request(s, e, units),
        rules,
        now,
        may_book=can_group_book_venue(group, venue),
        group_active=group_is_active(group),
        quota_used_minutes=quota_cache[key],
        exempt=can_run_venue(actor, venue),
    )


def alternatives(
    session: Session, refused: Refused, *, max_windows: int = 5, max_venues: int = 5
) -> Alternatives:
    """The nearest free windows of the same length at this venue (same day first, nearest in
    time; then the following days), and the nearest venues of the same type with enough
    capacity free for the requested window (by distance). Every proposal passes every rule."""
    actor, venue, group, start, end, units, now = refused
    tz = venue_tz(venue)
    length = end - start
    slot = timedelta(minutes=venue.slot_minutes)
    first_day = start.astimezone(tz).date()
    horizon_start = local_instant(first_day, 0, tz)
    horizon_end = local_instant(first_day + timedelta(days=SEARCH_DAYS + 1), 0, tz) + length
    holds = capacity.held(session, [venue.id], horizon_start, horizon_end, now)
    quota_cache: dict[Any, Any] = {}  # (venue, week) -> quota used; venue -> its rules
    windows: list[tuple[datetime, datetime]] = []
    for offset in range(SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        opens = day_open_intervals(
            venue.opening_ranges, [(c.start_at, c.end_at) for c in venue.closures], day, tz
        )
        candidates: list[datetime] = []
        for a, b in opens:
            s = a
            while s + length <= b:
                candidates.append(s)
                s += slot
        if offset == 0:
            candidates.sort(key=lambda s: (abs(s - start), s))
        for s in candidates:
            e = s + length
            if s == start:
                continue
            if len(capacity.free_unit_numbers(venue.capacity_units, holds, s, e)) < units:
                continue
            if _violations(session, actor, venue, group, s, e, units, now, quota_cache):
                continue
            windows.append((s, e))
            if len(windows) >= max_windows:
                break
        if len(windows) >= max_windows:
            break
    return Alternatives(
        windows=windows,
        venues=similar_free_venues(session, refused, limit=max_venues),
    )


def similar_free_venues(session: Session, refused: Refused, *, limit: int = 5) -> list[VenueOption]:
    """Nearest venues of the same type, enough capacity, free and bookable by the group."""
    actor, venue, group, start, end, units, now = refused
    # Rank on bare coordinates first and load only the nearest as objects: a city has
    # thousands of venues of a type, and building each with its hours costs far more than
    # ranking it (10,000 venues: ~400 ms → a few ms; bench/booking_bench.py, #3).
    located = list(
        session.execute(
            select(Venue.id, Venue.lon, Venue.lat, Venue.capacity_units)
            .where(
                Venue.committee_id == venue.committee_id,
                Venue.type == venue.type,
                Venue.id != venue.id,
                # Public venues only (published, not retired, of an admitted unit): a link
                # to one the group's people could not open would be a dead end.
                policy.venues_public(),
                Venue.capacity_units >= units,
            )
            .order_by(Venue.id)
        )
    )
    located.sort(key=lambda r: haversine_m(venue.lon, venue.lat, r.lon, r.lat))
    nearest = located[:NEAREST_VENUES]
    # Which of them are open with the units free: bare rows, two queries. Only those are
    # loaded as objects, nearest first, for the rules that need them (who may book, notice,
    # quota): at a busy hour most of the nearest are taken, and loading each with its hours
    # cost more than the rest of a refusal.
    timezone = venue_tz(venue).key
    free = free_candidate_ids(
        session,
        [FreeCandidate(r.id, r.capacity_units, timezone) for r in nearest],
        start,
        end,
        units,
        now,
    )
    ranked = [r.id for r in nearest if r.id in free]
    quota_cache: dict[Any, Any] = {}
    out: list[VenueOption] = []
    for i in range(0, len(ranked), limit):
        batch = ranked[i : i + limit]
        loaded = {
            v.id: v
            for v in session.scalars(
                select(Venue)
                .where(Venue.id.in_(batch))
                .options(
                    selectinload(Venue.hours),
                    selectinload(Venue.closures),
                    selectinload(Venue.unit),
                )
            )
        }
        for vid in batch:
            v = loaded[vid]
            if _violations(session, actor, v, group, start, end, units, now, quota_cache):
                continue
            out.append(
                VenueOption(
                    v.id,
                    v.name,
                    v.unit.name,
                    round(haversine_m(venue.lon, venue.lat, v.lon, v.lat)),
                )
            )
            if len(out) >= limit:
                return out
    return out


def suggest(
    actor_id: int,
    venue_id: int,
    group_id: int,
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
    session: Session,
) -> Alternatives:
    """The alternatives for a refused request, read with ``session`` (a refusal carries this
    with its request bound: ``functools.partial``)."""
    actor = session.get(User, actor_id)
    venue = session.get(Venue, venue_id)
    group = session.get(Group, group_id)
    if actor is None or venue is None or group is None:
        return Alternatives()
    return alternatives(session, Refused(actor, venue, group, start, end, units, now))


_GROUP_NAMES = select(Group.id, Group.name).where(Group.id.in_(bindparam("ids", expanding=True)))


def refusal(
    session: Session,
    p: Prepared,
    holds: list[capacity.Held],
    free: int,
    with_alternatives: bool,
) -> BookingConflict:
    """The refusal of ``p`` for want of ``free`` units (``holds`` taking the rest): the
    occupied intervals (who, only for those allowed to see) and, instead of the
    alternatives, what they are computed from once the lock is released."""
    occupied: dict[tuple[datetime, datetime, int], set[int]] = {}
    group_of: dict[int, int] = {}
    for h in holds:
        occupied.setdefault((h.start, h.end, h.booking_id), set()).add(h.unit_no)
        group_of[h.booking_id] = h.group_id or 0
    # Names only of the groups the actor may see; the request's own group's is known.
    names = {p.group_id: p.group_name}
    unknown = {g for g in group_of.values() if p.sees_details(g) and g not in names}
    if unknown:
        rows = session.connection().execute(_GROUP_NAMES, {"ids": sorted(unknown)})
        names.update((gid, name) for gid, name in rows)
    conflicts = []
    for (s, e, bid), units in sorted(occupied.items()):
        gid = group_of[bid]
        visible = p.sees_details(gid)
        conflicts.append(
            Occupied(
                s, e, len(units), bid if visible else None, names.get(gid, "") if visible else None
            )
        )
    return BookingConflict(
        _(
            "Not enough free units: %(free)s of %(capacity)s free for the whole time,"
            " %(asked)s asked.",
            free=free,
            capacity=p.rules.capacity_units,
            asked=p.units,
        ),
        conflicts,
        None if with_alternatives else Alternatives(),
        suggest=partial(suggest, p.actor_id, p.venue_id, p.group_id, p.start, p.end, p.units, p.now)
        if with_alternatives
        else None,
    )
