"""What a booking request asks for, as one value handed from the edge through the two steps
(:mod:`~mapservice.booking.prepare`, :mod:`~mapservice.booking.write`) instead of the same
parameters listed in every signature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """``units`` of venue ``venue_id`` for group ``group_id`` over ``[start, end)``; a
    series' occurrences share ``series_id``; a phone booking names its caller."""

    venue_id: int
    group_id: int
    start: datetime
    end: datetime
    units: int = 1
    purpose: str = ""
    headcount: int | None = None
    series_id: str | None = None
    # A booking taken by phone: who called (name, phone), recorded on the booking.
    caller_name: str | None = None
    caller_phone: str | None = None
