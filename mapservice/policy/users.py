"""Accounts: whose accounts a user manages (creates, deactivates, issues set-password links
for). The committee admin manages every account of its committee; a unit secretary the
bookers whose groups are all its own unit's (a booker also booking for another unit's group
is the admin's); nobody another committee's."""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotFound
from mapservice.core.i18n import _
from mapservice.core.vocab import Role
from mapservice.models import Group, User, user_groups


def can_manage_user(actor: User | None, user: User) -> bool:
    """Whether ``actor`` may manage ``user``'s account."""
    if actor is None or not actor.active or user.committee_id != actor.committee_id:
        return False
    if actor.is_admin:
        return True
    return bool(
        actor.is_secretary
        and user.is_booker
        and user.groups
        and all(g.unit_id is not None and g.unit_id == actor.unit_id for g in user.groups)
    )


def users_managed_by(actor: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_manage_user`."""
    if actor is None or not actor.active:
        return false()
    in_committee = User.committee_id == actor.committee_id
    if actor.is_admin:
        return in_committee
    if actor.is_secretary and actor.unit_id is not None:
        own_groups = select(Group.id).where(
            Group.committee_id == actor.committee_id, Group.unit_id == actor.unit_id
        )
        others = (
            select(user_groups.c.user_id)
            .join(Group, Group.id == user_groups.c.group_id)
            .where(or_(Group.unit_id.is_(None), Group.unit_id != actor.unit_id))
        )
        return and_(
            in_committee,
            User.role == Role.BOOKER.value,
            User.group_id.in_(own_groups),
            User.id.not_in(others),
        )
    return false()


def get_managed_user(session: Session, actor: User | None, user_id: int) -> User:
    """The account if ``actor`` manages it; else NotFound (one does not learn it exists)."""
    user = session.scalars(
        select(User).where(User.id == user_id, users_managed_by(actor))
    ).one_or_none()
    if user is None:
        raise NotFound("user_not_found", _("No such account."))
    return user
