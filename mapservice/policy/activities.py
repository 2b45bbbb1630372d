"""Activities: who sees them (the committee's members; a draft only those who manage it) and
who manages them (the committee admin, the lead unit's secretary)."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.errors import NotAllowed, NotFound
from mapservice.core.i18n import _
from mapservice.core.vocab import ActivityStatus
from mapservice.db import is_immediate
from mapservice.models import Activity, User


def activities_seen_by(actor: User | None) -> ColumnElement[bool]:
    """The committee's activities; drafts only for those who manage them."""
    if actor is None or not actor.active:
        return Activity.id.is_(None)
    here = Activity.committee_id == actor.committee_id
    if actor.is_admin:
        return here
    drafts = Activity.lead_unit_id == actor.unit_id if actor.is_secretary else Activity.id.is_(None)
    return and_(here, or_(Activity.status != ActivityStatus.DRAFT.value, drafts))


def can_manage_activity(actor: User | None, activity: Activity) -> bool:
    """The committee admin, and the lead unit's secretary."""
    if actor is None or not actor.active or actor.committee_id != activity.committee_id:
        return False
    return actor.is_admin or (actor.is_secretary and actor.unit_id == activity.lead_unit_id)


def get_activity(
    session: Session,
    actor: User | None,
    activity_id: int,
    *,
    manage: bool = False,
    lock: bool = False,
) -> Activity:
    """The activity if ``actor`` sees it (else 404); with ``manage`` only for those who manage
    it (else 403); with ``lock``, under the activity's lock (PostgreSQL: its row locked
    ``FOR UPDATE``; SQLite: the writer transaction begun ``IMMEDIATE``, as the booking
    engine's :mod:`mapservice.booking.locking`), read as it is now."""
    stmt = select(Activity).where(Activity.id == activity_id, activities_seen_by(actor))
    if lock:
        if not is_immediate(session):  # SQLite: the writer transaction is the lock
            raise RuntimeError("an activity's sign-ups are written in a writer session")
        stmt = stmt.with_for_update(of=Activity).execution_options(populate_existing=True)
    activity = session.scalars(stmt).one_or_none()
    if activity is None:
        raise NotFound("activity_not_found", _("No such activity."))
    if manage and not can_manage_activity(actor, activity):
        raise NotAllowed("not_allowed", _("Only the lead unit may manage this activity."))
    return activity
