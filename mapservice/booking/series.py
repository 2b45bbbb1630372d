"""Series: the occurrences of a daily / weekly / every-two-weeks booking (keeping its
wall-clock time across a clock change), booking them all or what can be booked, and the
group's own bookings a new request would overlap (a double tap, asked about first)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from mapservice.booking.lifecycle import ACTIVE, notify_new_request
from mapservice.booking.loading import venue_tz
from mapservice.booking.request import BookingRequest
from mapservice.booking.results import Outcome, SeriesRejected, SeriesResult
from mapservice.booking.rows import aware
from mapservice.booking.write import book_request
from mapservice.core.errors import BookingConflict, NotAllowed, RuleViolation, Violation
from mapservice.core.i18n import _
from mapservice.core.opening import local_instant
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, Group, User
from mapservice.policy import get_venue

MAX_OCCURRENCES = 104


def occurrences(
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    freq: str,
    *,
    count: int | None = None,
    until: date | None = None,
) -> list[tuple[datetime, datetime, bool]]:
    """The series' occurrences keeping the first one's wall-clock time in ``tz`` (so 19:00
    stays 19:00 across a clock change). The flag is False when that wall-clock time does not
    exist on that day (the skipped hour)."""
    step = {"daily": 1, "weekly": 7, "biweekly": 14}.get(freq)
    if step is None:
        raise ValueError(f"unknown frequency {freq!r}")
    if (count is None) == (until is None):
        raise ValueError("give either count or until")
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    s_min = local_start.hour * 60 + local_start.minute
    span_days = (local_end.date() - local_start.date()).days
    e_min = local_end.hour * 60 + local_end.minute
    out = []
    i = 0
    while True:
        day = local_start.date() + timedelta(days=i * step)
        if (
            (count is not None and i >= count)
            or (until is not None and day > until)
            or i >= MAX_OCCURRENCES
        ):
            break
        s = local_instant(day, s_min, tz)
        e = local_instant(day + timedelta(days=span_days), e_min, tz)
        exists = (s.hour * 60 + s.minute) == s_min and (e.hour * 60 + e.minute) == e_min
        out.append((s, e, exists))
        i += 1
    return out


def own_overlaps(
    session: Session,
    group_id: int,
    venue_id: int,
    windows: Sequence[tuple[datetime, datetime]],
    now: datetime | None = None,
) -> list[Booking]:
    """The group's active bookings at the venue (pending ones still holding their slot) that
    overlap any of ``windows``. Booking the same time twice is allowed (two courts for one
    tournament) but is more often a double tap: the booking form asks first."""
    now = aware(now)
    if not windows:
        return []
    first = min(s for s, _e in windows)
    last = max(e for _s, e in windows)
    found = session.scalars(
        select(Booking)
        .where(
            Booking.group_id == group_id,
            Booking.venue_id == venue_id,
            Booking.status.in_(ACTIVE),
            or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now),
            Booking.start_at < last,
            Booking.end_at > first,
            Booking.end_at > now,
        )
        .options(selectinload(Booking.allocations))
        .order_by(Booking.start_at, Booking.id)
    )
    return [b for b in found if any(b.start_at < e and s < b.end_at for s, e in windows)]


def book_series(
    session: Session,
    actor: User | None,
    venue_id: int,
    group_id: int,
    start: datetime,
    end: datetime,
    *,
    freq: str,
    count: int | None = None,
    until: date | None = None,
    policy: str = "all_or_nothing",
    units: int = 1,
    purpose: str = "",
    headcount: int | None = None,
    now: datetime | None = None,
) -> SeriesResult:
    """Book a daily / weekly / every-two-weeks series: see :func:`book_series_request`."""
    request = BookingRequest(venue_id, group_id, start, end, units, purpose, headcount)
    return book_series_request(
        session, actor, request, freq=freq, count=count, until=until, policy=policy, now=now
    )


def book_series_request(
    session: Session,
    actor: User | None,
    request: BookingRequest,
    *,
    freq: str,
    count: int | None = None,
    until: date | None = None,
    policy: str = "all_or_nothing",
    now: datetime | None = None,
) -> SeriesResult:
    """Book ``request`` as the first of a daily / weekly / every-two-weeks series.
    ``all_or_nothing``: every occurrence or none (SeriesRejected listing each);
    ``skip_conflicts``: book what can be booked and report the rest.
    Either way the result lists every occurrence and what happened to it."""
    if policy not in ("all_or_nothing", "skip_conflicts"):
        raise ValueError(f"unknown policy {policy!r}")
    now = aware(now)
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    venue = get_venue(session, actor, request.venue_id)
    if count is not None and not 1 <= count <= MAX_OCCURRENCES:
        raise RuleViolation(
            [
                Violation(
                    "series_count",
                    "count",
                    _("A series has 1 to %(max)s dates.", max=MAX_OCCURRENCES),
                )
            ]
        )
    series_id = str(uuid.uuid4())
    outcomes: list[Outcome] = []
    savepoint = session.begin_nested()
    tz = venue_tz(venue)
    for s, e, exists in occurrences(request.start, request.end, tz, freq, count=count, until=until):
        if not exists:
            outcomes.append(
                Outcome(
                    s,
                    e,
                    error=RuleViolation(
                        [
                            Violation(
                                "skipped_hour",
                                "start",
                                _(
                                    "That wall-clock time does not exist on this day"
                                    " (the clocks go forward)."
                                ),
                            )
                        ]
                    ),
                )
            )
            continue
        try:
            with session.begin_nested():
                at = replace(request, start=s, end=e, series_id=series_id)
                booking = book_request(session, actor, at, now=now, with_alternatives=False)
            outcomes.append(Outcome(s, e, booking=booking))
        except (RuleViolation, BookingConflict) as exc:
            outcomes.append(Outcome(s, e, error=exc))
    if policy == "all_or_nothing" and any(o.error is not None for o in outcomes):
        savepoint.rollback()
        for o in outcomes:
            if o.booking is not None and o.booking in session:
                # Written by one Core statement on PostgreSQL, the booking joined the session
                # as a loaded row, which a rollback expires but does not expunge.
                session.expunge(o.booking)
            o.booking = None  # rolled back: those without an error could have been booked
        raise SeriesRejected(outcomes)
    savepoint.commit()
    booked = [o.booking for o in outcomes if o.booking is not None]
    if booked and booked[0].status == BookingStatus.PENDING.value:
        group = session.get(Group, request.group_id)
        notify_new_request(
            session,
            venue.unit_id,
            booked[0].id,
            venue.name,
            booked[0].start_at,
            group.name if group is not None else "",
            request.caller_name,
            request.caller_phone,
            count=len(booked),
        )
    return SeriesResult(series_id, outcomes)
