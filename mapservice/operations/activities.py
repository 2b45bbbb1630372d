"""Activities (活动): create, change and cancel an activity — at a venue booked through the
booking engine in the same transaction (an activity never exists without its booking; a
refusal answers with the engine's alternatives and writes nothing), or at a site — and the
lists. Sign-ups and their lock: :mod:`mapservice.operations.signups`; the pure rules:
:mod:`mapservice.core.activities`; who sees and manages: :mod:`mapservice.policy.activities`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mapservice.booking import engine
from mapservice.booking.rows import aware
from mapservice.core import activities as rules
from mapservice.core.errors import NotAllowed, ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.vocab import ActivityStatus
from mapservice.models import Activity, Group, Unit, User
from mapservice.models.audit import record
from mapservice.operations.plans import turn_to_lead
from mapservice.operations.signups import (
    ACTIVE_STATES,
    committee_tz,
    counts,
    notify,
    refuse,
    settle,
)
from mapservice.policy.activities import activities_seen_by, get_activity


def list_activities(
    session: Session,
    actor: User | None,
    *,
    month: str = "",
    kind: str = "",
    open_only: bool = False,
    now: datetime | None = None,
) -> list[Activity]:
    """The activities ``actor`` sees, by start; ``month`` "YYYY-MM" (committee time)."""
    now = aware(now)
    stmt = (
        select(Activity)
        .where(activities_seen_by(actor))
        .options(selectinload(Activity.lead_unit), selectinload(Activity.venue))
        .order_by(Activity.start_at, Activity.id)
    )
    if kind:
        stmt = stmt.where(Activity.kind == kind)
    if month and actor is not None:
        tz = committee_tz(session, actor.committee_id)
        year, mon = (int(x) for x in month.split("-"))
        first = datetime(year, mon, 1, tzinfo=tz)
        after = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
        stmt = stmt.where(Activity.start_at >= first, Activity.start_at < after)
    if open_only:
        stmt = stmt.where(Activity.status.in_(rules.SIGNUP_OPEN), Activity.signup_deadline > now)
    return list(session.scalars(stmt))


# ------------------------------------------------------------------ creating and changing


def _lead_unit(session: Session, actor: User, unit_id: int | None) -> int:
    """The lead unit: a secretary's own (another unit's: 403), any of the committee (admin)."""
    if actor.is_secretary:
        if unit_id is not None and unit_id != actor.unit_id:
            raise NotAllowed("not_allowed", _("You may only manage your own unit's activities."))
        assert actor.unit_id is not None
        return actor.unit_id
    if not actor.is_admin:
        raise NotAllowed("not_allowed", _("Only unit secretaries and the admin manage activities."))
    found = session.scalar(
        select(Unit.id).where(Unit.id == unit_id, Unit.committee_id == actor.committee_id)
    )
    if found is None:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"lead_unit_id": _("No such unit.")}
        )
    return found


def _cohosts(session: Session, actor: User, ids: Sequence[int], lead: int) -> list[Unit]:
    units = list(
        session.scalars(
            select(Unit).where(
                Unit.id.in_(set(ids) - {lead}), Unit.committee_id == actor.committee_id
            )
        )
    )
    if len(units) != len(set(ids) - {lead}):
        raise ValidationFailed(
            _("Please correct the marked fields."), {"cohost_ids": _("No such unit.")}
        )
    return units


def _booking_group(session: Session, unit_id: int, group_id: int | None) -> int:
    """The group the venue's booking is for: the one named, else the lead unit's first
    active group; a unit without one cannot book."""
    if group_id is not None:
        return group_id
    found = session.scalar(
        select(Group.id)
        .where(Group.unit_id == unit_id, Group.active.is_(True))
        .order_by(Group.id)
        .limit(1)
    )
    if found is None:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"venue_id": _("The lead unit needs an active group to hold the venue's booking.")},
        )
    return found


def create_activity(
    session: Session,
    actor: User | None,
    *,
    title: str,
    kind: str,
    start: datetime,
    end: datetime,
    capacity: int,
    signup_deadline: datetime | None = None,
    description: str = "",
    venue_id: int | None = None,
    group_id: int | None = None,
    site_lon: float | None = None,
    site_lat: float | None = None,
    site_area: Any = None,
    site_name: str = "",
    site_street: str = "",
    lead_unit_id: int | None = None,
    cohost_ids: Sequence[int] = (),
    publish: bool = True,
    plan_entry_id: int | None = None,
    now: datetime | None = None,
) -> Activity:
    """A new activity (open, or a draft); at a venue, its booking is made first, by the
    engine, in this transaction (a refusal — RuleViolation, BookingConflict with its
    alternatives — leaves nothing written). ``plan_entry_id``: the plan's turn it holds
    (one the actor may lead, of the lead unit)."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    now = aware(now)
    lead = _lead_unit(session, actor, lead_unit_id)
    errors = rules.activity_problems(
        title=title,
        kind=kind,
        start=start,
        end=end,
        capacity=capacity,
        deadline=signup_deadline,
        description=description,
    )
    site = None
    if venue_id is None:
        site, problem = rules.parse_site(site_lon, site_lat, site_area)
        if problem:
            errors["site"] = problem
    if len(site_name) > 120 or len(site_street) > 120:
        errors["site_name"] = _("At most %(n)s characters.", n=120)
    if not errors and start <= now:
        errors["start"] = _("The activity must start in the future.")
    if plan_entry_id is not None and turn_to_lead(session, actor, plan_entry_id).unit_id != lead:
        errors["lead_unit_id"] = _("The turn is another unit's.")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    cohosts = _cohosts(session, actor, cohost_ids, lead)
    booking_id = None
    if venue_id is not None:
        booking = engine.book(
            session,
            actor,
            venue_id,
            _booking_group(session, lead, group_id),
            start,
            end,
            purpose=title.strip(),
            headcount=capacity,
            now=now,
        )
        booking_id = booking.id
    activity = Activity(
        committee_id=actor.committee_id,
        title=title.strip(),
        kind=kind,
        lead_unit_id=lead,
        start_at=start,
        end_at=end,
        description=description.strip(),
        capacity=capacity,
        signup_deadline=signup_deadline or start,
        status=(ActivityStatus.OPEN if publish else ActivityStatus.DRAFT).value,
        cancel_reason="",
        venue_id=venue_id,
        booking_id=booking_id,
        site_lon=site.lon if site else None,
        site_lat=site.lat if site else None,
        site_area=site.area if site else None,
        site_name=site_name.strip(),
        site_street=site_street.strip(),
        plan_entry_id=plan_entry_id,
        created_by_id=actor.id,
    )
    activity.cohosts = cohosts
    session.add(activity)
    session.flush()
    record(session, actor, "activity.create", activity, title=activity.title, start=start)
    return activity


