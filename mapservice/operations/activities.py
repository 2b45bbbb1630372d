"""Activities (活动) and sign-ups (举手加入): create, change and cancel an activity — at a venue
booked through the booking engine in the same transaction, or at a site — and sign up,
withdraw and record attendance, the capacity never exceeded.

Every write to an activity's sign-ups first locks the activity, as bookings lock their venue
(:mod:`mapservice.booking.locking`): on PostgreSQL ``SELECT … FOR UPDATE`` on the activity's
row, on SQLite the writer transaction begun ``IMMEDIATE``; the sums it decides on are read
under that lock. The rules themselves (confirmed or waitlisted, who is promoted) are
:mod:`mapservice.core.activities`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from mapservice import policy
from mapservice.booking import engine
from mapservice.booking.locking import require_writer
from mapservice.booking.rows import aware
from mapservice.core import activities as rules
from mapservice.core.errors import NotAllowed, NotFound, RuleViolation, ValidationFailed, Violation
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import ActivityStatus, SignUpState
from mapservice.db import utcnow
from mapservice.models import Activity, Committee, Group, Notification, SignUp, Unit, User
from mapservice.models.audit import record

CONFIRMED, WAITLISTED, WITHDRAWN = (s.value for s in SignUpState)
ACTIVE_STATES = (CONFIRMED, WAITLISTED)


# ------------------------------------------------------------------ who sees and manages


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
    it (else 403); with ``lock``, under the activity's lock, read as it is now."""
    stmt = select(Activity).where(Activity.id == activity_id, activities_seen_by(actor))
    if lock:
        require_writer(session)
        stmt = stmt.with_for_update(of=Activity).execution_options(populate_existing=True)
    activity = session.scalars(stmt).one_or_none()
    if activity is None:
        raise NotFound("activity_not_found", _("No such activity."))
    if manage and not can_manage_activity(actor, activity):
        raise NotAllowed("not_allowed", _("Only the lead unit may manage this activity."))
    return activity


def _refuse(code: str, field: str, message: str) -> RuleViolation:
    return RuleViolation([Violation(code, field, message)])


# ------------------------------------------------------------------ reading


