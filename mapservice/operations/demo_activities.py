"""The demo's activities (issue 20 item 7): the tree planting at 朝阳社区 on 10 March 2023 led
by 中国邮政镇江分公司 (a drawn plot of public-welfare land, not a venue; the March turn of the
2023 plan, done, 100+ volunteers signed up and attended), a badminton tournament at
中国移动镇江分公司's courts booked through the booking engine, and activities open for
sign-up in the coming month — each of the kind its lead unit's turn in the plan names.
Idempotent: nothing is added once the committee has activities."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core.errors import BookingConflict, RuleViolation
from mapservice.db import is_immediate, utcnow
from mapservice.models import Activity, Committee, Group, Plan, PlanEntry, SignUp, Unit, User, Venue
from mapservice.operations.activities import create_activity
from mapservice.operations.signups import sign_up

POST, MOBILE = "中国邮政镇江分公司", "中国移动镇江分公司"
#: The plot of 青年公益林 (about 2,000 m²) beside 润州青年公益林.
PLOT = {
    "type": "Polygon",
    "coordinates": [
        [
            [119.42872, 32.17045],
            [119.42922, 32.17045],
            [119.42922, 32.17085],
            [119.42872, 32.17085],
            [119.42872, 32.17045],
        ]
    ],
}
#: Who planted (unit → volunteers signed up, attended).
PLANTERS = [
    (POST, 32, 30),
    ("华电句容发电有限公司", 25, 24),
    ("国网镇江供电公司", 20, 20),
    ("南山街道朝阳社区", 15, 17),
    (MOBILE, 12, 11),
]
#: Open in the coming month: (lead unit, kind, title, days from today, hours, capacity, site,
#: (lon, lat), community/street, sign-ups (unit, headcount)).
COMING = [
    ("华电句容发电有限公司", "social_mixer", "青年交友联谊会", 9, (19, 21), 40,
     "西津渡青年驿站", (119.4235, 32.2205), "金山街道西津社区",
     [("中国邮政镇江分公司", 6), ("瑞祥科技集团", 5)]),
    ("镇江润创青年众创空间", "salon", "青年创业沙龙", 16, (14, 17), 30,
     "润创青年众创空间路演厅", (119.4320, 32.1930), "和平路街道中山社区",
     [("镇江云栖信息科技有限公司", 4)]),
    ("镇江市润州区人民法院", "reading_club", "青年读书会：法治与青春", 23, (19, 21), 20,
     "润州区图书馆青年书屋", (119.4150, 32.2010), "宝塔路街道宝塔社区", []),
]  # fmt: skip


def _local(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tz)


def seed_activities(
    session: Session, committee: Committee, *, today: date, now: datetime | None = None
) -> int:
    """Runzhou's demo activities (other committees: none); the number added."""
    if committee.slug != "runzhou":
        return 0
    if session.scalar(select(Activity.id).where(Activity.committee_id == committee.id).limit(1)):
        return 0
    tz = ZoneInfo(committee.timezone)
    if now is None:
        # A seed dated in the past (tests of backups, history) sees the world as on that
        # morning, so its "coming month" is still ahead of it.
        now = utcnow() if today >= date.today() else datetime.combine(today, time(8), tz)
    units = {
        u.name: u for u in session.scalars(select(Unit).where(Unit.committee_id == committee.id))
    }
    groups: dict[int, int] = {}
    for gid, uid in session.execute(
        select(Group.id, Group.unit_id).where(Group.committee_id == committee.id).order_by(Group.id)
    ):
        if uid is not None:
            groups.setdefault(uid, gid)
    admin = session.scalars(
        select(User).where(User.committee_id == committee.id, User.role == "committee_admin")
    ).first()
    if admin is None or POST not in units or MOBILE not in units:
        return 0
    _planting(session, committee, units, groups, tz)
    if not is_immediate(session):
        # The seed's transaction has written already (it holds SQLite's write lock): the
        # engine and the sign-ups may treat it as the writer they require.
        session.flush()
        session.connection().execution_options(sqlite_begin="immediate")
    added = 1 + _tournament(session, admin, units, groups, today, tz, now)
    for lead, kind, title, days, hours, capacity, site, (lon, lat), street, hands in COMING:
        if lead not in units:
            continue
        day = today + timedelta(days=days)
        activity = create_activity(
            session,
            admin,
            title=title,
            kind=kind,
            start=_local(day, hours[0], tz),
            end=_local(day, hours[1], tz),
            capacity=capacity,
            signup_deadline=_local(day - timedelta(days=1), 18, tz),
            lead_unit_id=units[lead].id,
            site_lon=lon,
            site_lat=lat,
            site_name=site,
            site_street=street,
            now=now,
        )
        for unit, headcount in hands:
            if unit in units and units[unit].id in groups:
                sign_up(
                    session, admin, activity.id, headcount, group_id=groups[units[unit].id], now=now
                )
        added += 1
    session.flush()
    return added


