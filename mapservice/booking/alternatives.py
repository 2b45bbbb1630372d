"""What a refused request is offered instead: the nearest free windows of the same length at
the venue and the nearest similar venues free for the window, every proposal passing every
rule. Reads only, and never under the venue's lock: a refusal (:class:`BookingConflict`)
carries :func:`suggest` bound to the prepared request (the venue's rules, the group's and the
actor's standing as read with the lock), and whoever answers it computes the alternatives
once, after ending the transaction that held the lock (``BookingConflict.resolve``), reading
only the bookings again — so they cost the other bookers of the venue nothing and are free at
the moment they are computed."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, lazyload, selectinload, undefer

from mapservice import policy
from mapservice.booking import capacity, catalogue
from mapservice.booking.availability import FreeCandidate, free_candidate_ids
from mapservice.booking.loading import quota_minutes, venue_rules_of
from mapservice.booking.prepare import Prepared
from mapservice.booking.results import Alternatives, Occupied, VenueOption
from mapservice.booking.rules import Request, check, week_bounds
from mapservice.core.errors import BookingConflict, Violation
from mapservice.core.geo import EARTH_RADIUS_M, haversine_m
from mapservice.core.i18n import _
from mapservice.core.opening import day_open_intervals, local_instant
from mapservice.models import Group, User, Venue
from mapservice.policy import can_group_book_venue, can_run_venue, group_is_active

SEARCH_DAYS = 7
NEAREST_VENUES = 40


def _violations(
    session: Session,
    actor: User | None,
    venue: Venue,
    group: Group,
    s: datetime,
    e: datetime,
    units: int,
    now: datetime,
    tz: ZoneInfo,
    quota_cache: dict[Any, Any],
) -> list[Violation]:
    """The rules ``group``'s request at another ``venue`` breaks. ``quota_cache`` keeps,
    across the calls of one search, each venue's rules (by id) and the group's used quota (by
    venue and week). ``tz``: the committee's time zone (the refused venue's)."""
    rules = quota_cache.get(venue.id)
    if rules is None:  # built once per venue: hours and closures turned into rules
        closures = tuple((c.start_at, c.end_at, c.reason) for c in venue.closures)
        rules = quota_cache[venue.id] = venue_rules_of(venue, tz, venue.opening_ranges, closures)
    week = week_bounds(s, rules.tz)[0]
    key = (venue.id, week)
    if key not in quota_cache:
        # Only a venue with a weekly quota needs what the group used (a query per venue).
        quota_cache[key] = (
            quota_minutes(session, venue.id, tz, group.id, s, now)
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


def free_windows(
    session: Session, p: Prepared, *, limit: int = 5
) -> list[tuple[datetime, datetime]]:
    """The nearest free windows of the same length at the refused request's venue (same day
    first, nearest in time; then the following days), each passing every rule. The venue's
    rules, the group's standing and the actor's are those ``p`` read (under the lock, or
    checked against what the lock read); only the bookings are read again, now."""
    rules, tz, now = p.rules, p.rules.tz, p.now
    length = p.end - p.start
    slot = timedelta(minutes=rules.slot_minutes)
    first_day = p.start.astimezone(tz).date()
    horizon_start = local_instant(first_day, 0, tz)
    horizon_end = local_instant(first_day + timedelta(days=SEARCH_DAYS + 1), 0, tz) + length
    holds = capacity.held(session, [p.venue_id], horizon_start, horizon_end, now)
    # A moved booking's own units do not count against it, and where it is now is no proposal.
    where_now = {(h.start, h.end) for h in holds if h.booking_id == p.moving}
    if p.moving is not None:
        holds = [h for h in holds if h.booking_id != p.moving]
    closures = [(c[0], c[1]) for c in rules.closures]
    used: dict[datetime, float] = {}  # the group's quota used, by local week

    def breaks(s: datetime, e: datetime) -> bool:
        quota = 0.0
        if p.quota_applies:
            week = week_bounds(s, tz)[0]
            if week not in used:
                used[week] = quota_minutes(session, p.venue_id, tz, p.group_id, s, now, p.moving)
            quota = used[week]
        return bool(
            check(
                Request(s, e, p.units),
                rules,
                now,
                may_book=p.may_book,
                group_active=p.group_active,
                quota_used_minutes=quota,
                exempt=p.owner,
            )
        )

    windows: list[tuple[datetime, datetime]] = []
    for offset in range(SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        candidates: list[datetime] = []
        for a, b in day_open_intervals(rules.ranges, closures, day, tz):
            s = a
            while s + length <= b:
                candidates.append(s)
                s += slot
        if offset == 0:
            candidates.sort(key=lambda s: (abs(s - p.start), s))
        for s in candidates:
            e = s + length
            if s == p.start or (s, e) in where_now:
                continue
            if len(capacity.free_unit_numbers(rules.capacity_units, holds, s, e)) < p.units:
                continue
            if breaks(s, e):
                continue
            windows.append((s, e))
            if len(windows) >= limit:
                return windows
    return windows


class Near(NamedTuple):
    """A venue near the refused one: what the free check and the ranking read."""

    id: int
    lon: float
    lat: float
    capacity_units: int


def nearest_candidates(
    session: Session, venue_id: int, units: int, *, limit: int = NEAREST_VENUES
) -> tuple[tuple[float, float], list[Near]]:
    """The venue's point and the ``limit`` public venues of its type and committee nearest
    to it with at least ``units`` units, nearest first (great-circle distance, then id).
    From the kept venue catalogue (:func:`mapservice.booking.catalogue.current`: the venues
    as this transaction sees them, valid under the database's search epoch token), ranked
    in numpy; from SQL when there is no catalogue to trust (a PostgreSQL transaction that
    changed venues itself)."""
    found = catalogue.current(session)
    here = found.entries.get(venue_id) if found is not None else None
    if found is None or here is None:
        return _nearest_in_sql(session, venue_id, units, limit=limit)
    key = (catalogue.engine_key(session.connection().engine), found.token)
    pool = _pool(found, key, here.type, here.committee_id)
    keep = np.flatnonzero((pool.ids != venue_id) & (pool.capacity >= units))
    if not len(keep):
        return (here.lon, here.lat), []
    lon0, lat0 = math.radians(here.lon), math.radians(here.lat)
    lats = pool.lats[keep]
    h = (
        np.sin((lats - lat0) / 2) ** 2
        + math.cos(lat0) * np.cos(lats) * np.sin((pool.lons[keep] - lon0) / 2) ** 2
    )
    dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    order = keep[np.lexsort((pool.ids[keep], dist))[:limit]]
    return (here.lon, here.lat), [pool.near[i] for i in order.tolist()]


class _Pool(NamedTuple):
    """The public venues of one type and committee of a kept catalogue, as arrays."""

    near: list[Near]
    ids: np.ndarray[Any, np.dtype[np.int64]]
    lons: np.ndarray[Any, np.dtype[np.float64]]  # radians
    lats: np.ndarray[Any, np.dtype[np.float64]]  # radians
    capacity: np.ndarray[Any, np.dtype[np.int64]]


# By (database, catalogue token, type, committee): built once per token, not per refusal.
_POOLS: dict[tuple[str, int, str, int], _Pool] = {}
_POOLS_KEPT = 64


def _pool(found: catalogue.Catalogue, key: tuple[str, int], vtype: str, committee: int) -> _Pool:
    pool = _POOLS.get((*key, vtype, committee))
    if pool is None:
        near = [
            Near(e.id, e.lon, e.lat, e.capacity_units)
            for e in found.in_box([vtype], -90.0, 90.0, -180.0, 180.0)
            if e.committee_id == committee and e.public and not e.retired
        ]
        pool = _Pool(
            near,
            np.array([n.id for n in near], dtype=np.int64),
            np.radians(np.array([n.lon for n in near], dtype=float)),
            np.radians(np.array([n.lat for n in near], dtype=float)),
            np.array([n.capacity_units for n in near], dtype=np.int64),
        )
        if len(_POOLS) >= _POOLS_KEPT:
            _POOLS.clear()
        _POOLS[(*key, vtype, committee)] = pool
    return pool


_HERE = select(Venue.lon, Venue.lat, Venue.type, Venue.committee_id).where(
    Venue.id == bindparam("venue_id")
)


def _nearest_in_sql(
    session: Session, venue_id: int, units: int, *, limit: int
) -> tuple[tuple[float, float], list[Near]]:
    """:func:`nearest_candidates` from SQL: ranked on a flat-earth distance (degrees of
    longitude scaled by the cosine of the latitude: only arithmetic, which both databases
    have) over twice as many, then exactly (haversine): at a city's scale the two orders
    differ by far less than the margin."""
    here = session.execute(_HERE, {"venue_id": venue_id}).one()
    k = math.cos(math.radians(here.lat))
    dx = (Venue.lon - here.lon) * k
    dy = Venue.lat - here.lat
    rows = [
        Near(*r)
        for r in session.execute(
            select(Venue.id, Venue.lon, Venue.lat, Venue.capacity_units)
            .where(
                Venue.committee_id == here.committee_id,
                Venue.type == here.type,
                Venue.id != venue_id,
                # Public venues only (published, not retired, of an admitted unit): a link
                # to one the group's people could not open would be a dead end.
                policy.venues_public(),
                Venue.capacity_units >= units,
            )
            .order_by(dx * dx + dy * dy, Venue.id)
            .limit(2 * limit)
        )
    ]
    rows.sort(key=lambda r: (haversine_m(here.lon, here.lat, r.lon, r.lat), r.id))
    return (here.lon, here.lat), rows[:limit]


def similar_free_venues(session: Session, p: Prepared, *, limit: int = 5) -> list[VenueOption]:
    """Nearest venues of the same type, enough capacity, free and bookable by the group."""
    (lon, lat), nearest = nearest_candidates(session, p.venue_id, p.units)
    # Which of them are open with the units free: bare rows, two queries. Only those are
    # loaded as objects, nearest first, for the rules that need them (who may book, notice,
    # quota): at a busy hour most of the nearest are taken, and loading each with its hours
    # cost more than the rest of a refusal.
    timezone = p.rules.tz.key
    free = free_candidate_ids(
        session,
        [FreeCandidate(r.id, r.capacity_units, timezone) for r in nearest],
        p.start,
        p.end,
        p.units,
        p.now,
    )
    ranked = [r.id for r in nearest if r.id in free]
    if not ranked:
        return []
    # The actor only for who runs a venue (role, unit): not its groups, which a user is
    # otherwise loaded with (a query more).
    actor = session.get(User, p.actor_id, options=[lazyload(User.groups)])
    group = session.get(Group, p.group_id)
    if group is None:
        return []
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
                    joinedload(Venue.unit),  # many-to-one: in the same query
                    # Read by the venue's rules (is it open for booking): deferred on the
                    # model, it cost each venue a query of its own (measured: a refusal's
                    # rules 2 -> 0.06 ms CPU a venue).
                    undefer(Venue.unit_status),
                )
            )
        }
        for vid in batch:
            v = loaded[vid]
            if _violations(
                session, actor, v, group, p.start, p.end, p.units, p.now, p.rules.tz, quota_cache
            ):
                continue
            out.append(
                VenueOption(v.id, v.name, v.unit.name, round(haversine_m(lon, lat, v.lon, v.lat)))
            )
            if len(out) >= limit:
                return out
    return out


def suggest(p: Prepared, session: Session) -> Alternatives:
    """The alternatives for the refused request ``p``, read with ``session`` once the lock
    is released (a refusal carries this with ``p`` bound: ``functools.partial``): the
    refused venue's rules and the group's standing as ``p`` holds them, the bookings read
    now, so every proposal is free at the moment it is computed."""
    return Alternatives(windows=free_windows(session, p), venues=similar_free_venues(session, p))


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
        suggest=partial(suggest, p) if with_alternatives else None,
    )
