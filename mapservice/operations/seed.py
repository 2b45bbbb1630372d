"""The demo data (``mapservice seed demo``): committees, units, groups, venues and log-ins from
``seeds/*.json`` and boundaries from ``geodata/``. Idempotent: what exists is left alone."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.config import ROOT
from mapservice.core import geo
from mapservice.core.venue_io import VenueRow
from mapservice.core.vocab import Role, UnitStatus
from mapservice.models import Committee, Group, Unit, User, Venue
from mapservice.operations.areas import load_areas
from mapservice.operations.users import create_user
from mapservice.operations.venues import Region, add_closure, save_venue

SEEDS = ROOT / "seeds"
GEODATA = ROOT / "geodata"
DEMO_PASSWORD = "mapservice-demo"
SEED_FILES = ("runzhou.json", "qiqihar-jianhua.json")
# (username, role, committee slug, unit or group name)
DEMO_USERS = [
    ("demo-admin", Role.COMMITTEE_ADMIN.value, "runzhou", None),
    ("demo-secretary", Role.UNIT_SECRETARY.value, "runzhou", "中国移动镇江分公司"),
    ("demo-booker", Role.BOOKER.value, "runzhou", "瑞祥科技集团青年团支部"),
    ("demo-admin-qiqihar", Role.COMMITTEE_ADMIN.value, "qiqihar-jianhua", None),
]
_ROW_FIELDS = {f.name for f in fields(VenueRow)}


def load_committee(session: Session, data: dict[str, Any]) -> tuple[Committee, bool]:
    spec = data["committee"]
    committee = session.scalars(
        select(Committee).where(Committee.slug == spec["slug"])
    ).one_or_none()
    if committee is not None:
        return committee, False
    committee = Committee(
        slug=spec["slug"],
        name=spec["name"],
        name_en=spec.get("name_en", ""),
        city=spec.get("city", ""),
        timezone=spec.get("timezone", "Asia/Shanghai"),
    )
    session.add(committee)
    session.flush()
    region_dir = GEODATA / spec["region_dir"]
    districts = [
        a
        for a in geo.read_areas(region_dir / spec["region_file"], level="district")
        if a.name == spec["region_name"]
    ]
    load_areas(session, None, committee, districts, "district")
    if spec.get("streets_file"):
        load_areas(
            session,
            None,
            committee,
            geo.read_areas(region_dir / spec["streets_file"], level="street"),
            "street",
        )
    return committee, True


def _system_admin(session: Session, committee: Committee) -> User:
    """The committee's demo admin, used as the actor for seeding."""
    username = next(
        u
        for u, role, slug, _ in DEMO_USERS
        if slug == committee.slug and role == Role.COMMITTEE_ADMIN.value
    )
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        user = create_user(
            session,
            None,
            committee,
            username=username,
            password=DEMO_PASSWORD,
            role=Role.COMMITTEE_ADMIN.value,
            display_name=committee.name,
        )
    return user


def seed_file(session: Session, path: Path) -> dict[str, int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    committee, _created = load_committee(session, data)
    admin = _system_admin(session, committee)
    counts = {"units": 0, "groups": 0, "venues": 0, "users": 0}
    units: dict[str, Unit] = {
        u.name: u for u in session.scalars(select(Unit).where(Unit.committee_id == committee.id))
    }
    for spec in data["units"]:
        if spec["name"] in units:
            continue
        unit = Unit(
            committee_id=committee.id,
            name=spec["name"],
            name_en=spec.get("name_en", ""),
            kind=spec["kind"],
            secretary=spec.get("secretary", ""),
            phone=spec.get("phone", ""),
            status=UnitStatus.ACTIVE.value,
            is_demo=bool(spec.get("demo", True)),
        )
        session.add(unit)
        units[unit.name] = unit
        counts["units"] += 1
    session.flush()
    groups = {
        g.name for g in session.scalars(select(Group).where(Group.committee_id == committee.id))
    }
    for spec in data["groups"]:
        if spec["name"] in groups:
            continue
        session.add(
            Group(
                committee_id=committee.id,
                name=spec["name"],
                unit_id=units[spec["unit"]].id if spec.get("unit") else None,
                contact_name=spec.get("contact_name", ""),
                contact_phone=spec.get("contact_phone", ""),
            )
        )
        counts["groups"] += 1
    session.flush()
    region = Region.of(session, committee)
    for spec in data["venues"]:
        unit = units[spec["unit"]]
        if session.scalar(
            select(Venue.id).where(Venue.unit_id == unit.id, Venue.name == spec["name"])
        ):
            continue
        row = VenueRow(**{k: v for k, v in spec.items() if k in _ROW_FIELDS})
        venue = save_venue(session, admin, committee, row, region=region)
        venue.is_demo = bool(spec.get("demo", True))
        for closure in spec.get("closures", []):
            add_closure(
                session,
                admin,
                venue.id,
                datetime.fromisoformat(closure["start"]),
                datetime.fromisoformat(closure["end"]),
                closure.get("reason", ""),
                check_window=False,  # the demo's fixed dates may lie years back
            )
        counts["venues"] += 1
    # Admission statuses last, so venues of units still "applied" could be registered above.
    for spec in data["units"]:
        unit = units[spec["name"]]
        if counts["units"] and unit.status != spec.get("status", "active"):
            unit.status = spec.get("status", "active")
    for username, role, slug, owner in DEMO_USERS:
        if slug != committee.slug or role == Role.COMMITTEE_ADMIN.value:
            continue
        if session.scalar(select(User.id).where(User.username == username)):
            continue
        create_user(
            session,
            admin,
            committee,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            unit=units.get(owner or "") if role == Role.UNIT_SECRETARY.value else None,
            group=session.scalars(
                select(Group).where(Group.committee_id == committee.id, Group.name == owner)
            ).one_or_none()
            if role == Role.BOOKER.value
            else None,
        )
        counts["users"] += 1
    session.flush()
    return counts


def seed_demo(
    session: Session, today: date | None = None, now: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Load every demo seed file and eight weeks of bookings around ``today``, their statuses
    as at ``now`` (default: the present); returns what was added per file (zeros on a second
    run)."""
    from mapservice.operations.demo_activities import seed_activities
    from mapservice.operations.demo_bookings import seed_bookings
    from mapservice.operations.demo_plans import seed_plans

    out = {}
    for name in SEED_FILES:
        counts = seed_file(session, SEEDS / name)
        slug = json.loads((SEEDS / name).read_text(encoding="utf-8"))["committee"]["slug"]
        committee = session.scalars(select(Committee).where(Committee.slug == slug)).one()
        counts["bookings"] = seed_bookings(session, committee, today=today or date.today(), now=now)
        counts["plan_turns"] = seed_plans(session, committee)
        counts["activities"] = seed_activities(
            session, committee, today=today or date.today(), now=now
        )
        out[name] = counts
    return out