#: What :func:`update_activity` may change (a venue is not moved: cancel and create anew).
EDITABLE = ("title", "kind", "description", "capacity", "signup_deadline", "start", "end")
SITE_FIELDS = ("site_lon", "site_lat", "site_area", "site_name", "site_street")


def update_activity(
    session: Session,
    actor: User | None,
    activity_id: int,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> Activity:
    """Change an activity (its lead unit or the admin), under its lock: a new time moves the
    venue's booking through the engine; a larger capacity promotes from the waitlist; a
    smaller one may not fall under the confirmed headcount; ``status`` publishes a draft,
    closes sign-up or marks it done. Signed-up groups are told of a new time or place."""
    now = aware(now)
    a = get_activity(session, actor, activity_id, manage=True, lock=True)
    if a.status == ActivityStatus.CANCELLED.value:
        raise refuse("activity_cancelled", "status", _("This activity was cancelled."))

    def given(key: str, default: Any) -> Any:
        return default if changes.get(key) is None else changes[key]

    start, end = given("start", a.start_at), given("end", a.end_at)
    capacity: int = given("capacity", a.capacity)
    deadline: datetime = given("signup_deadline", a.signup_deadline)
    if "start" in changes and "signup_deadline" not in changes and a.signup_deadline == a.start_at:
        deadline = start
    errors = rules.activity_problems(
        title=changes.get("title", a.title),
        kind=changes.get("kind", a.kind),
        start=start,
        end=end,
        capacity=capacity,
        deadline=deadline,
        description=changes.get("description", a.description),
    )
    confirmed, _waiting = counts(session, [a.id])[a.id]
    if capacity < confirmed:
        errors["capacity"] = _(
            "%(n)s people are confirmed already: the capacity cannot be less.", n=confirmed
        )
    status = changes.get("status")
    if status is not None and status not in next_statuses(a.status):
        errors["status"] = _("The activity cannot go from %(a)s to %(b)s.", a=a.status, b=status)
    site = None
    if any(k in changes for k in SITE_FIELDS) and a.venue_id is None:
        site, problem = rules.parse_site(
            changes.get("site_lon", a.site_lon),
            changes.get("site_lat", a.site_lat),
            changes.get("site_area", a.site_area),
        )
        if problem:
            errors["site"] = problem
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    moved = (start, end) != (a.start_at, a.end_at) or site is not None
    if (start, end) != (a.start_at, a.end_at) and a.booking_id is not None:
        engine.reschedule(session, actor, a.booking_id, start, end, now=now)
    before = {
        "start_at": a.start_at,
        "end_at": a.end_at,
        "capacity": a.capacity,
        "status": a.status,
    }
    a.title = str(changes.get("title", a.title)).strip()
    a.kind = changes.get("kind", a.kind)
    a.description = str(changes.get("description", a.description)).strip()
    a.start_at, a.end_at, a.capacity, a.signup_deadline = start, end, capacity, deadline
    if site is not None:
        a.site_lon, a.site_lat, a.site_area = site.lon, site.lat, site.area
        a.site_name = str(changes.get("site_name", a.site_name)).strip()[:120]
        a.site_street = str(changes.get("site_street", a.site_street)).strip()[:120]
    if status is not None:
        a.status = status
    settle(session, a)
    if moved:
        notify(session, a, [s for s in a.signups if s.state in ACTIVE_STATES], "activity_changed")
    after = {"start_at": a.start_at, "end_at": a.end_at, "capacity": a.capacity, "status": a.status}
    record(
        session,
        actor,
        "activity.update",
        a,
        changes={k: [before[k], after[k]] for k in before if before[k] != after[k]},
    )
    return a


def next_statuses(status: str) -> tuple[str, ...]:
    s = ActivityStatus
    return {
        s.DRAFT.value: (s.DRAFT.value, s.OPEN.value),
        s.OPEN.value: (s.OPEN.value, s.CLOSED.value, s.DONE.value),
        s.FULL.value: (s.FULL.value, s.CLOSED.value, s.DONE.value),
        s.CLOSED.value: (s.CLOSED.value, s.OPEN.value, s.DONE.value),
        s.DONE.value: (s.DONE.value,),
    }.get(status, ())


def cancel_activity(
    session: Session,
    actor: User | None,
    activity_id: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> Activity:
    """Cancel an activity with a reason: its venue's booking is cancelled with it and every
    signed-up group told."""
    now = aware(now)
    a = get_activity(session, actor, activity_id, manage=True, lock=True)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"reason": _("Say why it is cancelled.")}
        )
    if a.status == ActivityStatus.CANCELLED.value:
        return a
    if a.booking_id is not None and a.booking is not None and a.booking.is_active:
        engine.cancel(session, actor, a.booking_id, reason=reason, now=now)
    before, a.status, a.cancel_reason = a.status, ActivityStatus.CANCELLED.value, reason[:200]
    notify(
        session,
        a,
        [s for s in a.signups if s.state in ACTIVE_STATES],
        "activity_cancelled",
        reason=a.cancel_reason,
    )
    record(
        session, actor, "activity.cancel", a, changes={"status": [before, a.status]}, reason=reason
    )
    return a
