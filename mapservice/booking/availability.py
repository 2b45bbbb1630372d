"""Reading availability: free slots of a venue and the venues free for a window. Reads only
(no lock needed). The alternatives a refusal proposes: :mod:`mapservice.booking.alternatives`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    ScalarSelect,
    Select,
    String,
    any_,
    bindparam,
    cast,
    exists,
    func,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from mapservice.booking import capacity, heldmirror
from mapservice.booking.capacity import live_at
from mapservice.booking.catalogue import Entry
from mapservice.booking.loading import venue_tz
from mapservice.core.hours import OpeningRange
from mapservice.core.opening import (
    LocalWindow,
    day_open_intervals,
    is_open_throughout,
    local_instant,
    local_window,
    spans_cover,
    weekday_spans,
)
from mapservice.db import RawStatement, UTCDateTime
from mapservice.models import Booking, BookingAllocation, Closure, Group, OpeningHours, User, Venue
from mapservice.models.bookings import LONG_ALLOCATION, LONG_ALLOCATION_SQL
from mapservice.models.search import SearchEpoch, token_seen
from mapservice.policy import can_see_booking_group


class FreeCandidate(NamedTuple):
    """What the free check needs of a venue, as a bare row: no hours or closures loaded."""

    id: int
    capacity_units: int
    timezone: str  # the committee's


class WindowRow(Protocol):
    """A venue's row with :func:`window_columns` (and its capacity and time zone)."""

    @property
    def id(self) -> int: ...
    @property
    def capacity_units(self) -> int: ...
    @property
    def timezone(self) -> str: ...
    @property
    def hours_raw(self) -> str | None: ...
    @property
    def held_short(self) -> str | None: ...
    @property
    def held_long(self) -> str | None: ...


def _concat(dialect: str, item: ColumnElement[Any]) -> ColumnElement[Any]:
    """The values of ``item`` joined by commas, in no particular order."""
    if dialect == "postgresql":
        return func.string_agg(item, ",")
    return func.group_concat(item, ",")


def _held(dialect: str, *, long: bool) -> ColumnElement[Any]:
    """The unit numbers held over the window (``w_start``, ``w_end``) at the outer query's
    venue by live allocations (the engine's definition of live,
    :func:`capacity.live_condition`, at ``w_now``): the short ones (a day at most) start after
    ``w_lo`` (the window's start less a day), so the (venue_id, start_at, end_at) index is read
    over a day's width, not the venue's whole past; the long ones are read through their
    partial index (:data:`LONG_ALLOCATION_SQL`)."""
    bound: ColumnElement[bool] | TextClause
    if long:
        bound = text(LONG_ALLOCATION_SQL[dialect].format(t="booking_allocations."))
    else:
        bound = BookingAllocation.start_at > bindparam("w_lo", type_=UTCDateTime())
    return (
        select(_concat(dialect, cast(BookingAllocation.unit_no, String)))
        .join(Booking, Booking.id == BookingAllocation.booking_id)
        .where(
            BookingAllocation.venue_id == Venue.id,
            BookingAllocation.start_at < bindparam("w_end", type_=UTCDateTime()),
            BookingAllocation.end_at > bindparam("w_start", type_=UTCDateTime()),
            bound,
            live_at(bindparam("w_now", type_=UTCDateTime())),
        )
        .scalar_subquery()
    )


def hours_aggregate(dialect: str) -> ScalarSelect[Any]:
    """Each venue's weekly opening ranges as one text, ``weekday:start-end`` joined by commas
    (in no particular order), a correlated subquery on :class:`Venue`."""
    h = OpeningHours.__table__.alias("h")
    item = (
        cast(h.c.weekday, String)
        + ":"
        + cast(h.c.start_min, String)
        + "-"
        + cast(h.c.end_min, String)
    )
    return select(_concat(dialect, item)).where(h.c.venue_id == Venue.id).scalar_subquery()


def window_columns(dialect: str) -> tuple[ColumnElement[Any], ...]:
    """What a free check needs of each venue row, as correlated subqueries on :class:`Venue`
    (parameters from :func:`window_params`): ``hours_raw``, its weekly opening ranges as one
    text (``weekday:start-end`` joined by commas); ``held_short`` and ``held_long``, the unit
    numbers live allocations hold over the window, joined by commas (or NULL). With
    :func:`not_closed` in the WHERE, :func:`free_ids` decides."""
    return (
        hours_aggregate(dialect).label("hours_raw"),
        _held(dialect, long=False).label("held_short"),
        _held(dialect, long=True).label("held_long"),
    )


