"""The audit log: who may read which entries. The committee admin reads all of the
committee's; a unit secretary those about its unit's records (its venues, groups, the bookings
at its venues, the unit itself: ``AuditEntry.unit_id``) and its own actions; nobody else any.
The predicate beside its SQL condition."""

from __future__ import annotations

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from mapservice.models import AuditEntry, User


def may_read_audit(user: User | None) -> bool:
    """Whether ``user`` reads any of the log at all (an active admin or unit secretary)."""
    return bool(user is not None and user.active and (user.is_admin or user.is_secretary))


def can_see_audit_entry(user: User | None, entry: AuditEntry) -> bool:
    if user is None or not may_read_audit(user) or entry.committee_id != user.committee_id:
        return False
    if user.is_admin:
        return True
    return (user.unit_id is not None and entry.unit_id == user.unit_id) or (
        entry.actor_id == user.id
    )


def audit_entries_seen_by(user: User | None) -> ColumnElement[bool]:
    """The SQL form of :func:`can_see_audit_entry`."""
    if user is None or not may_read_audit(user):
        return false()
    committee = AuditEntry.committee_id == user.committee_id
    if user.is_admin:
        return committee
    own = AuditEntry.actor_id == user.id
    if user.unit_id is not None:
        return and_(committee, or_(AuditEntry.unit_id == user.unit_id, own))
    return and_(committee, own)
