"""Venues: who sees them, who edits them, who runs them, who may book them (each predicate
on a loaded venue beside the SQL condition of the one query that loads it).

The rule for a venue that is not public — unpublished, retired, or of a unit the committee
has not admitted (applying or suspended): only the committee's admin and that venue's unit
secretaries see it (everyone else: 404 on every surface, as for a venue that does not
exist); nobody may book it (its staff are told why: "not open for booking"); its future
bookings stay until the admin keeps or cancels them, and the group holding one still finds
it in "my bookings" and in its feed. A retired venue is, besides, on no list and no map
(its staff reach it by its page, or with the list's "retired" switch).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.core.vocab import UnitStatus
from mapservice.models import Unit, User, Venue


class RunnerKeys(Protocol):
    """What :func:`can_run_venue` reads of a user: the ORM object, or the plain values a
    booking request keeps of who made it (:class:`mapservice.booking.prepare.Prepared`)."""

    @property
    def active(self) -> bool: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def is_secretary(self) -> bool: ...
    @property
    def committee_id(self) -> int: ...
    @property
    def unit_id(self) -> int | None: ...


class VenueKeys(Protocol):
    """What the permission checks read of a venue: the ORM object, or the booking path's row."""

    @property
    def committee_id(self) -> int: ...
    @property
    def unit_id(self) -> int: ...


_ADMITTED = UnitStatus.ACTIVE.value


# ---------------------------------------------------------------- open (public, bookable)


def venue_is_open(published: bool, retired: bool, unit_status: str | None) -> bool:
    """Whether a venue is public and open for booking: published, not retired, of a unit
    the committee has admitted."""
    return published and not retired and unit_status == _ADMITTED


def venues_public() -> ColumnElement[bool]:
    """The SQL form of :func:`venue_is_open`: venues anyone may see, logged in or not,
    whatever their committee."""
    admitted = select(Unit.id).where(Unit.status == _ADMITTED).correlate(None)
    return and_(Venue.published.is_(True), Venue.retired.is_(False), Venue.unit_id.in_(admitted))


# ---------------------------------------------------------------- seeing


def can_see_venue(user: User | None, venue: Venue) -> bool:
    """Whether ``user`` may see ``venue``: an open venue anyone; any other only the people
    who run it (:func:`can_run_venue`)."""
    unit_status = venue.unit.status if venue.unit is not None else None
    return venue_is_open(venue.published, venue.retired, unit_status) or can_run_venue(user, venue)


def venues_seen_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_see_venue`: every public venue (on any committee's map),
    and the venues the user runs (its committee's for an admin, its unit's for a
    secretary)."""
    if venues_seen_by_key(user) is None:
        return venues_public()
    return or_(venues_run_by(user), venues_public())


def venues_seen_by_key(user: User | None) -> Hashable:
    """Everything :func:`venues_seen_by` reads of ``user``: users with equal keys get the same
    condition (callers may keep a statement built with it per key)."""
    if user is None or not user.active:
        return None
    if user.is_admin:
        return ("admin", user.committee_id)
    if user.is_secretary and user.unit_id is not None:
        return ("unit", user.unit_id)
    return None


def select_venues_seen_by(user: User | None) -> Select[Venue]:
    """The venues ``user`` may see, as a statement to refine."""
    return select(Venue).where(venues_seen_by(user))


# ---------------------------------------------------------------- running (bookings at it)


def can_run_venue(user: RunnerKeys | None, venue: VenueKeys) -> bool:
    """The venue's unit secretary or the committee admin: they run the venue (approve its
    requests, book for any group there, see who booked, make its feed)."""
    if user is None or not user.active:
        return False
    if user.is_admin:
        return user.committee_id == venue.committee_id
    return bool(user.is_secretary and user.unit_id == venue.unit_id)


def venues_run_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_run_venue`."""
    if user is None or not user.active:
        return false()
    if user.is_admin:
        return Venue.committee_id == user.committee_id
    if user.is_secretary and user.unit_id is not None:
        return Venue.unit_id == user.unit_id
    return false()


# ---------------------------------------------------------------- editing


def can_edit_venue(user: User | None, venue: VenueKeys) -> bool:
    """Whether ``user`` may change ``venue``'s record: those who run it."""
    return can_run_venue(user, venue)


def venues_edited_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_edit_venue`."""
    return venues_run_by(user)


# ---------------------------------------------------------------- booking


def can_book_venue(user: User | None, venue: Venue) -> bool:
    """Whether a booking may be asked for at ``venue`` by ``user`` at all (which group may
    book it is :func:`~mapservice.policy.groups.can_group_book_venue`): a logged-in,
    active user, at a venue that is open. A venue one may not see is a 404, one seen but not
    open (by its staff) a refusal that says so."""
    unit_status = venue.unit.status if venue.unit is not None else None
    return (
        user is not None
        and user.active
        and venue_is_open(venue.published, venue.retired, unit_status)
    )


def venues_bookable_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_book_venue`."""
    if user is None or not user.active:
        return false()
    return venues_public()


# ---------------------------------------------------------------- loading


def get_venue(
    session: Session,
    user: User | None,
    venue_id: int,
    *,
    edit: bool = False,
    options: Sequence[ExecutableOption] = (),
) -> Venue:
    """The venue if ``user`` may see it (and edit it, with ``edit``); else NotFound/NotAllowed.
    ``options``: loader options (what the caller will read of it, loaded in the same query)."""
    seen = venues_seen_by(user)
    cond = and_(seen, venues_edited_by(user)) if edit else seen
    venue = session.scalars(
        select(Venue).where(Venue.id == venue_id, cond).options(*options)
    ).one_or_none()
    if venue is not None:
        return venue
    if edit and session.scalar(select(Venue.id).where(Venue.id == venue_id, seen)):
        raise NotAllowed("venue_not_yours", _("You may only change your own unit's venues."))
    raise NotFound("venue_not_found", _("No such venue."))
