"""Units: which one sees, which one manages (registers venues for), whose applications to join
one decides; each predicate beside its SQL condition."""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.core.vocab import UnitStatus
from mapservice.models import Unit, UnitApplication, User
from mapservice.policy.committees import require_committee_admin


def can_manage_unit(user: User | None, unit: Unit) -> bool:
    """Whether ``user`` may register venues for ``unit``: the committee admin any of its
    units, a secretary their own."""
    if user is None or not user.active:
        return False
    if user.is_admin:
        return unit.committee_id == user.committee_id
    return bool(user.is_secretary and unit.id == user.unit_id)


def units_managed_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_manage_unit`."""
    if user is None or not user.active:
        return false()
    if user.is_admin:
        return Unit.committee_id == user.committee_id
    if user.is_secretary:
        return Unit.id == user.unit_id
    return false()


def can_see_unit(user: User | None, unit: Unit) -> bool:
    """Units ``user`` may see: admitted ones; the admin all of their committee's; a member
    their committee's admitted units and their own."""
    admitted = unit.status == UnitStatus.ACTIVE.value
    if user is None:
        return admitted
    if unit.committee_id != user.committee_id:
        return False
    return user.is_admin or admitted or unit.id == user.unit_id


def units_seen_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_see_unit`."""
    if user is None:
        return Unit.status == "active"
    if user.is_admin:
        return Unit.committee_id == user.committee_id
    own = Unit.id == user.unit_id if user.unit_id is not None else false()
    return and_(Unit.committee_id == user.committee_id, or_(Unit.status == "active", own))


def get_unit(session: Session, user: User | None, unit_id: int, *, edit: bool = False) -> Unit:
    """The unit if ``user`` may see it (NotFound otherwise); with ``edit``, only for an active
    admin (NotAllowed otherwise)."""
    cond = units_seen_by(user)
    unit = session.scalars(select(Unit).where(Unit.id == unit_id, cond)).one_or_none()
    if unit is None:
        raise NotFound("unit_not_found", _("No such unit."))
    if edit and not (user is not None and user.is_admin and user.active):
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return unit


def can_decide_application(user: User | None, application: UnitApplication) -> bool:
    """Whether ``user`` may see, admit and decline ``application``: its committee's admin."""
    return bool(
        user is not None
        and user.active
        and user.is_admin
        and application.committee_id == user.committee_id
    )


def applications_decided_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_decide_application`."""
    if user is None or not user.active or not user.is_admin:
        return false()
    return UnitApplication.committee_id == user.committee_id


def get_application(session: Session, user: User | None, application_id: int) -> UnitApplication:
    """The application if ``user`` may decide it: NotAllowed for anyone but an admin (before
    any application is looked at), NotFound for another committee's or none."""
    require_committee_admin(user)
    found = session.scalars(
        select(UnitApplication).where(
            UnitApplication.id == application_id, applications_decided_by(user)
        )
    ).one_or_none()
    if found is None:
        raise NotFound("application_not_found", _("No such application."))
    return found
