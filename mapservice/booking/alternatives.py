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

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.booking import capacity, catalogue
from mapservice.booking.availability import FreeCandidate, free_candidate_ids, free_entries
from mapservice.booking.loading import quota_minutes
from mapservice.booking.prepare import Prepared
from mapservice.booking.results import Alternatives, Occupied, VenueOption
from mapservice.booking.rows import VenueCard, group_may_book_row, venue_cards
from mapservice.booking.rules import Request, check, week_bounds
from mapservice.core.errors import BookingConflict, Violation
from mapservice.core.geo import EARTH_RADIUS_M, haversine_m
from mapservice.core.i18n import _
from mapservice.core.opening import day_open_intervals, local_instant
from mapservice.models import Group, Venue
from mapservice.policy import can_run_venue

SEARCH_DAYS = 7
NEAREST_VENUES = 40


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

    where_now: set[tuple[datetime, datetime]] = set()  # a moved booking's: no proposal

    def read(days: int) -> list[capacity.Held]:
        """The units held from the first day's midnight over ``days`` days (and a window's
        length beyond). A moved booking's own units do not count against it."""
        until = local_instant(first_day + timedelta(days=days), 0, tz) + length
        found = capacity.held_at(session, p.venue_id, horizon_start, until, now)
        if p.moving is None:
            return found
        where_now.update((h.start, h.end) for h in found if h.booking_id == p.moving)
        return [h for h in found if h.booking_id != p.moving]

    # The request's own day first: most refusals find their windows there, and a busy venue's
    # week is many rows; the whole horizon is read only if that day has too few.
    holds = read(1)
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
        if offset == 1:
            holds = read(SEARCH_DAYS + 1)
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
    return (here.lon, here.lat), _nearest_kept(session, found, here, units, limit)


def _nearest_kept(
    session: Session, found: catalogue.Catalogue, here: catalogue.Entry, units: int, limit: int
) -> list[Near]:
    """:func:`nearest_candidates` from the kept catalogue ``found`` (``here``: the venue),
    ranked once per venue, units and catalogue token (a busy venue's refusals ask again and
    again)."""
    key = (catalogue.engine_key(session.connection().engine), found.token)
    ranked_key = (*key, here.id, units, limit)
    ranked = _RANKED.get(ranked_key)
    if ranked is None:
        ranked = _rank(found, key, here, units, limit)
        if len(_RANKED) >= _RANKED_KEPT:
            _RANKED.clear()
        _RANKED[ranked_key] = ranked
    return ranked


# By (database, catalogue token, venue, units, limit): the venues nearest to it.
_RANKED: dict[tuple[str, int, int, int, int], list[Near]] = {}
_RANKED_KEPT = 4096


def _rank(
    found: catalogue.Catalogue,
    key: tuple[str, int],
    here: catalogue.Entry,
    units: int,
    limit: int,
) -> list[Near]:
    pool = _pool(found, key, here.type, here.committee_id)
    keep = np.flatnonzero((pool.ids != here.id) & (pool.capacity >= units))
    if not len(keep):
        return []
    lon0, lat0 = math.radians(here.lon), math.radians(here.lat)
    lats = pool.lats[keep]
    h = (
        np.sin((lats - lat0) / 2) ** 2
        + math.cos(lat0) * np.cos(lats) * np.sin((pool.lons[keep] - lon0) / 2) ** 2
    )
    dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    order = keep[np.lexsort((pool.ids[keep], dist))[:limit]]
    return [pool.near[i] for i in order.tolist()]


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
    """Nearest venues of the same type, enough capacity, free and bookable by the group:
    from the kept venue catalogue and the venues' cards kept under its token
    (:func:`_similar_kept`) when it can be trusted, else from the database alone. The kept
    catalogue is tried first as it is (the free check's query reads the token: no query of
    its own); only when the token changed is it read again."""
    for found in (catalogue.kept(session), None):
        if found is None:
            found = catalogue.current(session)
        here = found.entries.get(p.venue_id) if found is not None else None
        if found is not None and here is not None:
            kept = _similar_kept(session, p, found, here, limit)
            if kept is not None:
                return kept
    return _similar_read(session, p, limit)


