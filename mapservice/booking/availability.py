"""Reading availability: free slots of a venue and the venues free for a window. Reads only
(no lock needed). The alternatives a refusal proposes: :mod:`mapservice.booking.alternatives`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, cast, null, select, union_all
from sqlalchemy.orm import Session

from mapservice.booking import capacity
from mapservice.booking.loading import venue_tz
from mapservice.core.hours import OpeningRange
from mapservice.core.opening import Interval, day_open_intervals, is_open_throughout, local_instant
from mapservice.db import UTCDateTime
from mapservice.models import Booking, BookingAllocation, Closure, Group, OpeningHours, User, Venue
from mapservice.policy import can_see_booking_group


class FreeCandidate(NamedTuple):
    """What the free check needs of a venue, as a bare row: no hours or closures loaded."""

    id: int
    capacity_units: int
    timezone: str  # the committee's


# Ids per IN list: far below SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 2000

# Built once: a search runs these for every request, and building and hashing a statement
# costs more than SQLite takes to answer it.
# Opening ranges on the window's weekdays and the closures meeting it (only those can make a
# hole in it), in one round trip: hours rows have no instants, closure rows no minutes.
_NO_INSTANT = cast(null(), UTCDateTime())
_NO_MINUTE = cast(null(), Integer())
_OPENING = union_all(
    select(
        OpeningHours.venue_id,
        OpeningHours.weekday,
        OpeningHours.start_min,
        OpeningHours.end_min,
        _NO_INSTANT.label("start_at"),
        _NO_INSTANT.label("end_at"),
    ).where(
        OpeningHours.venue_id.in_(bindparam("ids", expanding=True)),
        OpeningHours.weekday.in_(bindparam("weekdays", expanding=True)),
    ),
    select(
        Closure.venue_id, _NO_MINUTE, _NO_MINUTE, _NO_MINUTE, Closure.start_at, Closure.end_at
    ).where(
        Closure.venue_id.in_(bindparam("ids", expanding=True)),
        Closure.start_at < bindparam("end", type_=UTCDateTime()),
        Closure.end_at > bindparam("start", type_=UTCDateTime()),
    ),
)
# The units taken over the window: live allocations meeting it (the engine's definition of
# live, capacity.live_condition). Plain comparisons on both databases: with the venue ids
# given, both plan them on (venue_id, start_at, end_at), well under a millisecond; the
# range overlap capacity.held uses on PostgreSQL went through the exclusion constraint's
# GiST index and took 2-5 ms here (bench/booking_bench.py, #2).
_TAKEN = (
    select(BookingAllocation.venue_id, BookingAllocation.unit_no)
    .join(Booking, Booking.id == BookingAllocation.booking_id)
    .where(
        BookingAllocation.venue_id.in_(bindparam("ids", expanding=True)),
        BookingAllocation.start_at < bindparam("end", type_=UTCDateTime()),
        BookingAllocation.end_at > bindparam("start", type_=UTCDateTime()),
        capacity.live_condition(bindparam("now", type_=UTCDateTime())),  # type: ignore[arg-type]
    )
)


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def _local_weekdays(start: datetime, end: datetime, tz: ZoneInfo) -> set[int]:
    """The weekdays whose opening ranges can meet ``[start, end)`` in ``tz``: the local days
    :func:`mapservice.core.opening.open_intervals` looks at (from the day before)."""
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    out: set[int] = set()
    while day <= last and len(out) < 7:
        out.add(day.weekday())
        day += timedelta(days=1)
    return out


def open_venue_ids(
    session: Session, venues: Sequence[FreeCandidate], start: datetime, end: datetime
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` (weekly hours in their
    committee's time zone, minus closures), read as bare rows: one query for any number."""
    if not venues or not start < end:
        return set()
    zones = {v.timezone: ZoneInfo(v.timezone) for v in venues}
    weekdays = sorted(set().union(*(_local_weekdays(start, end, tz) for tz in zones.values())))
    ranges: dict[int, list[OpeningRange]] = defaultdict(list)
    closures: dict[int, list[Interval]] = defaultdict(list)
    for part in _chunks([v.id for v in venues]):
        params = {"ids": part, "weekdays": weekdays, "start": start, "end": end}
        for vid, wd, a_min, b_min, a, b in session.execute(_OPENING, params):
            if a is None:
                ranges[vid].append(OpeningRange(wd, a_min, b_min))
            else:
                closures[vid].append((a, b))
    # Most venues share a few weekly patterns: decide each pattern once.
    decided: dict[tuple[str, tuple[OpeningRange, ...], tuple[Interval, ...]], bool] = {}
    out: set[int] = set()
    for v in venues:
        key = (v.timezone, tuple(sorted(ranges[v.id])), tuple(sorted(closures[v.id])))
        is_open = decided.get(key)
        if is_open is None:
            is_open = decided[key] = is_open_throughout(
                key[1], key[2], start, end, zones[v.timezone]
            )
        if is_open:
            out.add(v.id)
    return out