def counts(session: Session, ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Activity id → (confirmed headcount, waitlisted headcount)."""
    ids = list(ids)
    out = {i: (0, 0) for i in ids}
    if not ids:
        return out
    for aid, confirmed, waiting in session.execute(
        select(
            SignUp.activity_id,
            func.sum(case((SignUp.state == CONFIRMED, SignUp.headcount), else_=0)),
            func.sum(case((SignUp.state == WAITLISTED, SignUp.headcount), else_=0)),
        )
        .where(SignUp.activity_id.in_(ids))
        .group_by(SignUp.activity_id)
    ):
        out[aid] = (int(confirmed or 0), int(waiting or 0))
    return out


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


def committee_tz(session: Session, committee_id: int) -> ZoneInfo:
    return ZoneInfo(session.scalar(select(Committee.timezone).where(Committee.id == committee_id)))


def shown_status(activity: Activity, now: datetime | None = None) -> str:
    return rules.effective_status(
        activity.status, activity.signup_deadline, activity.end_at, aware(now)
    )


def place_name(activity: Activity) -> str:
    if activity.venue is not None:
        return activity.venue.name
    return activity.site_name or _("Site")


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
    now: datetime | None = None,
) -> Activity:
    """A new activity (open, or a draft); at a venue, its booking is made first, by the
    engine, in this transaction (a refusal — RuleViolation, BookingConflict with its
    alternatives — leaves nothing written)."""
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
        raise _refuse("activity_cancelled", "status", _("This activity was cancelled."))
    start, end = changes.get("start") or a.start_at, changes.get("end") or a.end_at
    capacity = changes.get("capacity") or a.capacity
    deadline = changes.get("signup_deadline") or a.signup_deadline
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
    if status is not None and status not in _next_statuses(a.status):
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
    _settle(session, a)
    if moved:
        _notify(session, a, [s for s in a.signups if s.state in ACTIVE_STATES], "activity_changed")
    after = {"start_at": a.start_at, "end_at": a.end_at, "capacity": a.capacity, "status": a.status}
    record(
        session,
        actor,
        "activity.update",
        a,
        changes={k: [before[k], after[k]] for k in before if before[k] != after[k]},
    )
    return a


def _next_statuses(status: str) -> tuple[str, ...]:
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
    _notify(
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


# ------------------------------------------------------------------ sign-up and withdrawal


def _sums(session: Session, activity_id: int) -> tuple[int, int, int]:
    """Under the lock: confirmed headcount, waitlisted sign-ups, the last arrival number."""
    confirmed, waiting, last = session.execute(
        select(
            func.coalesce(
                func.sum(case((SignUp.state == CONFIRMED, SignUp.headcount), else_=0)), 0
            ),
            func.coalesce(func.sum(case((SignUp.state == WAITLISTED, 1), else_=0)), 0),
            func.coalesce(func.max(SignUp.seq), 0),
        ).where(SignUp.activity_id == activity_id)
    ).one()
    return int(confirmed), int(waiting), int(last)


def _signer(session: Session, actor: User, group_id: int | None) -> tuple[int | None, int | None]:
    """(unit, group) a sign-up is for: the group named (one the actor acts for), else a
    booker's own group, a secretary's own unit."""
    if group_id is None and actor.is_booker:
        group_id = actor.group_id
    if group_id is not None:
        group = policy.get_group(session, actor, group_id)
        return group.unit_id, group.id
    if actor.is_secretary:
        return actor.unit_id, None
    raise ValidationFailed(
        _("Please correct the marked fields."), {"group_id": _("Say which group signs up.")}
    )


def sign_up(
    session: Session,
    actor: User | None,
    activity_id: int,
    headcount: int,
    *,
    group_id: int | None = None,
    note: str = "",
    now: datetime | None = None,
) -> SignUp:
    """Raise a hand for the activity, under its lock: confirmed if nobody waits and the
    headcount fits, else waitlisted (see :mod:`mapservice.core.activities`)."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    now = aware(now)
    a = get_activity(session, actor, activity_id, lock=True)
    _ensure_open(a, now)
    problem = rules.headcount_problem(headcount, a.capacity)
    if problem:
        raise ValidationFailed(_("Please correct the marked fields."), {"headcount": problem})
    if len(note) > rules.MAX_NOTE:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"note": _("At most %(n)s characters.", n=rules.MAX_NOTE)},
        )
    unit_id, gid = _signer(session, actor, group_id)
    same = (
        SignUp.group_id == gid
        if gid is not None
        else and_(SignUp.group_id.is_(None), SignUp.unit_id == unit_id)
    )
    if session.scalar(
        select(SignUp.id).where(SignUp.activity_id == a.id, SignUp.state.in_(ACTIVE_STATES), same)
    ):
        raise _refuse("already_signed_up", "group_id", _("Already signed up for this activity."))
    confirmed, waiting, last = _sums(session, a.id)
    state = rules.place(a.capacity, confirmed, waiting, headcount)
    signup = SignUp(
        activity_id=a.id,
        unit_id=unit_id,
        group_id=gid,
        headcount=headcount,
        state=state,
        seq=last + 1,
        note=note.strip(),
        created_by_id=actor.id,
    )
    session.add(signup)
    if state == CONFIRMED:
        confirmed += headcount
    else:
        waiting += 1
    a.status = rules.fill_status(a.status, a.capacity, confirmed, waiting)
    session.flush()
    if state == CONFIRMED:
        _notify(session, a, [signup], "activity_confirmed")
    return signup


def _ensure_open(a: Activity, now: datetime) -> None:
    status = shown_status(a, now)
    if status == ActivityStatus.CANCELLED.value:
        raise _refuse("activity_cancelled", "status", _("This activity was cancelled."))
    if status not in rules.SIGNUP_OPEN:
        raise _refuse("signup_closed", "status", _("Sign-up for this activity is closed."))


