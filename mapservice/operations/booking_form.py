"""Booking from the venue page's form: the checks a request must pass before the engine sees
it, then the engine.

The form's values arrive as plain values (:class:`BookingRequest`: a local date and
wall-clock times, the group picked, the repeat). :func:`book_from_form` turns them into
instants in the venue's zone, finds the group the booking is for, checks the repeat's fields,
asks before booking a time the group already holds there, and books one date or a series.
It answers with what the page shows next (:class:`Refused`, :class:`OverlapQuestion`,
:class:`Booked`); the engine's refusals (RuleViolation, BookingConflict, SeriesRejected) pass
through for the edge to show with its alternatives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.orm import Session, selectinload

from mapservice.booking import engine
from mapservice.booking.loading import venue_tz
from mapservice.booking.results import SeriesResult
from mapservice.core.i18n import _
from mapservice.core.opening import local_instant
from mapservice.models import Booking, Group, User, Venue
from mapservice.policy import can_act_for_group, can_group_book_venue, group_is_active


def parse_local(day: date, text: str, tz: ZoneInfo) -> datetime | None:
    """The instant of wall-clock ``text`` (HH:MM, 24:00 = next midnight) on ``day`` in ``tz``;
    None when that time does not exist that day (the hour skipped when clocks go forward).
    A time that exists twice (clocks go back) is its first occurrence."""
    hours, minutes = (int(p) for p in text.strip().split(":"))
    if hours * 60 + minutes >= 1440:
        return local_instant(day + timedelta(days=1), hours * 60 + minutes - 1440, tz)
    naive = datetime.combine(day, time(hours, minutes))
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return aware


def local_window(
    day: date, start: str, end: str, tz: ZoneInfo
) -> tuple[tuple[datetime, datetime] | None, dict[str, str]]:
    """``start``..``end`` (HH:MM) on ``day`` as aware instants, or None with an error for each
    time that does not exist that day. An end at 00:00 means midnight at the end of the day."""
    errors: dict[str, str] = {}
    got: dict[str, datetime] = {}
    for name, text in (("start", start.strip()), ("end", end.strip())):
        if name == "end" and text in ("00:00", "0:00"):
            text = "24:00"
        instant = parse_local(day, text, tz)
        if instant is None:
            errors[name] = _(
                "%(time)s does not exist on %(date)s: the clocks go forward that night."
                " Please choose another time.",
                time=text,
                date=day.isoformat(),
            )
        else:
            got[name] = instant
    if errors:
        return None, errors
    return (got["start"], got["end"]), errors


def bookable_groups(session: Session, actor: User, venue: Venue) -> list[Group]:
    """Groups ``actor`` may pick for a booking here: those the engine lets the actor act for
    (any group of the committee for the venue's owners and the admin — proxy booking,
    "一个电话" —, the unit's own groups for another unit's secretary) that are active and
    that the venue's "who may book" rule admits. A booker of one group books for it (no
    picker); one of several groups picks among them."""
    if actor.is_booker and len(actor.group_ids) < 2:
        return []
    groups = session.scalars(
        select(Group)
        .where(
            Group.committee_id == actor.committee_id,
            Group.active.is_(True),
            Group.id.in_(sorted(actor.group_ids)) if actor.is_booker else true(),
        )
        .options(selectinload(Group.unit))
        .order_by(Group.name)
    )
    return [
        g
        for g in groups
        if can_act_for_group(actor, g, venue)
        and group_is_active(g)
        and can_group_book_venue(g, venue)
    ]


def no_group_message() -> str:
    return _("None of the groups you book for may book this venue (see 'who may book').")


@dataclass(frozen=True)
class BookingRequest:
    """The booking form's values: a local date and HH:MM times in the venue's zone."""

    day: date
    start: str
    end: str
    units: int = 1
    headcount: int | None = None
    purpose: str = ""
    #: the group picked (ignored for a booker, who books for its own group)
    group_id: int | None = None
    #: "", daily, weekly or biweekly; a series takes ``count`` or ``until``
    repeat: str = ""
    count: int | None = None
    until: date | None = None
    policy: str = "all_or_nothing"
    #: the person was asked about its group's bookings at this time and books all the same
    confirm_overlap: bool = False


@dataclass
class Refused:
    """The request as typed cannot be booked: messages by form field and above the form."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)


