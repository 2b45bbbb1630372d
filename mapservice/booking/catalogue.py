"""What an availability search keeps of venues in each process: each venue's place, type,
capacity, who sees it, its committee's time zone, weekly hours and closures — never its
bookings, which a search reads from the database every time.

It holds as long as the database's search epoch (:class:`mapservice.models.SearchEpoch`,
migration 0023) has the token it was read under: the database replaces the token on every
change to a venue, its hours or closures, a unit or a committee, in the writing transaction —
on PostgreSQL at its commit (a deferred constraint trigger: no writer waits on another for the
token's row while it still takes other locks), so the new token becomes visible with the
data, never before. Each search reads the token first (one row by its key), in its own
transaction, and reads everything again when it differs: what is read is then at least as new
as the token it is kept under, so a search never answers from venues older than what its
transaction sees. A transaction that has itself changed those tables reads no token on
PostgreSQL until it commits (:func:`mapservice.models.search.token_seen`) and so answers from
the database, keeping nothing. With no token (the table emptied) nothing is kept.

Reading a city's venues costs a few hundred milliseconds once per change; a search then reads
only the token and the allocations of the venues in its circle (bench/booking_bench.py, #2).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from mapservice.core.geo import EARTH_RADIUS_M
from mapservice.models import Closure, Committee, OpeningHours, SearchEpoch, Unit, Venue
from mapservice.models.search import token_seen
from mapservice.policy import venue_is_open

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Entry:
    """One venue as a search sees it. ``hours_raw``: its weekly opening ranges as one text
    (``weekday:start-end``, sorted, joined by commas), what
    :func:`mapservice.booking.availability.free_ids` reads."""

    id: int
    committee_id: int
    unit_id: int
    street_id: int | None
    type: str
    lon: float
    lat: float
    capacity_units: int
    published: bool
    retired: bool
    unit_status: str | None
    timezone: str
    hours_raw: str
    closures: tuple[Interval, ...]
    #: The latitude in radians and its cosine, as :func:`mapservice.core.geo.haversine_m`
    #: computes them of its second point (the search measures distances with them).
    lat_r: float = field(init=False, repr=False, compare=False)
    cos_lat: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lat_r", math.radians(self.lat))
        object.__setattr__(self, "cos_lat", math.cos(self.lat_r))

    @property
    def public(self) -> bool:
        """Open to everyone (:func:`mapservice.policy.venue_is_open`)."""
        return venue_is_open(self.published, self.retired, self.unit_status)

    def closed_during(self, start: datetime, end: datetime) -> bool:
        """Whether a closure meets ``[start, end)`` (then it is not open throughout)."""
        return any(a < end and b > start for a, b in self.closures)


class _Typed:
    """The venues of one type, sorted by latitude: their latitudes (for the band), and what
    narrowing them near a point reads, one tuple by position (a loop unpacking tuples costs
    half one indexing parallel lists): longitude (degrees), the capacity if the venue is
    public and not retired (else -1), the place as a unit vector from the Earth's centre
    (the cosine of the angle between two places is their vectors' dot product) and the
    entry. Plain Python: on a band of a hundred venues, numpy's per-call cost (paid cold,
    between other work) was twice the loop's."""

    def __init__(self, entries: list[Entry]) -> None:
        entries.sort(key=lambda e: (e.lat, e.id))
        self.entries = entries
        self.lats = [e.lat for e in entries]
        self.rows = [
            (
                e.lon,
                e.capacity_units if e.public and not e.retired else -1,
                e.cos_lat * math.cos(lon),
                e.cos_lat * math.sin(lon),
                math.sin(e.lat_r),
                e,
            )
            for e in entries
            for lon in (math.radians(e.lon),)
        ]

    def band(self, lat_lo: float, lat_hi: float) -> tuple[int, int]:
        """The positions of latitudes within ``[lat_lo, lat_hi]``."""
        return bisect_left(self.lats, lat_lo), bisect_right(self.lats, lat_hi)


