"""Load what the measures need from the database as DataFrames and arrays: one query for the
venues in scope, one for their opening hours and closures, one for the bookings that meet the
period (integer columns packed by the database into one value; instants as whole epoch
seconds: from SQLite's stored microseconds, from PostgreSQL's binary timestamps in numpy).
Opening intervals are built once per distinct weekly calendar
(:mod:`mapservice.stats.calendars`), never per booking nor per venue and day."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from threading import Lock
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    Select,
    String,
    any_,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement, Label
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from mapservice.booking import catalogue
from mapservice.core.i18n import lang
from mapservice.core.vocab import VenueType
from mapservice.db import close_at_checkin
from mapservice.models import Area, Booking, Closure, Group, OpeningHours, Unit, Venue
from mapservice.policy import venues_public
from mapservice.stats.calendars import OpenIntervals, build_open_intervals
from mapservice.stats.measures import VENUE_COLUMNS
from mapservice.stats.periods import Period
from mapservice.stats.printmap import MapVenue

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scope:
    """Whose venues: a committee's (``unit_id`` None) or one unit's. ``venue_type``
    narrows to one type."""

    committee_id: int
    unit_id: int | None = None
    venue_type: str | None = None


def _venue_filter(scope: Scope) -> list[object]:
    """The venues the figures count: those of the scope that the public map shows
    (:func:`mapservice.policy.venues_public`: published, not retired, of a unit the committee
    has admitted). A venue of a unit whose application is pending or was refused counts in no
    figure, whatever was booked there."""
    cond: list[object] = [Venue.committee_id == scope.committee_id, venues_public()]
    if scope.unit_id is not None:
        cond.append(Venue.unit_id == scope.unit_id)
    if scope.venue_type:
        cond.append(Venue.type == scope.venue_type)
    return cond


#: How many venue tables and open-interval sets a process keeps (:func:`_kept`).
KEEP_ENTRIES = 16
_KEPT: OrderedDict[tuple[Any, ...], tuple[int, Any]] = OrderedDict()
_KEEPING = Lock()
_T = TypeVar("_T")


def _kept(session: Session, key: tuple[Any, ...], build: Callable[[], _T]) -> _T:
    """``build()``, kept in the process under ``key`` for as long as the database's search
    epoch token (:mod:`mapservice.booking.catalogue`: replaced by the database on every change
    to venues, their hours and closures, units and committees) is the one it was built under.
    The token is read first, so what is built is at least as new as the token it is kept
    under; with no token (a PostgreSQL transaction that has itself changed those tables, or
    the token's table emptied) it is built afresh and nothing is kept. What is kept must not
    be changed by its users: callers get copies or read-only arrays."""
    token = catalogue.token(session)
    if token is None:
        return build()
    full = (catalogue.engine_key(session.connection().engine), *key)
    with _KEEPING:
        hit = _KEPT.get(full)
        if hit is not None and hit[0] == token:
            _KEPT.move_to_end(full)
            return hit[1]  # type: ignore[no-any-return]
    value = build()
    with _KEEPING:
        _KEPT[full] = (token, value)
        _KEPT.move_to_end(full)
        while len(_KEPT) > KEEP_ENTRIES:
            _KEPT.popitem(last=False)
    return value


def forget_kept() -> None:
    """Drop what :func:`_kept` keeps (tests, and a process that wants its memory back)."""
    with _KEEPING:
        _KEPT.clear()


def load_venues(session: Session, scope: Scope) -> pd.DataFrame:
    """The public venues in scope (:func:`_venue_filter`) with unit and street names: the
    venues kept while the search epoch holds (:func:`_kept`), the street names read each time
    (areas are not among what the epoch watches; there are a few hundred)."""
    frame = _kept(session, ("venues", scope), lambda: _read_venues(session, scope)).copy()
    streets = frame["street_id"].dropna().unique().astype("int64").tolist()
    names: dict[int, str] = {}
    if streets:
        names = {
            i: n for i, n in session.execute(select(Area.id, Area.name).where(Area.id.in_(streets)))
        }
    frame["street_name"] = frame["street_id"].map(lambda v: names.get(int(v), "") if v == v else "")
    return frame


def _read_venues(session: Session, scope: Scope) -> pd.DataFrame:
    """:func:`load_venues` read from the database."""
    stmt = (
        select(
            Venue.id.label("venue_id"),
            Venue.name,
            Venue.unit_id,
            Unit.name.label("unit_name"),
            Venue.type,
            Venue.street_id,
            Area.name.label("street_name"),
            Venue.capacity_units,
            Venue.lon,
            Venue.lat,
            Venue.phone,
        )
        .join(Unit, Venue.unit_id == Unit.id)
        .outerjoin(Area, Venue.street_id == Area.id)
        .where(*_venue_filter(scope))  # type: ignore[arg-type]
        .order_by(Venue.id)
    )
    rows = session.connection().execute(stmt).all()  # Core rows: no ORM loading step
    frame = pd.DataFrame([tuple(r) for r in rows], columns=VENUE_COLUMNS)
    frame["street_name"] = frame["street_name"].fillna("")
    frame["street_id"] = frame["street_id"].astype("float64")
    frame["capacity_units"] = frame["capacity_units"].astype("int64")
    return frame


def load_open_intervals(session: Session, venue_ids: list[int], period: Period) -> OpenIntervals:
    """The open intervals of each venue inside the period (weekly hours minus closures), the
    same as :func:`mapservice.core.opening.open_intervals` gives for each venue, computed once
    per calendar (see :mod:`mapservice.stats.calendars`); kept while the search epoch holds
    (:func:`_kept`: the hours, closures and the committee's time zone are all among what it
    watches), its arrays read-only."""
    digest = hashlib.blake2b(np.asarray(venue_ids, dtype="int64").tobytes(), digest_size=16)
    key = ("open", digest.digest(), period.start_at, period.end_at, str(period.tz))
    return _kept(session, key, lambda: _read_open_intervals(session, venue_ids, period))


def _read_open_intervals(session: Session, venue_ids: list[int], period: Period) -> OpenIntervals:
    """:func:`load_open_intervals` read and built."""
    ranges = np.zeros((0, 4), dtype="int64")
    closures: list[tuple[int, int, int]] = []
    if venue_ids:
        # The venues' id range, filtered exactly below: ten thousand bound parameters in an
        # IN list cost more to compile than the query takes.
        lo, hi = min(venue_ids), max(venue_ids)
        ranges = np.column_stack(
            int_columns(
                session,
                select(
                    OpeningHours.venue_id,
                    OpeningHours.weekday,
                    OpeningHours.start_min,
                    OpeningHours.end_min,
                ).where(OpeningHours.venue_id.between(lo, hi)),
            )
        ).reshape(-1, 4)
        wanted = set(venue_ids)
        closures = [
            (vid, _seconds(s), _seconds(e))
            for vid, s, e in session.execute(
                select(Closure.venue_id, Closure.start_at, Closure.end_at).where(
                    Closure.venue_id.between(lo, hi),
                    Closure.start_at < period.end_at,
                    Closure.end_at > period.start_at,
                )
            )
            if vid in wanted
        ]
    start, end = period.start_at, period.end_at
    built = build_open_intervals(
        venue_ids,
        ranges,
        closures,
        start.astimezone(period.tz).date(),
        end.astimezone(period.tz).date(),
        _seconds(start),
        _seconds(end),
        period.tz,
    )
    for array in (built.venue_ids, built.calendar, built.cal, built.start, built.end):
        array.setflags(write=False)
    return built


def _seconds(at: datetime) -> int:
    """Whole seconds since the epoch (rounded, as the intervals always were)."""
    return round(at.timestamp())


class epoch(FunctionElement[int]):  # noqa: N801 - reads as the SQL function it stands for
    """Whole seconds (floor) since the Unix epoch of a :class:`mapservice.db.UTCDateTime`
    column, less ``since`` (whole epoch seconds; default 0). Seconds from the period's start
    are smaller numbers than seconds from 1970: on SQLite, which hands integers over as text
    (:func:`int_columns`), fewer digits to write and to parse."""

    type = BigInteger()
    name = "epoch"
    inherit_cache = True

    def __init__(
        self, column: ColumnElement[Any] | InstrumentedAttribute[Any], since: int = 0
    ) -> None:
        # ``since`` is a bound parameter, so statements that differ only in it share the
        # compiled SQL; the attribute serves the PostgreSQL path, which subtracts in numpy.
        super().__init__(column, literal(int(since), BigInteger()))
        self.since = int(since)


def _epoch_parts(element: epoch, compiler: Any, **kw: Any) -> tuple[str, str]:
    column, since = element.clauses.clauses
    return compiler.process(column, **kw), compiler.process(since, **kw)


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    # SQLite stores an instant as integer microseconds (mapservice.db.UTCDateTime): floored
    # to seconds (its integer division truncates towards zero, hence the case for negatives).
    arg, since = _epoch_parts(element, compiler, **kw)
    seconds = f"CASE WHEN {arg} < 0 THEN ({arg} - 999999) / 1000000 ELSE {arg} / 1000000 END"
    return f"(({seconds}) - {since})"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: Any, **kw: Any) -> str:
    # date_part gives a double (extract a numeric, slower): whole seconds up to 2^53 µs are
    # exact in it and a fraction never rounds up to the next second at these magnitudes.
    arg, since = _epoch_parts(element, compiler, **kw)
    return f"(CAST(floor(date_part('epoch', {arg})) AS BIGINT) - {since})"


def among(column: Any, venue_ids: Sequence[int], dialect: str) -> ColumnElement[bool]:
    """``column`` (a venue id) one of ``venue_ids``, for a query packed by
    :func:`int_columns`. The ids' range (``BETWEEN``, the caller filtering exactly after) when
    they fill most of it — every venue, as a rebuild reads them; else exactly these ids, as
    one bound value whatever their number (an array on PostgreSQL, a JSON array on SQLite):
    the days a day's bookings made stale lie at a few hundred venues spread over the whole
    range, and their range read every venue's year of daily rows (a worker's peak 700 MB,
    the million-booking dataset, 148 venues stale)."""
    ids = sorted(set(venue_ids))
    lo, hi = ids[0], ids[-1]
    if 2 * len(ids) > hi - lo + 1:
        return column.between(lo, hi)  # type: ignore[no-any-return]
    if dialect == "postgresql":
        listed = cast(literal("{" + ",".join(map(str, ids)) + "}", String()), ARRAY(Integer))
        return column == any_(listed)  # type: ignore[no-any-return]
    values = func.json_each(literal("[" + ",".join(map(str, ids)) + "]", String()))
    return column.in_(select(values.table_valued("value").c.value))  # type: ignore[no-any-return]


def int_columns(
    session: Session, stmt: Select[*tuple[Any, ...]]
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """The columns of ``stmt`` (integers, never NULL) as numpy arrays.

    A million rows handed over one by one by the driver take seconds; here the database
    aggregates them into one value that numpy reads at once. PostgreSQL: one ``bytea`` of each
    row's columns in their binary send format, rows one after another, fetched in binary (see
    :func:`_pg_int_columns`). SQLite: one comma-separated text per column (``group_concat``,
    all columns in the same pass, so in the same row order)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _pg_int_columns(session, stmt)
    sub = stmt.subquery()
    if dialect != "sqlite":  # pragma: no cover - the two databases we run on are above
        rows = session.execute(stmt).all()
        return [np.asarray(col, dtype="int64") for col in zip(*rows, strict=True)] or [
            np.zeros(0, dtype="int64") for _ in sub.c
        ]
    texts = session.execute(select(*(func.group_concat(c) for c in sub.c))).one()
    out = []
    for text in texts:
        if not text:
            out.append(np.zeros(0, dtype="int64"))
            continue
        values = np.fromstring(text, dtype="int64", sep=",")
        if len(values) != text.count(",") + 1:
            raise ValueError("a column did not parse as integers")
        out.append(values)
    if len({len(v) for v in out}) > 1:
        raise ValueError("columns of different lengths")
    return out