@dataclass
class OverlapQuestion:
    """The group already holds the venue then: ask before booking it twice."""

    question: str
    bookings: list[Booking]


@dataclass
class Booked:
    window: tuple[datetime, datetime]
    booking: Booking | None = None
    series: SeriesResult | None = None


def _group_id(
    session: Session, actor: User, venue: Venue, req: BookingRequest, refused: Refused
) -> int | None:
    """The group the booking is for: a booker's own (the one picked of its groups, else its
    default group); otherwise the one picked (None, with the message at the field or above
    the form, when none is)."""
    if actor.is_booker:
        if req.group_id is not None and req.group_id in actor.group_ids:
            return req.group_id
        return actor.group_id or 0  # one of its own, never another's: its default
    if req.group_id is not None:
        return req.group_id
    if bookable_groups(session, actor, venue):
        refused.fields["group"] = _("Choose the group the booking is for.")
    else:
        refused.general.append(no_group_message())
    return None


def _series_errors(req: BookingRequest) -> dict[str, str]:
    if not req.repeat:
        return {}
    if (req.count is None) == (req.until is None):
        return {"count": _("Give either the number of dates or the last date.")}
    if req.until is not None and req.until < req.day:
        return {"until": _("The last date cannot be before the first date.")}
    return {}


def own_overlaps(
    session: Session,
    actor: User,
    venue: Venue,
    group_id: int,
    req: BookingRequest,
    window: tuple[datetime, datetime],
    now: datetime,
) -> list[Booking]:
    """The group's own bookings here at the requested time(s), if the actor may act for the
    group (nobody learns another group's bookings this way)."""
    group = session.get(Group, group_id)
    if group is None or not can_act_for_group(actor, group, venue):
        return []
    windows = [window]
    if req.repeat:
        until = req.until if req.count is None else None
        windows = [
            (s, e)
            for s, e, exists in engine.occurrences(
                *window, venue_tz(venue), req.repeat, count=req.count, until=until
            )
            if exists
        ]
    return engine.own_overlaps(session, group_id, venue.id, windows, now)


class _What(TypedDict):
    units: int
    purpose: str
    headcount: int | None


def book_from_form(
    session: Session,
    actor: User,
    venue: Venue,
    req: BookingRequest,
    *,
    now: datetime | None = None,
    before_write: Callable[[], None] | None = None,
) -> Refused | OverlapQuestion | Booked:
    """Book ``req`` at ``venue`` for ``actor``. ``before_write``: called just before a single
    booking is written (the web ends its read-only transaction there on SQLite)."""
    now = now or datetime.now(UTC)
    window, errors = local_window(req.day, req.start, req.end, venue_tz(venue))
    refused = Refused(errors)
    group_id = _group_id(session, actor, venue, req, refused)
    refused.fields.update(_series_errors(req))
    if refused.fields or refused.general or window is None or group_id is None:
        return refused
    if not req.confirm_overlap:
        held = own_overlaps(session, actor, venue, group_id, req, window, now)
        if held:
            question = _(
                "%(group)s already holds this venue at this time:", group=held[0].group.name
            )
            return OverlapQuestion(question, held)
    start, end = window
    what = _What(units=req.units, purpose=req.purpose, headcount=req.headcount)
    if req.repeat:
        until = req.until if req.count is None else None
        series = engine.book_series(
            session, actor, venue.id, group_id, start, end,
            freq=req.repeat, count=req.count, until=until, policy=req.policy, **what,
        )  # fmt: skip
        return Booked(window, series=series)
    if before_write is not None:
        before_write()
    booking = engine.book(session, actor, venue.id, group_id, start, end, **what)
    return Booked(window, booking=booking)