def free_candidate_ids(
    session: Session,
    venues: Sequence[FreeCandidate],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` with at least ``units``
    units free throughout: of units 1..capacity, those no live allocation (confirmed,
    completed, no-show, or pending with its hold unexpired at ``now``) holds at any moment of
    the window. Bare rows only (hours with closures, then allocations: two queries), so a search
    over a city costs a millisecond or two where loading its venues as objects with their
    hours cost tens (bench/booking_bench.py, #2)."""
    big_enough = [v for v in venues if v.capacity_units >= units]
    is_open = open_venue_ids(session, big_enough, start, end)
    candidates = [v for v in big_enough if v.id in is_open]
    taken: dict[int, set[int]] = defaultdict(set)
    for part in _chunks([v.id for v in candidates]):
        params = {"ids": part, "start": start, "end": end, "now": now}
        for vid, unit_no in session.execute(_TAKEN, params):
            taken[vid].add(unit_no)
    return {
        v.id
        for v in candidates
        if sum(1 for n in range(1, v.capacity_units + 1) if n not in taken[v.id]) >= units
    }


def free_venue_ids(
    session: Session,
    venues: Sequence[Venue],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` with at least ``units``
    units free throughout (:func:`free_candidate_ids` on their ids; their hours and closures
    are read again from the database, so loaded objects and bare rows get one answer)."""
    return free_candidate_ids(
        session,
        [FreeCandidate(v.id, v.capacity_units, v.committee.timezone) for v in venues],
        start,
        end,
        units,
        now,
    )


@dataclass(frozen=True)
class Slot:
    """One slot of the week view: ``free`` units of ``capacity``; ``closed`` outside hours.
    ``bookings`` (id, group name) only for those allowed to see who."""

    start: datetime
    end: datetime
    free: int
    capacity: int
    closed: bool
    past: bool
    bookings: tuple[tuple[int, str], ...] = ()

    @property
    def state(self) -> str:
        if self.closed:
            return "closed"
        if self.free == 0:
            return "full"
        return "partial" if self.free < self.capacity else "free"


def week_slots(
    session: Session,
    actor: User | None,
    venue: Venue,
    first_day: date,
    now: datetime,
    days: int = 7,
) -> list[tuple[date, list[Slot]]]:
    """Each day's slots within its opening hours (and closed stretches between them), with
    free units. Outsiders see only how many units are free, never who booked."""
    tz = venue_tz(venue)
    slot = timedelta(minutes=venue.slot_minutes)
    window_start = local_instant(first_day, 0, tz)
    window_end = local_instant(first_day + timedelta(days=days), 0, tz)
    holds = capacity.held(session, [venue.id], window_start, window_end, now)
    names: dict[int, tuple[int, str]] = {}
    if holds:
        for bid, gid, gname in session.execute(
            select(Booking.id, Booking.group_id, Group.name)
            .join(Group)
            .where(Booking.id.in_({h.booking_id for h in holds}))
        ):
            names[bid] = (gid, gname)
    closures = [(c.start_at, c.end_at) for c in venue.closures]
    out: list[tuple[date, list[Slot]]] = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        opens = day_open_intervals(venue.opening_ranges, closures, day, tz)
        slots: list[Slot] = []
        for a, b in opens:
            s = a
            while s + slot <= b:
                e = s + slot
                overlapping = [h for h in holds if h.start < e and s < h.end]
                free = len(capacity.free_unit_numbers(venue.capacity_units, overlapping, s, e))
                who = tuple(
                    sorted(
                        {
                            (h.booking_id, names[h.booking_id][1])
                            for h in overlapping
                            if h.booking_id in names
                            and can_see_booking_group(actor, venue, names[h.booking_id][0])
                        }
                    )
                )
                slots.append(Slot(s, e, free, venue.capacity_units, False, e <= now, who))
                s = e
        out.append((day, slots))
    return out