def withdraw(
    session: Session,
    actor: User | None,
    activity_id: int,
    signup_id: int,
    *,
    now: datetime | None = None,
) -> list[SignUp]:
    """Withdraw a sign-up (before the deadline), under the activity's lock, and promote from
    the waitlist in arrival order while the first waiting fits. Returns the promoted."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    now = aware(now)
    a = get_activity(session, actor, activity_id, lock=True)
    signup = session.scalars(
        select(SignUp)
        .where(SignUp.id == signup_id, SignUp.activity_id == a.id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if signup is None or not _acts_for_signup(actor, signup, a):
        raise NotFound("signup_not_found", _("No such sign-up."))
    if signup.state == WITHDRAWN:
        return []
    if now >= a.signup_deadline:
        raise _refuse(
            "deadline_passed",
            "signup",
            _("The sign-up deadline has passed: withdrawing is no longer possible."),
        )
    _ensure_open(a, now)
    signup.state = WITHDRAWN
    session.flush()
    return _settle(session, a)


def _acts_for_signup(actor: User, signup: SignUp, a: Activity) -> bool:
    if can_manage_activity(actor, a):
        return True
    if signup.group_id is not None:
        return bool(
            (actor.is_booker and actor.group_id == signup.group_id)
            or (actor.is_secretary and signup.unit_id == actor.unit_id)
        )
    return actor.is_secretary and signup.unit_id == actor.unit_id


def _settle(session: Session, a: Activity) -> list[SignUp]:
    """Under the lock: promote from the waitlist what now fits, and let the status follow."""
    session.flush()
    confirmed, _waiting, _last = _sums(session, a.id)
    waitlist = list(
        session.scalars(
            select(SignUp)
            .where(SignUp.activity_id == a.id, SignUp.state == WAITLISTED)
            .order_by(SignUp.seq)
        )
    )
    chosen = set(rules.promotions(a.capacity, confirmed, [(s.id, s.headcount) for s in waitlist]))
    promoted = [s for s in waitlist if s.id in chosen]
    for s in promoted:
        s.state = CONFIRMED
        confirmed += s.headcount
    a.status = rules.fill_status(a.status, a.capacity, confirmed, len(waitlist) - len(promoted))
    session.flush()
    _notify(session, a, promoted, "activity_promoted")
    return promoted


def record_attendance(
    session: Session, actor: User | None, activity_id: int, attended: Mapping[int, int | None]
) -> Activity:
    """The lead unit records how many came of each confirmed sign-up (after the start)."""
    a = get_activity(session, actor, activity_id, manage=True)
    if utcnow() < a.start_at:
        raise _refuse("not_started", "attended", _("Attendance is recorded once it has begun."))
    errors = {
        str(sid): _("0 to %(n)s people.", n=rules.MAX_CAPACITY)
        for sid, n in attended.items()
        if n is not None and not 0 <= n <= rules.MAX_CAPACITY
    }
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    for s in a.signups:
        if s.id in attended and s.state == CONFIRMED:
            s.attended = attended[s.id]
    record(session, actor, "activity.attendance", a, signups=dict(attended))
    return a


def _notify(
    session: Session, a: Activity, signups: Iterable[SignUp], kind: str, **params: Any
) -> None:
    """A notice to each signed-up group (a unit's own sign-up has no group's inbox)."""
    tz = committee_tz(session, a.committee_id)
    for s in signups:
        if s.group_id is None:
            continue
        session.add(
            Notification(
                group_id=s.group_id,
                booking_id=None,
                kind=kind,
                params=json.dumps(
                    {
                        "title": a.title,
                        "venue": place_name(a),
                        "start": a.start_at.astimezone(tz).isoformat(),
                        "activity_id": a.id,
                        **params,
                    },
                    ensure_ascii=False,
                ),
            )
        )
    session.flush()


def signups_of(session: Session, activity_id: int) -> list[SignUp]:
    return list(
        session.scalars(
            select(SignUp)
            .where(SignUp.activity_id == activity_id)
            .options(selectinload(SignUp.unit), selectinload(SignUp.group))
            .order_by(SignUp.seq)
        )
    )


def signup_rows(session: Session, a: Activity) -> list[dict[str, Any]]:
    """The sign-up list as rows (for the lead unit's export)."""
    tz = committee_tz(session, a.committee_id)
    return [
        {
            _("No."): s.seq,
            _("Unit"): s.unit.name if s.unit else "",
            _("Group"): s.group.name if s.group else "",
            _("Headcount"): s.headcount,
            _("State"): SignUpState(s.state).label(lang()),
            _("Attended"): "" if s.attended is None else s.attended,
            _("Note"): s.note,
            _("Signed up at"): s.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        }
        for s in signups_of(session, a.id)
    ]