#: PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00 (UTC for
#: ``timestamptz``): this many seconds after the Unix epoch.
PG_EPOCH_S = 946_684_800
#: ``-infinity`` and ``infinity`` as binary timestamps.
INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def _pg_int_columns(
    session: Session, stmt: Select[*tuple[Any, ...]]
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """:func:`int_columns` on PostgreSQL. Each row becomes one ``bytea``: its 32-bit integer
    columns as ``int4send`` (4 bytes), other integers as ``int8send`` of a BIGINT, and each
    :class:`epoch` of a timestamp column as the raw timestamp (``timestamp_send``: 8 bytes of
    microseconds since 2000-01-01), floored to whole seconds here (the same figure as
    ``floor(date_part('epoch', …))``, without computing it per row on the server).
    ``string_agg`` joins the rows into one value, fetched in binary (as text it would come
    hex-encoded, twice the size, and be decoded by the driver); numpy reads it with one record
    dtype, so the columns stay in row alignment by construction."""
    cols: list[ColumnElement[bytes]] = []
    fields: list[tuple[str, str]] = []
    timestamps: list[int | None] = []  # an epoch's ``since``; None: not a timestamp
    for i, col in enumerate(stmt.selected_columns):
        inner = col.element if isinstance(col, Label) else col
        if isinstance(inner, epoch) and (send := _timestamp_send(inner)) is not None:
            cols.append(send)
            fields.append((f"c{i}", ">i8"))
            timestamps.append(inner.since)
            continue
        # 32-bit columns as they are (a value beyond that range would fail in the database,
        # never be cut); anything else as BIGINT.
        narrow = isinstance(col.type, Integer) and not isinstance(col.type, BigInteger)
        if narrow:
            cols.append(func.int4send(cast(col, Integer), type_=LargeBinary))
        else:
            cols.append(func.int8send(cast(col, BigInteger), type_=LargeBinary))
        fields.append((f"c{i}", ">i4" if narrow else ">i8"))
        timestamps.append(None)
    packed = reduce(lambda x, y: x.op("||", return_type=LargeBinary)(y), cols)
    rows = stmt.with_only_columns(packed.label("r"), maintain_column_froms=True).subquery()
    query = select(func.string_agg(rows.c.r, literal(b"", LargeBinary), type_=LargeBinary))
    found = fetch_binary(session, query)
    blob = bytes(found[0]) if found is not None and found[0] is not None else b""
    record = np.dtype(fields)
    if len(blob) % record.itemsize:
        raise ValueError("the packed rows do not have the expected size")
    table = np.frombuffer(blob, dtype=record)
    out = []
    for (name, _), since in zip(fields, timestamps, strict=True):
        values = table[name].astype("int64")
        if since is not None:
            if len(values) and (values.min() == INT64_MIN or values.max() == INT64_MAX):
                raise ValueError("an infinite timestamp has no epoch seconds")
            # floor, as floor(date_part(...)), less the epoch's ``since``
            values = values // 1_000_000 + (PG_EPOCH_S - since)
        out.append(values)
    return out


def _timestamp_send(element: epoch) -> ColumnElement[bytes] | None:
    """The binary send of the timestamp an :class:`epoch` reads, or None when its argument is
    not a timestamp column (then the epoch is computed by the database as elsewhere)."""
    arg = element.clauses.clauses[0]
    kind = arg.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if not isinstance(kind, DateTime):
        return None
    if kind.timezone:
        return func.timestamptz_send(arg, type_=LargeBinary)
    return func.timestamp_send(arg, type_=LargeBinary)


#: A value at least this large, read on a pooled PostgreSQL connection, leaves libpq's input
#: buffer about that large for as long as the connection lives (libpq grows it to hold the
#: largest message and does not give it back; measured: +10 MB in the process after a 10 MB
#: value, freed when the connection closed). A worker's pool of such connections held tens
#: of MB after a city's dashboard (bench/ #8): the connection that read one is closed when
#: its session ends instead of going back to the pool.
LARGE_READ = 1 << 20


def fetch_binary(session: Session, query: Select[*tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """PostgreSQL: the one row of ``query`` fetched in binary on the session's connection (in
    its transaction: the same snapshot as its other queries); its connection closed, not
    pooled again, once the session ends when the row's values add up to :data:`LARGE_READ`."""
    sql, params = _driver_query(session, query)
    proxied = session.connection().connection
    driver = proxied.driver_connection
    if driver is None:  # pragma: no cover - a pooled connection always has its driver's
        raise RuntimeError("no driver connection")
    with driver.cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        found: tuple[Any, ...] | None = cursor.fetchone()
    if found is not None and sum(len(v) for v in found if v is not None) >= LARGE_READ:
        close_at_checkin(proxied)
    return found


def _driver_query(session: Session, stmt: Select[*tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    """The SQL text and parameters that SQLAlchemy would hand the driver for ``stmt`` (its bind
    processors applied, e.g. aware datetimes to naive UTC), for a query run on the driver's own
    cursor: the values are sent as parameters, never spliced into the text."""
    dialect = session.get_bind().dialect
    compiled = stmt.compile(dialect=dialect)
    state = compiled.construct_expanded_state()  # IN lists expanded, as at execution
    processors = dict(state.processors)
    for name, bind in compiled.binds.items():
        key = compiled.escaped_bind_names.get(name, name)
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.setdefault(key, process)
    params = {
        key: processors[key](value) if key in processors else value
        for key, value in state.parameters.items()
    }
    return state.statement, params


#: Booking statuses by the small integer the bookings query returns for them.
STATUSES = ("pending", "confirmed", "declined", "cancelled", "completed", "no_show")


#: A venue id and a group id packed into one integer (``venue << 32 | group``), and units and
#: a status code (``units << 3 | status``): five integers per booking to hand over instead of
#: seven. Ids are 32-bit integers and the status codes fit in three bits.
_ID_BITS, _STATUS_BITS = 32, 3
_UNKNOWN_STATUS = 2**_STATUS_BITS - 1


#: How many queries :func:`load_bookings` splits into when asked to (``parts=LOAD_PARTS``): one
#: per core, at most four.
LOAD_PARTS = max(1, min(4, os.cpu_count() or 1))


def load_bookings(
    session: Session, scope: Scope, period: Period, *, parts: int = 1
) -> pd.DataFrame:
    """Every booking of the venues in scope that overlaps the period or starts in it (a
    booking that starts in it overlaps it: bookings end after they start). The index on
    (venue, start, end, group, units, status, created) covers the query: the bookings' rows
    themselves are not read.

    ``parts`` > 1: the venues' id range is split into that many slices, each one's bookings
    read by its own query at the same time, on connections of their own (the database works
    on each while the others are read: a year of a city takes one query a second). Only for
    a session that has written nothing: the other connections see what is committed."""
    venue_group, start, end, created, units_status = _booking_columns(session, scope, period, parts)
    vid, group = venue_group >> _ID_BITS, venue_group & (2**_ID_BITS - 1)
    units, status = units_status >> _STATUS_BITS, units_status & (2**_STATUS_BITS - 1)
    if (status >= len(STATUSES)).any():
        raise ValueError("a booking has an unknown status")
    # Each group's unit (-1: none), looked up here: a join per booking costs more.
    gid, gunit = int_columns(session, select(Group.id, func.coalesce(Group.unit_id, -1)))
    unit_of = np.full(int(max(gid.max(initial=0), group.max(initial=0))) + 1, -1, dtype="int64")
    unit_of[gid] = gunit
    unit = unit_of[group]
    t0 = math.floor(period.start_at.timestamp())
    return pd.DataFrame(
        {
            "venue_id": vid,
            "group_unit_id": np.where(unit < 0, np.nan, unit.astype("float64")),
            "start": start + t0,
            "end": end + t0,
            "units": units,
            "status": pd.Categorical.from_codes(status, STATUSES),
            "created": created + t0,
        }
    )


#: The statuses of a booking that was held (its lead time counts: :func:`measures.event_counts`).
HELD = ("confirmed", "completed", "no_show")


#: Venues whose lead times are read by one query (:func:`load_lead_times`).
LEAD_VENUES = 2500


def load_lead_times(
    session: Session, scope: Scope, period: Period, venue_ids: Sequence[int] | None = None
) -> pd.DataFrame:
    """The lead times of the bookings of the venues in scope that start in the period and were
    held (:func:`measures.held_leads`' frame: ``venue_id``, ``lead_days``), two or three
    integers a booking, read through the covering index of :func:`load_bookings`.

    ``venue_ids`` (the scope's venues, when the caller has them): read by ranges of
    :data:`LEAD_VENUES` of them, each value handed over a few MB rather than one of 9 MB for
    a city's year (the size the connection's buffer then keeps: :data:`LARGE_READ`)."""
    t0 = math.floor(period.start_at.timestamp())
    start, created = epoch(Booking.start_at, t0), epoch(Booking.created_at, t0)
    # PostgreSQL hands a bare column's timestamps over in binary, floored here
    # (:func:`_pg_int_columns`), where their difference would be computed per row with
    # date_part; SQLite computes the difference faster than it writes a second column's text.
    postgresql = session.get_bind().dialect.name == "postgresql"
    columns = (start, created) if postgresql else (start - created,)
    stmt = (
        select(Booking.venue_id, *columns)
        .join(Venue, Booking.venue_id == Venue.id)
        .where(
            *_venue_filter(scope),  # type: ignore[arg-type]
            Booking.start_at >= period.start_at,
            Booking.start_at < period.end_at,
            Booking.status.in_(HELD),
        )
    )
    ids = np.sort(np.asarray(venue_ids if venue_ids is not None else [], dtype="int64"))
    windows: list[tuple[int, int] | None] = [
        (int(ids[i]), int(ids[min(i + LEAD_VENUES, len(ids)) - 1]))
        for i in range(0, len(ids), LEAD_VENUES)
    ]
    parts = []
    for window in windows if len(windows) > 1 else [None]:
        part = stmt if window is None else stmt.where(Booking.venue_id.between(*window))
        vid, *instants = int_columns(session, part)
        if postgresql:
            instants[0] -= instants[1]  # in place
        parts.append((vid, instants[0] / 86400))
    vid, lead_days = parts[0] if len(parts) == 1 else map(np.concatenate, zip(*parts, strict=True))
    return pd.DataFrame({"venue_id": vid, "lead_days": lead_days}, copy=False)


def _booking_columns(
    session: Session, scope: Scope, period: Period, parts: int
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """:func:`load_bookings`' five packed columns, from one query or ``parts`` at once."""
    status_code = case(
        {s: i for i, s in enumerate(STATUSES)}, value=Booking.status, else_=_UNKNOWN_STATUS
    )
    t0 = math.floor(period.start_at.timestamp())  # instants handed over relative to it
    stmt = (
        select(
            cast(Booking.venue_id, BigInteger) * literal(2**_ID_BITS, BigInteger)
            + Booking.group_id,
            epoch(Booking.start_at, t0),
            epoch(Booking.end_at, t0),
            epoch(Booking.created_at, t0),
            Booking.units * 2**_STATUS_BITS + status_code,
        )
        .join(Venue, Booking.venue_id == Venue.id)
        .where(
            *_venue_filter(scope),  # type: ignore[arg-type]
            Booking.start_at < period.end_at,
            Booking.end_at > period.start_at,
        )
    )
    bind = session.get_bind()
    if parts <= 1 or not isinstance(bind, Engine):
        return int_columns(session, stmt)
    in_scope = _venue_filter(scope)
    lo, hi = session.execute(
        select(func.min(Venue.id), func.max(Venue.id)).where(*in_scope)  # type: ignore[arg-type]
    ).one()
    if lo is None or hi - lo < parts:
        return int_columns(session, stmt)
    edges = [lo + (hi + 1 - lo) * k // parts for k in range(parts + 1)]
    slices = [stmt.where(Venue.id >= a, Venue.id < b) for a, b in itertools.pairwise(edges)]

    def read(part: Select[*tuple[Any, ...]]) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
        with Session(bind) as own:
            return int_columns(own, part)

    with ThreadPoolExecutor(max_workers=parts - 1) as pool:
        others = [pool.submit(read, part) for part in slices[1:]]
        first = int_columns(session, slices[0])
        found = [first, *(f.result() for f in others)]
    return [np.concatenate(columns) for columns in zip(*found, strict=True)]


def week_windows(period: Period) -> list[tuple[str, int, int]]:
    return [
        (f"{monday:%m-%d}", int(a.timestamp()), int(b.timestamp()))
        for monday, a, b in period.weeks()
    ]


def type_label(key: str) -> str:
    """A venue type's label in the current language (the key itself if it names no type)."""
    try:
        member: VenueType | None = VenueType(key)  # a key, as stored: no parsing
    except ValueError:
        member = VenueType.parse(key) if key else None  # type: ignore[assignment]
    return member.label(lang()) if member is not None else key


def type_labels(keys: pd.Series) -> pd.Series:
    """:func:`type_label` of each key, computed once per distinct key (ten thousand venues
    have a dozen types)."""
    return keys.map({k: type_label(str(k)) for k in keys.unique()})


def tz_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def load_map_venues(session: Session, committee_id: int) -> list[MapVenue]:
    """Every public venue of the committee (:func:`policy.venues_public`: published, not
    retired, unit admitted), for the printed map: public information, whoever prints it."""
    rows = session.execute(
        select(Venue, Unit.name)
        .join(Unit, Venue.unit_id == Unit.id)
        .where(Venue.committee_id == committee_id, venues_public())
        .order_by(Venue.id)
    ).all()
    return [MapVenue(v.name, u, v.type, type_label(v.type), v.phone, v.lon, v.lat) for v, u in rows]


def load_areas(
    session: Session, committee_id: int
) -> tuple[BaseGeometry | None, list[tuple[str, BaseGeometry]]]:
    """The committee's district polygon (or None) and its streets by name (WGS-84)."""
    areas = session.scalars(select(Area).where(Area.committee_id == committee_id)).all()
    district = next((shape(json.loads(a.geometry)) for a in areas if a.level == "district"), None)
    streets = sorted(
        ((a.name, shape(json.loads(a.geometry))) for a in areas if a.level == "street"),
        key=lambda s: s[0],
    )
    return district, streets
