"""Bookings: which ones a user manages, and who may see whose they are."""

from __future__ import annotations

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from mapservice.models import Booking, Group, User, Venue
from mapservice.policy.groups import can_act_for_group, groups_acted_for_by
from mapservice.policy.venues import can_run_venue


def bookings_managed_by(actor: User) -> ColumnElement[bool]:
    """Bookings ``actor`` may manage, as the condition of the one query that loads them
    (joined with their venue and group): any at a venue the actor runs (the venue's unit
    secretary, the committee admin), or its group's own (booker, the group's unit secretary) —
    the SQL form of :func:`~mapservice.policy.venues.can_run_venue` or
    :func:`~mapservice.policy.groups.can_act_for_group`."""
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
    if actor.group_ids:
        return and_(in_committee, group_here, Booking.group_id.in_(sorted(actor.group_ids)))
    return false()


def can_manage_booking(actor: User | None, booking: Booking) -> bool:
    """Whether ``actor`` may change ``booking`` (cancel, reschedule; confirm and decline
    also need :func:`~mapservice.policy.venues.can_run_venue`): the predicate form of
    :func:`bookings_managed_by`."""
    if actor is None or not actor.active:
        return False
    return can_run_venue(actor, booking.venue) or can_act_for_group(
        actor, booking.group, booking.venue
    )


def bookings_of(actor: User) -> ColumnElement[bool]:
    """The actor's "my bookings", one definition for the web page and the API: the bookings of
    the groups ``actor`` acts for (its group's, its unit's groups', the committee's for the
    admin) and those it took for any other group (a caller's: "一个电话"), each one the actor
    may still manage (:func:`bookings_managed_by`). A venue the actor may no longer see
    (suspended unit, unpublished, retired) does not hide a booking of its own there.
    Joined with the booking's venue and group."""
    return and_(
        or_(groups_acted_for_by(actor), Booking.entered_by_id == actor.id),
        bookings_managed_by(actor),
    )


def is_own_group_booking(actor: User, booking: Booking) -> bool:
    """The booking is of one of the actor's own groups (a booker's own request)."""
    return booking.group_id in actor.group_ids


def can_see_booking_group(actor: User | None, venue: Venue, booking_group_id: int) -> bool:
    """Who holds a booking: the venue's runners and the group's own booker see it; outsiders
    learn only that a time is occupied, never by whom."""
    if actor is None:
        return False
    if can_run_venue(actor, venue):
        return True
    return booking_group_id in actor.group_ids
