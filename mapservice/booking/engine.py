"""The booking engine's public face: what the edges, the operations and the tests call, one
import away. Each function lives in the module of its concern:

- :mod:`~mapservice.booking.rows` — the venue and group a booking reads, in one statement;
- :mod:`~mapservice.booking.request` — what a booking request asks for, one value;
- :mod:`~mapservice.booking.prepare` — the checks that need no lock;
- :mod:`~mapservice.booking.locking` — the venue's lock and the stamp read with it;
- :mod:`~mapservice.booking.write` — the one locked check-and-write, for book and reschedule;
- :mod:`~mapservice.booking.series` — series and the group's own overlapping bookings;
- :mod:`~mapservice.booking.lifecycle` — confirm, decline, cancel, check-in, expiry;
- :mod:`~mapservice.booking.alternatives` — what a refusal proposes, computed after the lock;
- :mod:`~mapservice.booking.results` — the plain values answered.
"""

from __future__ import annotations

from mapservice.booking.lifecycle import (
    ACTIVE,
    cancel,
    cancel_preview,
    check_in,
    confirm,
    decline,
    expire_holds,
    managed_booking,
    mark_no_shows,
    notify,
    venues_checking_in,
)
from mapservice.booking.loading import venue_tz
from mapservice.booking.locking import lock_venue
from mapservice.booking.prepare import Prepared, prepare
from mapservice.booking.request import BookingRequest
from mapservice.booking.results import (
    Alternatives,
    Occupied,
    Outcome,
    SeriesRejected,
    SeriesResult,
    VenueOption,
)
from mapservice.booking.rows import venue_and_rules
from mapservice.booking.series import (
    MAX_OCCURRENCES,
    book_series,
    book_series_request,
    occurrences,
    own_overlaps,
)
from mapservice.booking.write import book, book_prepared, book_request, reschedule

__all__ = [
    "ACTIVE",
    "MAX_OCCURRENCES",
    "Alternatives",
    "BookingRequest",
    "Occupied",
    "Outcome",
    "Prepared",
    "SeriesRejected",
    "SeriesResult",
    "VenueOption",
    "book",
    "book_prepared",
    "book_request",
    "book_series",
    "book_series_request",
    "cancel",
    "cancel_preview",
    "check_in",
    "confirm",
    "decline",
    "expire_holds",
    "lock_venue",
    "managed_booking",
    "mark_no_shows",
    "notify",
    "occurrences",
    "own_overlaps",
    "prepare",
    "reschedule",
    "venue_and_rules",
    "venue_tz",
    "venues_checking_in",
]