def not_closed() -> ColumnElement[bool]:
    """No closure of the venue meets the window: any closure meeting it makes a hole in it,
    so the venue is not open throughout (:func:`is_open_throughout`)."""
    return ~exists().where(
        Closure.venue_id == Venue.id,
        Closure.start_at < bindparam("w_end", type_=UTCDateTime()),
        Closure.end_at > bindparam("w_start", type_=UTCDateTime()),
    )


def window_params(start: datetime, end: datetime, now: datetime) -> dict[str, datetime]:
    """The parameters of :func:`window_columns` and :func:`not_closed`."""
    return {"w_start": start, "w_end": end, "w_lo": start - LONG_ALLOCATION, "w_now": now}


@lru_cache(maxsize=4096)
def _ranges(raw: str | None) -> tuple[OpeningRange, ...]:
    """The opening ranges of a ``hours_raw`` text (most venues share a few weekly patterns:
    each is parsed once)."""
    out = []
    for item in (raw or "").split(","):
        if item:
            weekday, _sep, span = item.partition(":")
            a, _sep, b = span.partition("-")
            out.append(OpeningRange(int(weekday), int(a), int(b)))
    return tuple(sorted(out, key=lambda r: (r.weekday, r.start_min, r.end_min)))


def free_ids(rows: Iterable[WindowRow], start: datetime, end: datetime, units: int) -> set[int]:
    """Of venue rows read with :func:`window_columns` (and :func:`not_closed`: no closure
    meets the window), those open for the whole of ``[start, end)`` by their weekly hours with
    at least ``units`` of units 1..capacity held by no live allocation."""
    decided: dict[tuple[str, str | None], bool] = {}
    out: set[int] = set()
    for r in rows:
        if r.capacity_units < units:
            continue
        if r.held_short or r.held_long:
            held = {int(n) for n in f"{r.held_short or ''},{r.held_long or ''}".split(",") if n}
            if sum(1 for n in held if n <= r.capacity_units) > r.capacity_units - units:
                continue
        key = (r.timezone, r.hours_raw)
        is_open = decided.get(key)
        if is_open is None:
            is_open = decided[key] = is_open_throughout(
                _ranges(r.hours_raw), (), start, end, ZoneInfo(r.timezone)
            )
        if is_open:
            out.add(r.id)
    return out


def _held_flat(dialect: str) -> Any:
    """The (venue, unit) pairs live allocations hold over the window at the venues ``ids``:
    the short ones over a day's width of the index, then the long ones (as :func:`_held`)."""

    # One statement text whatever the number of ids (an IN list's text changes with it, and
    # expanding it on every search cost more than the query): a JSON array on SQLite, an
    # array on PostgreSQL given as its text ('{1,2,3}'). Not a list: psycopg sends a list of
    # small numbers as smallint[], an empty one as another type, and prepares one statement
    # per type, the empty list's planned anew each time (in all 0.77 ms against 0.45 per
    # search, the same 300 searches raw on the 1M dataset).
    wanted: ColumnElement[bool]
    if dialect == "postgresql":
        ids = cast(bindparam("ids", type_=String()), ARRAY(Integer))
        wanted = BookingAllocation.venue_id == any_(ids)
    else:
        listed = func.json_each(bindparam("ids", type_=String())).table_valued("value")
        wanted = BookingAllocation.venue_id.in_(select(listed.c.value))

    return capacity.live_held(
        dialect, (BookingAllocation.venue_id, BookingAllocation.unit_no), wanted, prefix="w_"
    )


_HELD: dict[str, RawStatement] = {}
_INSTANT = UTCDateTime()


def held_units(
    session: Session, ids: Sequence[int], start: datetime, end: datetime, now: datetime
) -> tuple[dict[int, set[int]], int | None]:
    """The unit numbers live allocations hold at any moment of ``[start, end)``, by venue, of
    the venues ``ids`` (one query for up to 2,000), and the database's search epoch token
    read in the same query (:mod:`mapservice.booking.catalogue`; None without one)."""
    conn = session.connection()
    dialect = conn.dialect
    prepared = _HELD.get(dialect.name)
    if prepared is None:
        token = select(cast(null(), Integer), token_seen(dialect.name)).where(SearchEpoch.id == 1)
        stmt = union_all(token, *_held_flat(dialect.name).selects)
        prepared = _HELD[dialect.name] = RawStatement.of(stmt, dialect)
    params = {
        k: _INSTANT.process_bind_param(v, dialect)
        for k, v in window_params(start, end, now).items()
    }
    out: dict[int, set[int]] = {}
    seen: int | None = None
    for part in _chunks(ids) or [[]]:
        # The ids as an array's text: JSON on SQLite, PostgreSQL's on PostgreSQL (written
        # here: json.dumps cost more).
        joined = ",".join(map(str, part))
        listed = f"{{{joined}}}" if dialect.name == "postgresql" else f"[{joined}]"
        for vid, unit_no in prepared.run(conn, {**params, "ids": listed}):
            if vid is None:
                seen = unit_no
            else:
                out.setdefault(vid, set()).add(unit_no)
    return out, seen


