"""Groups: for which groups a user acts, who manages them, and which groups may book a venue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Protocol

from sqlalchemy import and_, false, literal, select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.core.vocab import BookableBy, UnitStatus
from mapservice.models import Group, User, Venue
from mapservice.models.plans import units_paired_on
from mapservice.policy.venues import VenueKeys, can_run_venue


class GroupKeys(Protocol):
    """What the permission checks read of a group: the ORM object, or the booking path's row."""

    @property
    def id(self) -> int: ...
    @property
    def committee_id(self) -> int: ...
    @property
    def unit_id(self) -> int | None: ...


def can_act_for_group(actor: User, group: GroupKeys, venue: VenueKeys) -> bool:
    """Whether ``actor`` may make or change bookings for ``group`` at ``venue``: its own
    groups (booker), its unit's groups (secretary), any group when the actor runs the venue
    (proxy booking: "一个电话"), anything in the committee (admin)."""
    if not actor.active or group.committee_id != actor.committee_id:
        return False
    if actor.is_admin or can_run_venue(actor, venue):
        return True
    if actor.is_secretary:
        return group.unit_id is not None and group.unit_id == actor.unit_id
    return group.id in actor.group_ids


def groups_acted_for_by(actor: User) -> ColumnElement[bool]:
    """The SQL form of :func:`can_act_for_group` at no venue in particular (the groups one
    acts for wherever: its own groups, its unit's groups, the committee's for the admin)."""
    if not actor.active:
        return false()
    in_committee = Group.committee_id == actor.committee_id
    if actor.is_admin:
        return in_committee
    if actor.is_secretary:
        return and_(in_committee, Group.unit_id.is_not(None), Group.unit_id == actor.unit_id)
    if actor.group_ids:
        return and_(in_committee, Group.id.in_(sorted(actor.group_ids)))
    return false()


def bookable_by_rule(rule: str, own_unit: bool, member: bool, paired: Callable[[], bool]) -> bool:
    """The venue's "who may book" rule: its own unit's groups always; then anyone (public),
    groups of the committee's member units (members), or of the units paired with the venue
    (``paired``, asked only then)."""
    if own_unit or rule == BookableBy.PUBLIC.value:
        return True
    if rule == BookableBy.MEMBERS.value:
        return member
    return member and paired()


def can_group_book_venue(group: Group, venue: Venue, on: date | None = None) -> bool:
    """The venue's "who may book" rule applied to ``group`` on the day ``on`` (default:
    today, UTC): paired are the venue's listed units and the units paired (结对) with the
    venue's unit that day, as on the booking path (``booking/rows.py``)."""

    def paired() -> bool:
        if any(u.id == group.unit_id for u in venue.paired_units):
            return True
        session = object_session(venue)
        if session is None or group.unit_id is None:
            return False
        day = on or datetime.now(UTC).date()
        cond = units_paired_on(literal(group.unit_id), literal(venue.unit_id), literal(day))
        return bool(session.execute(select(cond)).scalar())

    return bookable_by_rule(
        venue.bookable_by,
        group.unit_id == venue.unit_id,
        group.unit is not None and group.unit.committee_id == venue.committee_id,
        paired,
    )


def active_with_unit(group_active: bool, unit_status: str | None) -> bool:
    """A group may book while it and its unit (if it has one) are active."""
    return group_active and (unit_status is None or unit_status == UnitStatus.ACTIVE.value)


def group_is_active(group: Group) -> bool:
    """:func:`active_with_unit` for a loaded group."""
    return active_with_unit(group.active, group.unit.status if group.unit is not None else None)


def can_manage_group(actor: User | None, group: GroupKeys) -> bool:
    """Whether ``actor`` may edit, suspend and reactivate ``group`` (and sign up its bookers):
    the committee admin any group of the committee, a unit secretary its own unit's."""
    if actor is None or not actor.active or group.committee_id != actor.committee_id:
        return False
    if actor.is_admin:
        return True
    return bool(actor.is_secretary and group.unit_id is not None and group.unit_id == actor.unit_id)


def groups_managed_by(actor: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_manage_group`."""
    if actor is None or not (actor.is_admin or actor.is_secretary):
        return false()
    return groups_acted_for_by(actor)


def get_group(session: Session, actor: User | None, group_id: int, *, edit: bool = False) -> Group:
    """The group if ``actor`` acts for it (NotFound otherwise: a booker its own, a secretary
    its unit's, the admin the committee's); with ``edit``, only for one who manages it
    (NotAllowed: a booker's own group)."""
    cond = groups_acted_for_by(actor) if actor is not None else false()
    group = session.scalars(select(Group).where(Group.id == group_id, cond)).one_or_none()
    if group is None:
        raise NotFound("group_not_found", _("No such group."))
    if edit and not can_manage_group(actor, group):
        raise NotAllowed("not_allowed", _("You may not change this group."))
    return group


def require_group_manager(actor: User | None) -> User:
    """``actor`` if it manages groups at all (the admin, a unit secretary); else NotAllowed."""
    if actor is None or not actor.active or not (actor.is_admin or actor.is_secretary):
        raise NotAllowed(
            "not_allowed", _("Only the committee admin and unit secretaries may do this.")
        )
    return actor
