"""Sign-ups (举手加入) to activities: sign up, withdraw, record attendance, the list and its
export — the capacity never exceeded.

Every write to an activity's sign-ups first takes the activity's lock (:func:`lock_activity`
for a sign-up, :func:`mapservice.policy.activities.get_activity` with ``lock`` for the rest),
as a booking locks its venue
(:mod:`mapservice.booking.locking`): on PostgreSQL ``SELECT … FOR UPDATE`` on the activity's
row, on SQLite the writer transaction begun ``IMMEDIATE``; the sums a decision rests on are
read under that lock. The rules themselves (confirmed or waitlisted, who is promoted) are
:mod:`mapservice.core.activities`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Row, Select, and_, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload
from sqlalchemy.sql.elements import ColumnElement

from mapservice.booking.rows import aware
from mapservice.core import activities as rules
from mapservice.core.errors import NotAllowed, NotFound, RuleViolation, ValidationFailed, Violation
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import ActivityStatus, SignUpState
from mapservice.db import is_immediate, utcnow
from mapservice.models import Activity, Committee, Group, Notification, SignUp, User, Venue
from mapservice.models.audit import record
from mapservice.policy.activities import activities_seen_by, can_manage_activity, get_activity
from mapservice.policy.groups import groups_acted_for_by
from mapservice.stats.report import Column, Table

CONFIRMED, WAITLISTED, WITHDRAWN = (s.value for s in SignUpState)
ACTIVE_STATES = (CONFIRMED, WAITLISTED)


def committee_tz(session: Session, committee_id: int) -> ZoneInfo:
    name = session.scalar(select(Committee.timezone).where(Committee.id == committee_id))
    return ZoneInfo(name or "Asia/Shanghai")


def shown_status(activity: Activity, now: datetime | None = None) -> str:
    return rules.effective_status(
        activity.status, activity.signup_deadline, activity.end_at, aware(now)
    )


def place_name(activity: Activity) -> str:
    if activity.venue is not None:
        return activity.venue.name
    return activity.site_name or _("Site")


def refuse(code: str, field: str, message: str) -> RuleViolation:
    return RuleViolation([Violation(code, field, message)])


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


# ------------------------------------------------------------------ sign-up and withdrawal


def _sums_statement(same: ColumnElement[bool] | None) -> Select[Any]:
    dup = case((and_(SignUp.state.in_(ACTIVE_STATES), same), 1), else_=0) if same is not None else 0
    return select(
        func.coalesce(func.sum(case((SignUp.state == CONFIRMED, SignUp.headcount), else_=0)), 0),
        func.coalesce(func.sum(case((SignUp.state == WAITLISTED, 1), else_=0)), 0),
        func.coalesce(func.max(SignUp.seq), 0),
        func.coalesce(func.sum(dup), 0),
    ).where(SignUp.activity_id == bindparam("activity_id"))


# Under the lock: confirmed headcount, waitlisted sign-ups, the last arrival number and how
# many active sign-ups are the same signer's (a group's, or a unit's own) — built once.
_SUMS = {
    None: _sums_statement(None),
    "group": _sums_statement(SignUp.group_id == bindparam("group_id")),
    "unit": _sums_statement(
        and_(SignUp.group_id.is_(None), SignUp.unit_id == bindparam("unit_id"))
    ),
}


def _sums(
    session: Session, activity_id: int, signer: str | None = None, **ids: int | None
) -> tuple[int, int, int, int]:
    """Under the lock: confirmed headcount, waitlisted sign-ups, the last arrival number and
    (with ``signer`` ``group`` or ``unit`` and its ``group_id``/``unit_id``) the active
    sign-ups of the same signer."""
    row = session.connection().execute(_SUMS[signer], {"activity_id": activity_id, **ids}).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


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
    """Raise a hand for the activity: confirmed if nobody waits and the headcount fits, else
    waitlisted (see :mod:`mapservice.core.activities`).

    Three statements and no ORM loading, the first of them taking the lock: (1) the
    activity's lock with, in the same statement, what the checks need of it as the actor sees
    it (status, capacity, deadline, times, title, place, the committee's time zone) and the
    unit of the group that signs up if the actor acts for it (on PostgreSQL ``FOR UPDATE`` of
    the activity's row, re-read when the lock is granted; on SQLite the first statement of
    the ``IMMEDIATE`` transaction); (2) the sums, arrival number and duplicate check in a
    statement of their own (on PostgreSQL it sees every sign-up committed before the lock
    was granted); (3) the row. Then, only when they change, the activity's status and the
    group's notice, each one plain statement."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    now = aware(now)
    if len(note) > rules.MAX_NOTE:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"note": _("At most %(n)s characters.", n=rules.MAX_NOTE)},
        )
    gid = actor.group_id if group_id is None and actor.is_booker else group_id
    if gid is None and not actor.is_secretary:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"group_id": _("Say which group signs up.")}
        )
    row = lock_activity(session, activity_id, actor, gid)
    if row is None:
        raise NotFound("activity_not_found", _("No such activity."))
    if gid is not None and not row.group_seen:  # (a group may have no unit)
        raise NotFound("group_not_found", _("No such group."))
    unit_id = row.group_unit_id if gid is not None else actor.unit_id
    _ensure_open(now, row.status, row.signup_deadline, row.end_at)
    problem = rules.headcount_problem(headcount, row.capacity)
    if problem:
        raise ValidationFailed(_("Please correct the marked fields."), {"headcount": problem})
    if gid is not None:
        confirmed, waiting, last, dups = _sums(session, activity_id, "group", group_id=gid)
    else:
        confirmed, waiting, last, dups = _sums(session, activity_id, "unit", unit_id=unit_id)
    if dups:
        raise refuse("already_signed_up", "group_id", _("Already signed up for this activity."))
    state = rules.place(row.capacity, confirmed, waiting, headcount)
    confirmed += headcount if state == CONFIRMED else 0
    waiting += state == WAITLISTED
    created = utcnow()
    values: dict[str, Any] = {
        "activity_id": activity_id,
        "unit_id": unit_id,
        "group_id": gid,
        "headcount": headcount,
        "state": state,
        "seq": last + 1,
        "note": note.strip(),
        "attended": None,
        "created_by_id": actor.id,
        "created_at": created,
        "updated_at": created,
    }
    conn = session.connection()
    signup_id = conn.execute(_INSERT_SIGNUP, values).scalar_one()
    settled = rules.fill_status(row.status, row.capacity, confirmed, waiting)
    if settled != row.status:
        conn.execute(_SET_STATUS, {"activity_id": activity_id, "status": settled, "at": created})
    if state == CONFIRMED and gid is not None:
        tz = ZoneInfo(row.timezone or "Asia/Shanghai")
        params = {
            "title": row.title,
            "venue": row.venue_name if row.venue_name is not None else row.site_name or _("Site"),
            "start": row.start_at.astimezone(tz).isoformat(),
            "activity_id": activity_id,
        }
        written(
            session,
            conn.execute(
                _INSERT_NOTICE,
                {
                    "group_id": gid,
                    "booking_id": None,
                    "kind": "activity_confirmed",
                    "params": json.dumps(params, ensure_ascii=False),
                    "created_at": created,
                },
            ).scalar_one(),
        )
    loaded = session.identity_map.get(session.identity_key(Activity, activity_id))
    if loaded is not None:
        session.expire(loaded)  # written apart: read again on first use
    signup = SignUp(id=signup_id, **values)
    make_transient_to_detached(signup)
    session.add(signup)
    return signup