@lru_cache(maxsize=4096)
def open_in(hours_raw: str | None, window: LocalWindow) -> bool:
    """Whether weekly hours (a ``hours_raw`` text) cover a :class:`LocalWindow`
    (:func:`mapservice.core.opening.spans_cover`)."""
    return spans_cover(weekday_spans(_ranges(hours_raw)), window)


def is_open(timezone: str, hours_raw: str | None, start: datetime, end: datetime) -> bool:
    """Whether weekly hours (a ``hours_raw`` text) in ``timezone`` cover ``[start, end)``
    (closures aside): :func:`is_open_throughout`'s answer. A window within one local day
    whose clock does not change that day is decided on that weekday's merged ranges (wall
    clock and instants then differ by one offset); any other by :func:`is_open_throughout`."""
    window = local_window(timezone, start, end)
    if window is not None:
        return open_in(hours_raw, window)
    return is_open_throughout(_ranges(hours_raw), (), start, end, ZoneInfo(timezone))


def free_entries(
    session: Session,
    entries: Sequence[Entry],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
    *,
    mirrored: bool = False,
) -> tuple[list[Entry], int | None]:
    """Of kept venues (:mod:`mapservice.booking.catalogue`), those open for the whole of
    ``[start, end)`` (closures and weekly hours decided here) with at least ``units`` of units
    1..capacity held by no live allocation (read for the open ones in one query), in their
    order; and the database's search epoch token read in that query (or as the mirror has
    it): the answer holds only if it is the token the entries were kept under."""
    # Most venues share a few weekly patterns: each is decided once per time zone.
    decided: dict[tuple[str, str], bool] = {}
    open_: list[Entry] = []
    for e in entries:
        if e.closures and e.closed_during(start, end):
            continue
        key = (e.timezone, e.hours_raw)
        ok = decided.get(key)
        if ok is None:
            ok = decided[key] = is_open(e.timezone, e.hours_raw, start, end)
        if ok:
            open_.append(e)
    ids = [e.id for e in open_]
    # With ``mirrored``, from this process's mirror of live allocations when it can answer
    # (mapservice.booking.heldmirror: a search's answer, which may lag another process's
    # commit by a notification's delivery); else from the database.
    got = heldmirror.units(session, ids, start, end, now) if mirrored else None
    held, token = got if got is not None else held_units(session, ids, start, end, now)
    free = [
        e
        for e in open_
        if (h := held.get(e.id)) is None
        or e.capacity_units - sum(1 for n in h if n <= e.capacity_units) >= units
    ]
    return free, token


# Ids per IN list: far below SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 2000

# Built once per database kind: building and keying a statement costs more than SQLite takes
# to answer it.
_BY_IDS: dict[str, Select[Any]] = {}


def _by_ids(dialect: str) -> Select[Any]:
    stmt = _BY_IDS.get(dialect)
    if stmt is None:
        stmt = _BY_IDS[dialect] = select(Venue.id, *window_columns(dialect)).where(
            Venue.id.in_(bindparam("ids", expanding=True)), not_closed()
        )
    return stmt


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


class _Row(NamedTuple):
    id: int
    capacity_units: int
    timezone: str
    hours_raw: str | None
    held_short: str | None
    held_long: str | None


def free_candidate_ids(
    session: Session,
    venues: Sequence[FreeCandidate],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` (weekly hours in their
    committee's time zone, minus closures) with at least ``units`` units free throughout: of
    units 1..capacity, those no live allocation (confirmed, completed, no-show, or pending
    with its hold unexpired at ``now``) holds at any moment of the window. One query of bare
    rows (:func:`window_columns`), so a search over a city costs a millisecond where loading
    its venues as objects with their hours cost tens (bench/booking_bench.py, #2)."""
    big_enough = {v.id: v for v in venues if v.capacity_units >= units}
    if not big_enough or not start < end:
        return set()
    stmt = _by_ids(session.get_bind().dialect.name)
    params: dict[str, Any] = window_params(start, end, now)
    rows: list[_Row] = []
    for part in _chunks(list(big_enough)):
        for vid, hours_raw, short, long in session.execute(stmt, {**params, "ids": part}):
            v = big_enough[vid]
            rows.append(_Row(vid, v.capacity_units, v.timezone, hours_raw, short, long))
    return free_ids(rows, start, end, units)


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
