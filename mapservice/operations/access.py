"""Who may see and change what. Objects are loaded through one scoped query each, never by id
alone followed by a role check: what a user may not see is 404, what they may see but not
change is 403."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.models import Unit, User, Venue


def venue_public() -> ColumnElement[bool]:
    """Venues anyone may see, logged in or not, whatever their committee: published, not
    retired, and of a unit the committee has admitted (not one applying or suspended)."""
    admitted = select(Unit.id).where(Unit.status == "active").correlate(None)
    return and_(Venue.published.is_(True), Venue.retired.is_(False), Venue.unit_id.in_(admitted))


def is_staff_of(user: User | None, committee_id: int) -> bool:
    """The committee's admin or one of its unit secretaries: they see all its venues,
    unpublished and retired ones and those of units not admitted included."""
    return (
        user is not None
        and (user.is_admin or user.is_secretary)
        and user.committee_id == committee_id
    )


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


def venue_editable(user: User | None) -> ColumnElement[bool]:
    if user is None or not user.active:
        return false()
    if user.is_admin:
        return Venue.committee_id == user.committee_id
    if user.is_secretary:
        return Venue.unit_id == user.unit_id
    return false()


def visible_venues(user: User | None) -> Select[Venue]:
    return select(Venue).where(venue_visible(user))


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


def units_managed(user: User | None) -> ColumnElement[bool]:
    """Units whose venues ``user`` may register."""
    if user is None or not user.active:
        return false()
    if user.is_admin:
        return Unit.committee_id == user.committee_id
    if user.is_secretary:
        return Unit.id == user.unit_id
    return false()


def units_visible(user: User | None) -> ColumnElement[bool]:
    if user is None:
        return Unit.status == "active"
    if user.is_admin:
        return Unit.committee_id == user.committee_id
    own = Unit.id == user.unit_id if user.unit_id is not None else false()
    return and_(Unit.committee_id == user.committee_id, or_(Unit.status == "active", own))


def get_unit(session: Session, user: User | None, unit_id: int, *, edit: bool = False) -> Unit:
    cond = units_visible(user)
    unit = session.scalars(select(Unit).where(Unit.id == unit_id, cond)).one_or_none()
    if unit is None:
        raise NotFound("unit_not_found", _("No such unit."))
    if edit and not (user is not None and user.is_admin and user.active):
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return unit


def require_admin(user: User | None) -> User:
    if user is None or not user.is_admin or not user.active:
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return user
