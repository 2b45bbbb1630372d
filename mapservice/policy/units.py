"""Units: which one sees, which one manages (registers venues for)."""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.models import Unit, User


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
    """Units ``user`` may see: admitted ones; the admin all of their committee's; a member
    their committee's admitted units and their own."""
    if user is None:
        return Unit.status == "active"
    if user.is_admin:
        return Unit.committee_id == user.committee_id
    own = Unit.id == user.unit_id if user.unit_id is not None else false()
    return and_(Unit.committee_id == user.committee_id, or_(Unit.status == "active", own))


def get_unit(session: Session, user: User | None, unit_id: int, *, edit: bool = False) -> Unit:
    """The unit if ``user`` may see it (NotFound otherwise); with ``edit``, only for an active
    admin (NotAllowed otherwise)."""
    cond = units_visible(user)
    unit = session.scalars(select(Unit).where(Unit.id == unit_id, cond)).one_or_none()
    if unit is None:
        raise NotFound("unit_not_found", _("No such unit."))
    if edit and not (user is not None and user.is_admin and user.active):
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return unit
