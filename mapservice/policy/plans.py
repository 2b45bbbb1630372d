"""The activity list (活动清单) and pairings (结对挂钩): who sees and who changes them.

The committee admin manages plans and pairings; the committee's unit secretaries see its
plans (and their units' turns) and set their own unit's preferences; every active account of
the committee sees its pairings. Another committee's plan is a 404, as for everything."""

from __future__ import annotations

from sqlalchemy import false
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.models import Plan, User


def can_see_plan(user: User | None, plan: Plan) -> bool:
    """The committee's admin and unit secretaries."""
    return bool(
        user is not None
        and user.active
        and (user.is_admin or user.is_secretary)
        and user.committee_id == plan.committee_id
    )


def plans_seen_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_see_plan`."""
    if user is None or not user.active or not (user.is_admin or user.is_secretary):
        return false()
    return Plan.committee_id == user.committee_id


def can_manage_plan(user: User | None, plan: Plan) -> bool:
    """Create, edit, publish: the committee's admin."""
    return bool(can_see_plan(user, plan) and user is not None and user.is_admin)


def get_plan(session: Session, user: User | None, plan_id: int, *, edit: bool = False) -> Plan:
    """The plan if ``user`` may see it (NotFound otherwise); with ``edit`` only for its
    manager (NotAllowed otherwise)."""
    plan = session.get(Plan, plan_id)
    if plan is None or not can_see_plan(user, plan):
        raise NotFound("plan_not_found", _("No such plan."))
    if edit and not can_manage_plan(user, plan):
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return plan


def can_see_pairings(user: User | None, committee_id: int) -> bool:
    """Everyone with an active account in the committee."""
    return bool(user is not None and user.active and user.committee_id == committee_id)


def require_plan_viewer(user: User | None) -> User:
    """``user`` if an active admin or unit secretary; else NotAllowed."""
    if user is None or not user.active or not (user.is_admin or user.is_secretary):
        raise NotAllowed("staff_only", _("Only the committee's staff may see the plan."))
    return user
