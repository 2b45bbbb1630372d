"""The demo's activity list and pairings (issue 20 item 7, this part): Runzhou's 2023 plan
(《活动清单》, after the first joint meeting of 21 February 2023) drafted from its units by the
rotation drafter, with the turns the source article names (the tree planting at 朝阳社区 on
10 March led by 中国邮政镇江分公司, 华电句容's social mixer), most turns marked led and a few
late; and pairings one to one and many to one with 朝阳社区. Idempotent."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core import rotation
from mapservice.core.rotation import UnitTurns
from mapservice.models import Area, Committee, Pairing, Plan, PlanEntry, Unit
from mapservice.operations.plans import unit_turns

YEAR = 2023
#: unit → (preferred months, preferred kinds, the turn's title)
WISHES = {
    "中国邮政镇江分公司": ({3}, ("volunteer",), "青年公益林植树（朝阳社区）"),
    "华电句容发电有限公司": ({5}, ("social_mixer",), "青年交友联谊会"),
    "镇江润创青年众创空间": ({6}, ("salon",), "青年创业沙龙"),
    "中国移动镇江分公司": ({9}, ("sports",), "青年羽毛球赛"),
    "镇江市润州区人民法院": ({4}, ("reading_club",), "青年读书会"),
}
#: (unit, partner unit or street, start, end)
PAIRS = [
    ("中国邮政镇江分公司", "南山街道朝阳社区", date(2023, 2, 21), None),
    ("华电句容发电有限公司", "南山街道朝阳社区", date(2023, 3, 1), None),
    ("国网镇江供电公司", "南山街道朝阳社区", date(2023, 3, 1), None),
    ("中国移动镇江分公司", "金山街道西津社区", date(2023, 2, 21), None),
    ("瑞祥科技集团", "中国移动镇江分公司", date(2023, 4, 1), None),
    ("中国工商银行镇江润州支行", "和平路街道", date(2023, 2, 21), date(2023, 12, 31)),
]


def seed_plans(session: Session, committee: Committee) -> int:
    """Runzhou's 2023 plan and pairings (other committees: nothing); the turns added."""
    if committee.slug != "runzhou":
        return 0
    if session.scalar(select(Plan.id).where(Plan.committee_id == committee.id, Plan.year == YEAR)):
        return 0
    units = {
        u.name: u for u in session.scalars(select(Unit).where(Unit.committee_id == committee.id))
    }
    by_id = {u.id: u.name for u in units.values()}
    turns = [
        UnitTurns(
            t.unit_id,
            t.name,
            t.blackout_months,
            frozenset(WISHES[t.name][0]) if t.name in WISHES else t.preferred_months,
            WISHES[t.name][1] if t.name in WISHES else t.preferred_kinds,
        )
        for t in unit_turns(session, committee.id)
    ]
    drafted = rotation.draft(turns, rotation.periods_of(YEAR, "month"))
    plan = Plan(
        committee_id=committee.id,
        year=YEAR,
        title="2023年润州青工委活动清单",
        period="month",
        status="published",
    )
    for i, e in enumerate(drafted):
        name = by_id[e.unit_id]
        entry = PlanEntry(period=e.period, unit_id=e.unit_id, kind=e.kind)
        # a few turns were never led (late); the article's were, as the admin edited them
        entry.led_on = None if i % 7 == 6 else date(YEAR, e.period, 15)
        if name in WISHES:
            entry.kind, entry.title = WISHES[name][1][0], WISHES[name][2]
            entry.led_on = date(YEAR, e.period, 10 if name == "中国邮政镇江分公司" else 15)
        plan.entries.append(entry)
    session.add(plan)
    streets = {
        a.name: a
        for a in session.scalars(
            select(Area).where(Area.committee_id == committee.id, Area.level == "street")
        )
    }
    for unit, partner, start, end in PAIRS:
        if unit not in units or (partner not in units and partner not in streets):
            continue
        session.add(
            Pairing(
                committee_id=committee.id,
                unit_id=units[unit].id,
                partner_unit_id=units[partner].id if partner in units else None,
                partner_area_id=streets[partner].id if partner in streets else None,
                start_on=start,
                end_on=end,
            )
        )
    session.flush()
    return len(drafted)