def written(session: Session, notice_id: int) -> None:
    """A notice written with a plain statement, for the e-mail sent after the commit (what
    the listener of ``web.bookings.inbox`` collects from a flush's new notices)."""
    session.info.setdefault("notice_ids", []).append(notice_id)


# Built once: under the lock, building a statement costs more than running it.
_INSERT_SIGNUP = insert(SignUp).returning(SignUp.id)
_INSERT_NOTICE = insert(Notification).returning(Notification.id)
_SET_STATUS = (
    update(Activity)
    .where(Activity.id == bindparam("activity_id"))
    .values(status=bindparam("status"), updated_at=bindparam("at"))
)


def _lock_read(actor: User, dialect: str) -> Select[Any]:
    """The lock statement for ``actor`` (group as ``group_id``), built once for each set of
    the actor's values the visibility rules read: the committee, active, the role, the unit
    and, for a booker, its groups (:func:`activities_seen_by`, :func:`groups_acted_for_by`)."""
    key = (
        dialect,
        actor.committee_id,
        actor.active,
        actor.is_admin,
        actor.is_secretary,
        actor.unit_id,
        actor.group_ids,
    )
    stmt = _LOCK_READS.get(key)
    if stmt is None:
        if len(_LOCK_READS) >= 512:
            _LOCK_READS.clear()
        stmt = _LOCK_READS[key] = _build_lock_read(actor)
        if dialect == "postgresql":
            stmt = _LOCK_READS[key] = stmt.with_for_update(of=Activity)
    return stmt


_LOCK_READS: dict[tuple[Any, ...], Select[Any]] = {}


def _build_lock_read(actor: User) -> Select[Any]:
    of_group = (Group.id == bindparam("group_id"), groups_acted_for_by(actor))
    group = select(Group.unit_id).where(*of_group)
    seen = select(Group.id).where(*of_group)
    return (
        select(
            Activity.status,
            Activity.capacity,
            Activity.signup_deadline,
            Activity.end_at,
            Activity.title,
            Activity.start_at,
            Activity.site_name,
            Venue.name.label("venue_name"),
            select(Committee.timezone)
            .where(Committee.id == Activity.committee_id)
            .scalar_subquery()
            .label("timezone"),
            group.scalar_subquery().label("group_unit_id"),
            seen.exists().label("group_seen"),
        )
        .outerjoin(Venue, Venue.id == Activity.venue_id)
        .where(Activity.id == bindparam("activity_id"), activities_seen_by(actor))
    )


