"""Bookings: which ones a user manages, and who may see whose they are."""

from __future__ import annotations

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from mapservice.models import Booking, Group, User, Venue
from mapservice.policy.venues import is_owner


def manageable_bookings(actor: User) -> ColumnElement[bool]:
    """Bookings ``actor`` may manage, as the condition of the one query that loads them
    (joined with their venue and group): any at a venue the actor runs (the venue's unit
    secretary, the committee admin), or its group's own (booker, the group's unit secretary) —
    the SQL form of :func:`~mapservice.policy.venues.is_owner` or
    :func:`~mapservice.policy.groups.may_act_for_group`."""
    if not actor.active:
        return false()
    in_committee = Venue.committee_id == actor.committee_id
    if actor.is_admin:
        return in_committee
    group_here = Group.committee_id == actor.committee_id
    if actor.is_secretary:
        return and_(
            in_committee,
            or_(Venue.unit_id == actor.unit_id, and_(group_here, Group.unit_id == actor.unit_id)),
        )
    if actor.is_booker:
        return and_(in_committee, group_here, Booking.group_id == actor.group_id)
    return false()


def may_act_for_group_self(actor: User, booking: Booking) -> bool:
    """The booking is of the actor's own group (a booker's own request)."""
    return actor.is_booker and actor.group_id == booking.group_id


def may_see_details(actor: User | None, venue: Venue, booking_group_id: int) -> bool:
    """Outsiders learn only that a time is occupied, never by whom."""
    if actor is None:
        return False
    if is_owner(actor, venue):
        return True
    return actor.is_booker and actor.group_id == booking_group_id
