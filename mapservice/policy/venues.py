"""Venues: who sees them, who edits them, who runs them (the SQL condition beside each
predicate)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.models import Unit, User, Venue


class VenueKeys(Protocol):
    """What the permission checks read of a venue: the ORM object, or the booking path's row."""

    @property
    def committee_id(self) -> int: ...
    @property
    def unit_id(self) -> int: ...


# ---------------------------------------------------------------- seeing


def venue_public() -> ColumnElement[bool]:
    """Venues anyone may see, logged in or not, whatever their committee: published, not
    retired, and of a unit the committee has admitted (not one applying or suspended)."""
    admitted = select(Unit.id).where(Unit.status == "active").correlate(None)
    return and_(Venue.published.is_(True), Venue.retired.is_(False), Venue.unit_id.in_(admitted))


def venue_visible(user: User | None) -> ColumnElement[bool]:
    """Venues ``user`` may see: every public venue (a logged-in user sees at least what a
    visitor sees, on any committee's map), and for the staff of a committee (its admin and
    unit secretaries) every venue of that committee."""
    if user is not None and (user.is_admin or user.is_secretary):
        return or_(Venue.committee_id == user.committee_id, venue_public())
    return venue_public()


def venue_visibility_key(user: User | None) -> Hashable:
    """Everything :func:`venue_visible` reads of ``user``: users with equal keys get the same
    condition (callers may keep a statement built with it per key)."""
    if user is None or not (user.is_admin or user.is_secretary):
        return None
    return (True, user.committee_id)


def visible_venues(user: User | None) -> Select[Venue]:
    """The venues ``user`` may see, as a statement to refine."""
    return select(Venue).where(venue_visible(user))


# ---------------------------------------------------------------- editing


def venue_editable(user: User | None) -> ColumnElement[bool]:
    """Venues ``user`` may edit: the admin their committee's, a secretary their unit's."""
    if user is None or not user.active:
        return false()
    if user.is_admin:
        return Venue.committee_id == user.committee_id
    if user.is_secretary:
        return Venue.unit_id == user.unit_id
    return false()


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
    cond = and_(venue_visible(user), venue_editable(user)) if edit else venue_visible(user)
    venue = session.scalars(
        select(Venue).where(Venue.id == venue_id, cond).options(*options)
    ).one_or_none()
    if venue is not None:
        return venue
    if edit and session.scalar(select(Venue.id).where(Venue.id == venue_id, venue_visible(user))):
        raise NotAllowed("venue_not_yours", _("You may only change your own unit's venues."))
    raise NotFound("venue_not_found", _("No such venue."))


# ---------------------------------------------------------------- running (bookings at it)


def is_owner(actor: User | None, venue: VenueKeys) -> bool:
    """The venue's unit secretary or the committee admin: they run the venue."""
    if actor is None or not actor.active:
        return False
    if actor.is_admin:
        return actor.committee_id == venue.committee_id
    return bool(actor.is_secretary and actor.unit_id == venue.unit_id)


def owned_venues_condition(actor: User) -> ColumnElement[bool]:
    """Venues ``actor`` runs, as SQL: the form of :func:`is_owner` for the request lists.
    Unlike :func:`is_owner` it does not read ``actor.active`` (callers reach it logged in)."""
    if actor.is_admin:
        return Venue.committee_id == actor.committee_id
    if actor.is_secretary:
        return Venue.unit_id == actor.unit_id
    return false()