def lock_activity(
    session: Session, activity_id: int, actor: User, group_id: int | None
) -> Row[Any] | None:
    """Take the activity's lock and read, in the same statement, what sign-up decides on, as
    ``actor`` sees the activity, with the unit of ``group_id`` if ``actor`` acts for it
    (PostgreSQL: the activity's row ``FOR UPDATE``; SQLite: the writer transaction begun
    ``IMMEDIATE``). None if it is gone or not seen."""
    stmt = _lock_read(actor, session.get_bind().dialect.name)
    if not is_immediate(session):
        raise RuntimeError("an activity's sign-ups are written in a writer session")
    return (
        session.connection()
        .execute(stmt, {"activity_id": activity_id, "group_id": group_id})
        .one_or_none()
    )


def _ensure_open(now: datetime, status: str, deadline: datetime, end: datetime) -> None:
    """Refused unless sign-up is open."""
    status = rules.effective_status(status, deadline, end, now)
    if status == ActivityStatus.CANCELLED.value:
        raise refuse("activity_cancelled", "status", _("This activity was cancelled."))
    if status not in rules.SIGNUP_OPEN:
        raise refuse("signup_closed", "status", _("Sign-up for this activity is closed."))


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
    if signup is None or not acts_for_signup(actor, signup, a):
        raise NotFound("signup_not_found", _("No such sign-up."))
    if signup.state == WITHDRAWN:
        return []
    if now >= a.signup_deadline:
        raise refuse(
            "deadline_passed",
            "signup",
            _("The sign-up deadline has passed: withdrawing is no longer possible."),
        )
    _ensure_open(now, a.status, a.signup_deadline, a.end_at)
    signup.state = WITHDRAWN
    session.flush()
    return settle(session, a)


def acts_for_signup(actor: User, signup: SignUp, a: Activity) -> bool:
    if can_manage_activity(actor, a):
        return True
    if signup.group_id is not None:
        return bool(
            (actor.is_booker and actor.group_id == signup.group_id)
            or (actor.is_secretary and signup.unit_id == actor.unit_id)
        )
    return actor.is_secretary and signup.unit_id == actor.unit_id


def settle(session: Session, a: Activity) -> list[SignUp]:
    """Under the lock: promote from the waitlist what now fits, and let the status follow."""
    session.flush()
    confirmed, _waiting, _last, _same = _sums(session, a.id)
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
    notify(session, a, promoted, "activity_promoted")
    return promoted


def record_attendance(
    session: Session, actor: User | None, activity_id: int, attended: Mapping[int, int | None]
) -> Activity:
    """The lead unit records how many came of each confirmed sign-up (after the start)."""
    a = get_activity(session, actor, activity_id, manage=True)
    if utcnow() < a.start_at:
        raise refuse("not_started", "attended", _("Attendance is recorded once it has begun."))
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


def notify(
    session: Session,
    a: Activity,
    signups: Iterable[SignUp],
    kind: str,
    *,
    tz: ZoneInfo | None = None,
    **params: Any,
) -> None:
    """A notice to each signed-up group (a unit's own sign-up has no group's inbox): its
    group_id set on a sign-up not yet flushed too."""
    to = [s.group_id for s in signups if s.group_id is not None]
    if not to:
        return
    tz = tz or committee_tz(session, a.committee_id)
    for group_id in to:
        session.add(
            Notification(
                group_id=group_id,
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


def signups_of(session: Session, activity_id: int) -> list[SignUp]:
    return list(
        session.scalars(
            select(SignUp)
            .where(SignUp.activity_id == activity_id)
            .options(selectinload(SignUp.unit), selectinload(SignUp.group))
            .order_by(SignUp.seq)
        )
    )


SIGNUP_COLUMNS = [
    Column("seq", "序号", "No.", "int"),
    Column("unit", "单位", "Unit"),
    Column("group", "团体", "Group"),
    Column("headcount", "人数", "Headcount", "int"),
    Column("state", "状态", "State"),
    Column("attended", "实到人数", "Attended", "int"),
    Column("note", "备注", "Note"),
    Column("signed_up_at", "报名时间", "Signed up at"),
]


def signup_table(session: Session, a: Activity) -> Table:
    """The sign-up list as a table (the lead unit's CSV/XLSX export)."""
    tz = committee_tz(session, a.committee_id)
    rows = [
        {
            "seq": s.seq,
            "unit": s.unit.name if s.unit else "",
            "group": s.group.name if s.group else "",
            "headcount": s.headcount,
            "state": SignUpState(s.state).label(lang()),
            "attended": s.attended,
            "note": s.note,
            "signed_up_at": s.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        }
        for s in signups_of(session, a.id)
    ]
    frame = pd.DataFrame(rows, columns=[c.key for c in SIGNUP_COLUMNS]).astype(object)
    return Table("signups", a.title, SIGNUP_COLUMNS, frame)