def _planting(
    session: Session,
    committee: Committee,
    units: dict[str, Unit],
    groups: dict[int, int],
    tz: ZoneInfo,
) -> None:
    """The tree planting of 10 March 2023, done: written as it was (the engine and the
    sign-up rules only take the future)."""
    entry = session.scalar(
        select(PlanEntry.id)
        .join(Plan, Plan.id == PlanEntry.plan_id)
        .where(
            Plan.committee_id == committee.id,
            Plan.year == 2023,
            PlanEntry.unit_id == units[POST].id,
            PlanEntry.kind == "volunteer",
        )
        .limit(1)
    )
    start = datetime(2023, 3, 10, 9, tzinfo=tz)
    planting = Activity(
        committee_id=committee.id,
        title="青年公益林植树",
        kind="volunteer",
        lead_unit_id=units[POST].id,
        start_at=start,
        end_at=start + timedelta(hours=3),
        description="2000平方米裸地变身青年公益林：百余名青年志愿者种下200余棵树。",
        capacity=120,
        signup_deadline=start - timedelta(days=2),
        status="done",
        site_lon=119.42897,
        site_lat=32.17065,
        site_area=json.dumps(PLOT),
        site_name="润州青年公益林（朝阳社区）",
        site_street="南山街道朝阳社区",
        plan_entry_id=entry,
        created_at=start - timedelta(days=14),
    )
    session.add(planting)
    session.flush()
    seq = 0
    for name, headcount, attended in PLANTERS:
        if name not in units:
            continue
        seq += 1
        session.add(
            SignUp(
                activity_id=planting.id,
                unit_id=units[name].id,
                group_id=groups.get(units[name].id),
                headcount=headcount,
                state="confirmed",
                seq=seq,
                attended=attended,
                created_at=start - timedelta(days=7, hours=-seq),
            )
        )


def _tournament(
    session: Session,
    admin: User,
    units: dict[str, Unit],
    groups: dict[int, int],
    today: date,
    tz: ZoneInfo,
    now: datetime,
) -> int:
    """A badminton tournament at 中国移动镇江分公司's courts, booked through the engine on the
    first weekend afternoon it takes, two to four weeks ahead (past the demo's bookings);
    full, with one group waiting."""
    court = session.scalar(
        select(Venue.id).where(Venue.unit_id == units[MOBILE].id, Venue.type == "badminton")
    )
    if court is None:
        return 0
    for offset in range(15, 29):
        day = today + timedelta(days=offset)
        if day.weekday() < 5:
            continue
        try:
            with session.begin_nested():
                match = create_activity(
                    session,
                    admin,
                    title="润州青年羽毛球联谊赛",
                    kind="sports",
                    start=_local(day, 14, tz),
                    end=_local(day, 17, tz),
                    capacity=16,
                    description="三片场地，团体赛，每队4人。",
                    venue_id=court,
                    lead_unit_id=units[MOBILE].id,
                    now=now,
                )
        except (RuleViolation, BookingConflict):
            continue
        for name, headcount in (
            (MOBILE, 4),
            (POST, 4),
            ("瑞祥科技集团", 8),
            ("华电句容发电有限公司", 4),
        ):
            if name in units and units[name].id in groups:
                sign_up(
                    session, admin, match.id, headcount, group_id=groups[units[name].id], now=now
                )
        return 1
    return 0
