"""What the booking engine answers: occupied times, alternatives, a series' outcomes, and the
refusal of an all-or-nothing series. Plain values, below the engine and the availability
search that both build them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mapservice.core.errors import DomainError
from mapservice.core.i18n import _
from mapservice.models import Booking


@dataclass(frozen=True)
class Occupied:
    """An occupied interval; ``group`` and ``booking_id`` only for those allowed to see."""

    start: datetime
    end: datetime
    units: int
    booking_id: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class VenueOption:
    venue_id: int
    name: str
    unit: str
    distance_m: float


@dataclass
class Alternatives:
    """Nearest free windows of the same length here, and nearest similar free venues."""

    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    venues: list[VenueOption] = field(default_factory=list)


@dataclass
class Outcome:
    """What happened to one occurrence of a series."""

    start: datetime
    end: datetime
    booking: Booking | None = None
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        """No rule or capacity problem (booked, unless the whole series was rejected)."""
        return self.error is None


@dataclass
class SeriesResult:
    series_id: str
    outcomes: list[Outcome]

    @property
    def booked(self) -> list[Booking]:
        return [o.booking for o in self.outcomes if o.booking is not None]


class SeriesRejected(DomainError):
    """All-or-nothing series with at least one occurrence refused: nothing was written."""

    status = 409

    def __init__(self, outcomes: list[Outcome]) -> None:
        bad = sum(1 for o in outcomes if o.error is not None)
        super().__init__(
            "series_rejected",
            _(
                "%(n)s of %(total)s dates cannot be booked; nothing was booked.",
                n=bad,
                total=len(outcomes),
            ),
        )
        self.outcomes = outcomes
