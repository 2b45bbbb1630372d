"""The committee: its admin and its staff (admin and unit secretaries)."""

from __future__ import annotations

from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import _
from mapservice.models import User


def can_admin_committee(user: User | None, committee_id: int | None = None) -> bool:
    """An active committee admin (of ``committee_id``, when given)."""
    return (
        user is not None
        and user.is_admin
        and user.active
        and (committee_id is None or user.committee_id == committee_id)
    )


def require_committee_admin(user: User | None) -> User:
    """``user`` if :func:`can_admin_committee`; else NotAllowed."""
    if user is None or not can_admin_committee(user):
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    return user


def is_committee_staff(user: User | None, committee_id: int) -> bool:
    """The committee's admin or one of its unit secretaries: the people who run some of its
    venues, and so may see more of it than the public (which venues:
    :func:`~mapservice.policy.venues.venues_seen_by`)."""
    return (
        user is not None
        and user.active
        and (user.is_admin or user.is_secretary)
        and user.committee_id == committee_id
    )
