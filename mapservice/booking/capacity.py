"""Capacity by unit: which of a venue's parallel units (court 1, 2, 3…) are free, and the
occupancy timeline. Reads only; the engine holds the lock when it matters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, literal, or_, select
from sqlalchemy.orm import Session

from mapservice.core.vocab import BookingStatus
from mapservice.db import UTCDateTime
from mapservice.models import Booking, BookingAllocation

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Held:
    """One allocation: unit ``unit_no`` of a venue held by ``booking_id`` over [start, end)."""

    venue_id: int
    unit_no: int
    start: datetime
    end: datetime
    booking_id: int


def live_condition(now: datetime):  # type: ignore[no-untyped-def]
    """Bookings that hold capacity at ``now``: confirmed, or pending with an unexpired hold."""
    return or_(
        Booking.status.in_(
            (
                BookingStatus.CONFIRMED.value,
                BookingStatus.COMPLETED.value,
                BookingStatus.NO_SHOW.value,
            )
        ),
        and_(
            Booking.status == BookingStatus.PENDING.value,
            or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now),
        ),
    )


def held(
    session: Session,
    venue_ids: Sequence[int],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    exclude_booking_id: int | None = None,
) -> list[Held]:
    """Allocations of ``venue_ids`` overlapping ``[start, end)`` that still hold capacity
    (one query for any number of venues)."""
    if not venue_ids:
        return []
    stmt = (
        select(
            BookingAllocation.venue_id,
            BookingAllocation.unit_no,
            BookingAllocation.start_at,
            BookingAllocation.end_at,
            BookingAllocation.booking_id,
        )
        .join(Booking, Booking.id == BookingAllocation.booking_id)
        .where(
            BookingAllocation.venue_id.in_(venue_ids),
            _overlaps(session, start, end),
            live_condition(now),
        )
    )
    if exclude_booking_id is not None:
        stmt = stmt.where(BookingAllocation.booking_id != exclude_booking_id)
    return [Held(*row) for row in session.execute(stmt)]


def _overlaps(session: Session, start: datetime, end: datetime) -> ColumnElement[bool]:
    """Allocations meeting ``[start, end)``. On PostgreSQL as a range overlap, which the
    exclusion constraint's GiST index answers and the planner estimates well; the two
    comparisons look unselective to it, and it plans a parallel scan whose start-up alone
    costs ~10 ms (bench/booking_bench.py, #2). Same rows either way."""
    plain = and_(BookingAllocation.start_at < end, BookingAllocation.end_at > start)
    if session.get_bind().dialect.name != "postgresql" or not start < end:
        return plain
    stored = func.tsrange(BookingAllocation.start_at, BookingAllocation.end_at, "[)")
    asked = func.tsrange(literal(start, UTCDateTime()), literal(end, UTCDateTime()), "[)")
    return stored.bool_op("&&")(asked)


def free_unit_numbers(
    capacity: int, holds: Iterable[Held], start: datetime, end: datetime
) -> list[int]:
    """Units free for the whole of ``[start, end)``, lowest number first."""
    busy = {h.unit_no for h in holds if h.start < end and start < h.end}
    return [n for n in range(1, capacity + 1) if n not in busy]


def by_venue(holds: Iterable[Held]) -> dict[int, list[Held]]:
    out: dict[int, list[Held]] = defaultdict(list)
    for h in holds:
        out[h.venue_id].append(h)
    return out


def timeline(
    capacity: int, holds: Sequence[Held], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int]]:
    """``[start, end)`` cut where occupancy changes: (from, to, units taken) pieces."""
    points = {start, end}
    for h in holds:
        if h.start < end and start < h.end:
            points.add(max(h.start, start))
            points.add(min(h.end, end))
    cuts = sorted(points)
    out: list[tuple[datetime, datetime, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        taken = len({h.unit_no for h in holds if h.start < b and a < h.end})
        if out and out[-1][2] == taken and out[-1][1] == a:
            out[-1] = (out[-1][0], b, taken)
        else:
            out.append((a, b, min(taken, capacity)))
    return out


def release(session: Session, booking: Booking) -> None:
    """Give back every unit a booking holds (cancel, decline, expiry)."""
    session.execute(delete(BookingAllocation).where(BookingAllocation.booking_id == booking.id))
    session.expire(booking, ["allocations"])