def _similar_kept(
    session: Session,
    p: Prepared,
    found: catalogue.Catalogue,
    here: catalogue.Entry,
    limit: int,
) -> list[VenueOption] | None:
    """:func:`similar_free_venues` from what this process keeps under the database's search
    epoch token: the nearest venues ranked in the catalogue, which of them are open (decided
    here) with the units free (one query, which reads the token too), then the rules that
    remain (who may book, notice, length, quota) checked on their cards (:func:`_cards`: read
    once per token, not per refusal). None when the token changed meanwhile (the caller
    then reads everything from the database)."""
    nearest = _nearest_kept(session, found, here, p.units, NEAREST_VENUES)
    free, token = free_entries(
        session, [found.entries[n.id] for n in nearest], p.start, p.end, p.units, p.now
    )
    if token != found.token:
        return None
    free_ids = {e.id for e in free}
    ranked = [n for n in nearest if n.id in free_ids]
    if not ranked:
        return []
    cards = _cards(session, found.token, [n.id for n in ranked])
    return _bookable(session, p, (here.lon, here.lat), ranked, cards, limit)


def _bookable(
    session: Session,
    p: Prepared,
    here: tuple[float, float],
    ranked: list[Near],
    cards: dict[int, VenueCard],
    limit: int,
) -> list[VenueOption]:
    """Of the free venues ``ranked`` (nearest first), the first ``limit`` whose rules ``p``'s
    request passes, as proposals with their distance from ``here`` (lon, lat)."""
    quota: dict[Any, float] = {}
    out: list[VenueOption] = []
    for n in ranked:
        card = cards.get(n.id)
        if card is None or _card_violations(session, p, card, quota):
            continue
        distance = round(haversine_m(here[0], here[1], n.lon, n.lat))
        out.append(VenueOption(n.id, card.venue.name, card.unit_name, distance))
        if len(out) >= limit:
            break
    return out


# By (database, search epoch token): each venue's card, read once per token.
_CARDS: dict[str, tuple[int, dict[int, VenueCard]]] = {}


def _cards(session: Session, token: int, venue_ids: list[int]) -> dict[int, VenueCard]:
    """The cards of ``venue_ids`` (:func:`mapservice.booking.rows.venue_cards`), those read
    under ``token`` kept and the others read now: a venue, its hours, closures, unit or
    committee changed replaces the token (the catalogue's promise), so a kept card is never
    older than what the transaction that reads the token sees."""
    key = catalogue.engine_key(session.connection().engine)
    kept = _CARDS.get(key)
    if kept is None or kept[0] != token:
        kept = _CARDS[key] = (token, {})
    cards = kept[1]
    missing = [vid for vid in venue_ids if vid not in cards]
    if missing:
        cards.update(venue_cards(session, missing))
    return cards


def _card_violations(
    session: Session, p: Prepared, card: VenueCard, quota: dict[Any, float]
) -> list[Violation]:
    """The rules ``p``'s group's request breaks at the venue of ``card`` (``quota`` keeps
    what the group used by venue and week, across the venues of one refusal)."""
    venue, rules = card.venue, card.rules
    exempt = can_run_venue(p.runner, venue)
    used = 0.0
    if venue.weekly_quota_hours is not None and not exempt:
        week = (venue.id, week_bounds(p.start, rules.tz)[0])
        if week not in quota:
            quota[week] = quota_minutes(session, venue.id, rules.tz, p.group_id, p.start, p.now)
        used = quota[week]
    return check(
        Request(p.start, p.end, p.units),
        rules,
        p.now,
        may_book=group_may_book_row(
            session, p.group_row, venue, p.start.astimezone(rules.tz).date()
        ),
        group_active=p.group_active,
        quota_used_minutes=used,
        exempt=exempt,
    )


def _similar_read(session: Session, p: Prepared, limit: int) -> list[VenueOption]:
    """:func:`similar_free_venues` from the database alone: a transaction that changed
    venues itself (no catalogue to trust), or the token changed while it read."""
    (lon, lat), nearest = _nearest_in_sql(session, p.venue_id, p.units, limit=NEAREST_VENUES)
    # Which of them are open with the units free: bare rows, one query; then only those
    # have their cards read, nearest first, for the rules that remain.
    timezone = p.rules.tz.key
    free = free_candidate_ids(
        session,
        [FreeCandidate(r.id, r.capacity_units, timezone) for r in nearest],
        p.start,
        p.end,
        p.units,
        p.now,
    )
    ranked = [r for r in nearest if r.id in free]
    cards = venue_cards(session, [r.id for r in ranked])
    return _bookable(session, p, (lon, lat), ranked, cards, limit)


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
