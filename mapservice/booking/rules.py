"""The booking rules as pure checks over plain values.

Each rule yields a :class:`~mapservice.core.errors.Violation` with a stable code, the field it
concerns and a translated message that names the rule and its limit, so a person can act on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from mapservice.core.errors import Violation
from mapservice.core.hours import OpeningRange, fmt_min
from mapservice.core.i18n import _
from mapservice.core.opening import Interval, is_open_weekly, open_intervals, weekday_spans


@dataclass(frozen=True)
class VenueRules:
    """What the engine needs to know about a venue to judge a request."""

    name: str
    tz: ZoneInfo
    capacity_units: int
    slot_minutes: int
    min_duration_minutes: int
    max_duration_minutes: int
    max_days_ahead: int
    min_notice_minutes: int
    max_headcount: int | None
    weekly_quota_hours: int | None
    ranges: Sequence[OpeningRange]
    closures: Sequence[tuple[datetime, datetime, str]] = field(default_factory=tuple)
    bookable: bool = True  # published and not retired

    @cached_property
    def spans(self) -> dict[int, tuple[tuple[int, int], ...]]:
        """Each weekday's opening ranges merged (:func:`weekday_spans`), computed once per
        rules: the alternatives check a hundred windows against the same venue's."""
        return weekday_spans(tuple(self.ranges))


@dataclass(frozen=True)
class Request:
    start: datetime
    end: datetime
    units: int = 1
    headcount: int | None = None


def _hm(dt: datetime, tz: ZoneInfo, *, end: bool = False) -> str:
    """Local HH:MM; an interval ending at midnight ends at 24:00 (not 00:00)."""
    local = dt.astimezone(tz)
    if end and (local.hour, local.minute) == (0, 0):
        return "24:00"
    return f"{local:%H:%M}"


def _local(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def check(
    req: Request,
    venue: VenueRules,
    now: datetime,
    *,
    may_book: bool = True,
    group_active: bool = True,
    quota_used_minutes: float = 0.0,
    exempt: bool = False,
    group_name: str = "",
) -> list[Violation]:
    """Every rule the request breaks (empty when it may go ahead, capacity permitting).

    ``exempt`` (the owning unit entering a booking itself) lifts the notice, days-ahead and
    quota limits, which protect the owner, not the venue. ``group_name``: the group the
    booking is for, named in the messages about it (a secretary booking for a caller's group
    must not read "your group")."""
    v: list[Violation] = []
    tz = venue.tz
    if not venue.bookable:
        v.append(Violation("venue_inactive", "venue", _("This venue is not open for booking.")))
        return v
    if not group_active:
        v.append(
            Violation(
                "group_inactive",
                "group",
                _("This group (or its unit) is not active and cannot book."),
            )
        )
        return v
    if not may_book:
        v.append(
            Violation(
                "not_allowed",
                "group",
                _(
                    "%(group)s may not book this venue (see 'who may book').",
                    group=group_name,
                )
                if group_name
                else _("Your group may not book this venue (see 'who may book')."),
            )
        )
    if req.start.tzinfo is None or req.end.tzinfo is None:
        raise ValueError("aware datetimes required")
    if req.end <= req.start:
        v.append(Violation("end_before_start", "end", _("The end must be after the start.")))
        return v
    if not 1 <= req.units <= venue.capacity_units:
        v.append(
            Violation(
                "units",
                "units",
                _(
                    "You can take 1 to %(max)s of this venue's parallel units.",
                    max=venue.capacity_units,
                ),
            )
        )
    minutes = (req.end.astimezone(UTC) - req.start.astimezone(UTC)).total_seconds() / 60
    slot = venue.slot_minutes
    for name, instant in (("start", req.start), ("end", req.end)):
        local = instant.astimezone(tz)
        if (local.hour * 60 + local.minute) % slot or local.second or local.microsecond:
            v.append(
                Violation(
                    "misaligned",
                    name,
                    _(
                        "Bookings here start and end on %(slot)s-minute slots (e.g. %(example)s).",
                        slot=slot,
                        example=fmt_min((local.hour * 60 + local.minute) // slot * slot),
                    ),
                )
            )
            break
    if minutes < venue.min_duration_minutes:
        v.append(
            Violation(
                "too_short",
                "end",
                _("The minimum booking here is %(min)s minutes.", min=venue.min_duration_minutes),
            )
        )
    if minutes > venue.max_duration_minutes:
        v.append(
            Violation(
                "too_long",
                "end",
                _("The maximum booking here is %(max)s minutes.", max=venue.max_duration_minutes),
            )
        )
    if req.headcount is not None and venue.max_headcount and req.headcount > venue.max_headcount:
        v.append(
            Violation(
                "headcount",
                "headcount",
                _("This venue takes at most %(max)s people.", max=venue.max_headcount),
            )
        )
    closures: list[Interval] = [(a, b) for a, b, _r in venue.closures]
    clash = next((c for c in venue.closures if c[0] < req.end and req.start < c[1]), None)
    if clash is not None:
        v.append(
            Violation(
                "closed",
                "start",
                _(
                    "The venue is closed from %(start)s to %(end)s (%(reason)s).",
                    start=_local(clash[0], tz),
                    end=_local(clash[1], tz),
                    reason=clash[2] or _("closure"),
                ),
            )
        )
    elif not is_open_weekly(venue.ranges, req.start, req.end, tz, venue.spans):  # no closure
        day = req.start.astimezone(tz)
        day_start = day.replace(hour=0, minute=0, second=0, microsecond=0)
        hours = open_intervals(venue.ranges, closures, day_start, day_start + timedelta(days=1), tz)
        text = ", ".join(f"{_hm(a, tz)}-{_hm(b, tz, end=True)}" for a, b in hours) or _("closed")
        v.append(
            Violation(
                "outside_hours",
                "start",
                _("Outside opening hours; that day the venue is open %(hours)s.", hours=text),
            )
        )
    if req.start < now:
        v.append(Violation("in_past", "start", _("The start is in the past.")))
    elif not exempt:
        if req.start - now < timedelta(minutes=venue.min_notice_minutes):
            v.append(
                Violation(
                    "notice",
                    "start",
                    _(
                        "Book at least %(min)s minutes before the start.",
                        min=venue.min_notice_minutes,
                    ),
                )
            )
        if req.start - now > timedelta(days=venue.max_days_ahead):
            v.append(
                Violation(
                    "too_far_ahead",
                    "start",
                    _("Bookings open %(days)s days ahead.", days=venue.max_days_ahead),
                )
            )
    if (
        not exempt
        and venue.weekly_quota_hours is not None
        and quota_used_minutes + minutes * req.units > venue.weekly_quota_hours * 60
    ):
        v.append(
            Violation(
                "quota",
                "end",
                _(
                    "%(group)s may book at most %(hours)s hours a week here;"
                    " %(used)s already booked that week.",
                    group=group_name,
                    hours=venue.weekly_quota_hours,
                    used=f"{quota_used_minutes / 60:g}",
                )
                if group_name
                else _(
                    "Your group may book at most %(hours)s hours a week here;"
                    " %(used)s already booked that week.",
                    hours=venue.weekly_quota_hours,
                    used=f"{quota_used_minutes / 60:g}",
                ),
            )
        )
    return v


def week_bounds(instant: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local Monday-to-Monday week containing ``instant``."""
    from mapservice.core.opening import local_instant

    local = instant.astimezone(tz).date()
    monday = local - timedelta(days=local.weekday())
    return local_instant(monday, 0, tz), local_instant(monday + timedelta(days=7), 0, tz)