@dataclass
class Catalogue:
    """Every venue of one database, under one token; by type, sorted by latitude."""

    token: int
    entries: dict[int, Entry]
    _by_type: dict[str, _Typed] = field(default_factory=dict)

    def __post_init__(self) -> None:
        groups: dict[str, list[Entry]] = defaultdict(list)
        for e in self.entries.values():
            groups[e.type].append(e)
        self._by_type = {vtype: _Typed(entries) for vtype, entries in groups.items()}

    def _types(self, types: Sequence[str]) -> list[_Typed]:
        return [t for v in dict.fromkeys(types or self._by_type) if (t := self._by_type.get(v))]

    def in_box(
        self,
        types: Sequence[str],
        lat_lo: float,
        lat_hi: float,
        lon_lo: float,
        lon_hi: float,
    ) -> list[Entry]:
        """The venues of ``types`` (any type when empty) inside the box, bounds included."""
        out: list[Entry] = []
        for typed in self._types(types):
            lo, hi = typed.band(lat_lo, lat_hi)
            for i in range(lo, hi):
                e = typed.entries[i]
                if lon_lo <= e.lon <= lon_hi:
                    out.append(e)
        return out

    def public_in_box(
        self,
        types: Sequence[str],
        box: tuple[float, float, float, float],
        least: int,
        near: tuple[float, float],
        limit_m: float,
    ) -> list[Entry]:
        """:meth:`in_box` (``box``: lat_lo, lat_hi, lon_lo, lon_hi) narrowed to the public
        venues, not retired, of at least ``least`` units, no farther than a little over
        ``limit_m`` from ``near`` (lon, lat) by the angle between their places (a dot
        product, against the radius's cosine): the caller measures the exact distance of
        those returned."""
        lat_lo, lat_hi, lon_lo, lon_hi = box
        lon0, lat0 = math.radians(near[0]), math.radians(near[1])
        cos0 = math.cos(lat0)
        px, py, pz = cos0 * math.cos(lon0), cos0 * math.sin(lon0), math.sin(lat0)
        # Within the angle of the radius (and the slack): the cosine at least its cosine.
        least_cos = math.cos(min(math.pi, (limit_m + _SLACK_M) / EARTH_RADIUS_M))
        out: list[Entry] = []
        for typed in self._types(types):
            lo, hi = typed.band(lat_lo, lat_hi)
            for lon, cap, x, y, z, e in typed.rows[lo:hi]:
                if (
                    lon_lo <= lon <= lon_hi
                    and cap >= least
                    and x * px + y * py + z * pz >= least_cos
                ):
                    out.append(e)
        return out


#: How much farther than the radius the approximate distance may put a venue and still have
#: its exact distance measured: far more than the two computations can differ.
_SLACK_M = 1.0


# By database kind (:func:`mapservice.models.search.token_seen`).
_TOKEN = {d: select(token_seen(d)).where(SearchEpoch.id == 1) for d in ("sqlite", "postgresql")}
_VENUES = (
    select(
        Venue.id,
        Venue.committee_id,
        Venue.unit_id,
        Venue.street_id,
        Venue.type,
        Venue.lon,
        Venue.lat,
        Venue.capacity_units,
        Venue.published,
        Venue.retired,
        Unit.status,
        Committee.timezone,
    )
    .join(Committee, Committee.id == Venue.committee_id)
    .outerjoin(Unit, Unit.id == Venue.unit_id)
)
_HOURS = select(
    OpeningHours.venue_id, OpeningHours.weekday, OpeningHours.start_min, OpeningHours.end_min
)
_CLOSURES = select(Closure.venue_id, Closure.start_at, Closure.end_at)

# By database (its URL): the catalogue last read there.
_KEPT: dict[str, Catalogue] = {}
_LOADING = Lock()
# Each engine's URL as text (rendering it cost a tenth of a kept search).
_URLS: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


def engine_key(engine: Engine) -> str:
    """What keeps per database are keyed by (the engine's URL, computed once per engine)."""
    key = _URLS.get(engine)
    if key is None:
        key = _URLS[engine] = str(engine.url)
    return key


def _load(conn: Connection, token: int) -> Catalogue:
    hours: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for vid, weekday, a, b in conn.execute(_HOURS):
        hours[vid].append((weekday, a, b))
    closures: dict[int, list[Interval]] = defaultdict(list)
    for vid, since, until in conn.execute(_CLOSURES):
        closures[vid].append((since, until))
    texts: dict[str, str] = {}  # one string per weekly pattern
    entries: dict[int, Entry] = {}
    for r in conn.execute(_VENUES):
        raw = ",".join(f"{w}:{a}-{b}" for w, a, b in sorted(hours.get(r.id, ())))
        entries[r.id] = Entry(
            r.id,
            r.committee_id,
            r.unit_id,
            r.street_id,
            r.type,
            r.lon,
            r.lat,
            r.capacity_units,
            bool(r.published),
            bool(r.retired),
            r.status,
            r.timezone,
            texts.setdefault(raw, raw),
            tuple(sorted(closures.get(r.id, ()))),
        )
    return Catalogue(token, entries)


def forget(engine: Engine) -> None:
    """Drop what is kept of ``engine``'s database: its next reader reads every venue again
    (a benchmark times that cold read)."""
    _KEPT.pop(engine_key(engine), None)


def kept(session: Session) -> Catalogue | None:
    """The catalogue last read from ``session``'s database, whatever its token (check it:
    :func:`mapservice.booking.availability.held_units` reads the token with the allocations)."""
    return _KEPT.get(engine_key(session.connection().engine))


def token(session: Session) -> int | None:
    """The database's search epoch token as ``session``'s transaction sees it."""
    conn = session.connection()
    return conn.execute(_TOKEN[conn.dialect.name]).scalar()


def current(session: Session) -> Catalogue | None:
    """The venues as ``session``'s transaction sees them: kept, or read again when the
    database's token changed since (read first, so what is read is at least as new as the
    token it is kept under). None when the database has no token."""
    conn = session.connection()
    token = conn.execute(_TOKEN[conn.dialect.name]).scalar()
    if token is None:
        return None
    key = engine_key(conn.engine)
    kept = _KEPT.get(key)
    if kept is not None and kept.token == token:
        return kept
    with _LOADING:
        kept = _KEPT.get(key)
        if kept is None or kept.token != token:
            kept = _KEPT[key] = _load(conn, token)
    return kept
