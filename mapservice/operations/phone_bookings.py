"""Phone bookings (一个电话): a secretary (or the committee admin) answers a call, sees at once
which venues are free then and books one for the caller — a youth group, or a caller without
a group — recording the caller's name and phone on the booking.

What is free is the booking engine's answer (:func:`mapservice.operations.venue_search.find`
with its free window); the booking goes through the engine's one write path
(:func:`mapservice.booking.engine.book_request`) with the caller on the request. A caller
without a group is booked for the unit's "phone callers" group (the venue's unit's, for the
admin), made the first time it is needed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.booking import engine
from mapservice.core.errors import NotAllowed, NotFound, RuleViolation, Violation
from mapservice.core.i18n import _
from mapservice.models import Booking, Group, Unit, User, Venue
from mapservice.operations.groups import save_group
from mapservice.operations.venue_search import (
    FreeWindow,
    VenueFilter,
    find,
    shown_hours,
    shown_rows,
)
from mapservice.policy import get_venue, group_is_active, venues_bookable_by

#: A phone number as people type it: digits with spaces, hyphens, brackets, a leading +.
PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{3,28}$")
NAME_MAX = 60
PHONE_MAX = 30
#: The name of the group a caller without a group is booked for (after its unit's name).
CALLERS_SUFFIX = "·来电预约"


def require_phone_staff(actor: User | None) -> User:
    """``actor`` if it takes phone bookings (a unit secretary, the committee admin)."""
    if actor is None or not actor.active or not (actor.is_admin or actor.is_secretary):
        raise NotAllowed(
            "not_allowed", _("Only the committee admin and unit secretaries take phone bookings.")
        )
    return actor


def caller_problems(name: str | None, phone: str | None) -> dict[str, str]:
    """The caller's name and phone are both required; the phone must look like one."""
    problems: dict[str, str] = {}
    name, phone = (name or "").strip(), (phone or "").strip()
    if not name:
        problems["caller_name"] = _("Enter the caller's name.")
    elif len(name) > NAME_MAX:
        problems["caller_name"] = _("At most %(n)s characters.", n=NAME_MAX)
    if not phone:
        problems["caller_phone"] = _("Enter the caller's phone number.")
    elif len(phone) > PHONE_MAX or not PHONE.match(phone) or sum(c.isdigit() for c in phone) < 5:
        problems["caller_phone"] = _("This is not a phone number (digits, spaces, - and + only).")
    return problems


def default_window(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The next whole hour in the committee's zone, for one hour."""
    local = now.astimezone(tz)
    start = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return start, start + timedelta(hours=1)


def window_problems(start: datetime, end: datetime, now: datetime) -> dict[str, str]:
    if end <= start:
        return {"end": _("The end must be after the start.")}
    if start <= now:
        return {"start": _("This time has already passed: choose a time to come.")}
    return {}


@dataclass(frozen=True)
class FreeVenue:
    """A venue free for the whole window, as the screen lists it."""

    id: int
    name: str
    unit_name: str
    address: str
    capacity_units: int
    requires_approval: bool
    own: bool  # of the actor's unit (it is confirmed at once)
    hours: str


def free_venues(
    session: Session,
    actor: User,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    everywhere: bool = False,
) -> list[FreeVenue]:
    """The venues open for booking and free for ``[start, end)``: a secretary's unit's
    (``everywhere``: the committee's), the admin's committee's; own unit first, then by
    name. The free check is the engine's (:func:`venue_search.find`)."""
    actor = require_phone_staff(actor)
    unit_id = actor.unit_id if actor.is_secretary and not everywhere else None
    found = find(session, actor, VenueFilter(unit_id=unit_id), FreeWindow(start, end), now)
    ids = [f.id for f in found]
    if not ids:
        return []
    bookable = set(
        session.scalars(
            select(Venue.id).where(
                Venue.id.in_(ids),
                Venue.committee_id == actor.committee_id,
                venues_bookable_by(actor),
            )
        )
    )
    rows = shown_rows(session, [i for i in ids if i in bookable])
    out = [
        FreeVenue(
            r.id,
            r.name,
            r.unit_name,
            r.address,
            r.capacity_units,
            r.requires_approval,
            r.unit_id == actor.unit_id,
            shown_hours(r.hours_raw),
        )
        for r in rows.values()
    ]
    return sorted(out, key=lambda v: (not v.own, v.name, v.id))


def caller_groups(session: Session, actor: User) -> list[Group]:
    """The groups a caller may be booked for from the screen: the active groups of the
    committee (the venue's owners may book for any of them; at another unit's venue the
    engine admits only those the secretary acts for), the phone callers' groups left out."""
    require_phone_staff(actor)
    groups = session.scalars(
        select(Group)
        .where(Group.committee_id == actor.committee_id, Group.active.is_(True))
        .order_by(Group.name)
    )
    return [g for g in groups if not g.name.endswith(CALLERS_SUFFIX) and group_is_active(g)]


def callers_group(session: Session, actor: User, venue: Venue) -> Group:
    """The group a caller without a group is booked for: the secretary's unit's (the
    venue's unit's for the admin), made the first time."""
    unit_id = actor.unit_id if actor.is_secretary else venue.unit_id
    unit = session.get(Unit, unit_id)
    assert unit is not None
    name = f"{unit.name}{CALLERS_SUFFIX}"
    group = session.scalars(
        select(Group).where(Group.committee_id == unit.committee_id, Group.name == name)
    ).one_or_none()
    if group is None:
        group = save_group(session, actor, name=name, unit_id=unit.id)
    return group


@dataclass(frozen=True)
class PhoneRequest:
    """What the screen sends: the venue, the window (aware instants), the caller and
    the group picked (None: a caller without a group)."""

    venue_id: int
    start: datetime
    end: datetime
    caller_name: str
    caller_phone: str
    group_id: int | None = None
    purpose: str = ""


def refuse(problems: dict[str, str]) -> RuleViolation:
    return RuleViolation([Violation("invalid", f, m) for f, m in problems.items()])


def book_for_caller(
    session: Session,
    actor: User | None,
    req: PhoneRequest,
    *,
    now: datetime,
) -> Booking:
    """Book for a caller through the engine's one write path. Raises RuleViolation (the
    caller, the window, the engine's rules), NotAllowed, NotFound or BookingConflict (its
    alternatives computed by the edge); nothing is written then."""
    actor = require_phone_staff(actor)
    problems = {**caller_problems(req.caller_name, req.caller_phone)}
    problems.update(window_problems(req.start, req.end, now))
    if problems:
        raise refuse(problems)
    venue = get_venue(session, actor, req.venue_id)  # not seen: 404
    if venue.committee_id != actor.committee_id:
        raise NotAllowed("other_committee", _("This venue belongs to another committee's map."))
    if req.group_id is None:
        group_id = callers_group(session, actor, venue).id
    else:
        group = session.scalars(
            select(Group).where(Group.id == req.group_id, Group.committee_id == actor.committee_id)
        ).one_or_none()
        if group is None:
            raise NotFound("group_not_found", _("No such group."))
        group_id = group.id
    request = engine.BookingRequest(
        venue.id,
        group_id,
        req.start,
        req.end,
        purpose=req.purpose,
        caller_name=req.caller_name.strip(),
        caller_phone=req.caller_phone.strip(),
    )
    return engine.book_request(session, actor, request, now=now)


__all__ = [
    "FreeVenue",
    "PhoneRequest",
    "book_for_caller",
    "caller_groups",
    "caller_problems",
    "default_window",
    "free_venues",
    "require_phone_staff",
]
