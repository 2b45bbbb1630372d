"""The committee: its admin and its staff (admin and unit secretaries)."""

from __future__ import annotations

from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import _
from mapservice.models import User


def is_staff_of(user: User | None, committee_id: int) -> bool:
    """The committee's admin or one of its unit secretaries: they see all its venues,
    unpublished and retired ones and those of units not admitted included."""
    return (
        user is not None
        and (user.is_admin or user.is_secretary)
        and user.committee_id == committee_id
    )


def require_admin(user: User | None) -> User:
    """``user`` if they are an active committee admin; else NotAllowed."""
    if user is None or not user.is_admin or not user.active:
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return user
