"""A booker for one or more groups (issue 19, item 2): the admin (any of the committee's
groups) and a unit secretary (only its unit's) pick several groups for a booker; the booker
books for any of them (the form starts at its default group), finds all their bookings in
"my bookings", reads their feeds and notices; a booker with no group, or a secretary picking
another unit's group, is refused with nothing changed. Migration 0015 gives every existing
booker its group. One world per module, CSRF off."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking.notices import mails_for
from mapservice.db import make_engine
from mapservice.migrate import upgrade
from mapservice.models import Booking, Notification, User
from tests.conftest import PASSWORD, Factory, module_world
from tests.test_access_matrix_web import changed_tables, snapshot
from tests.test_models import fresh_database

TZ = ZoneInfo("Asia/Shanghai")


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        self.session, self.engine = session, engine
        make = Factory(session, areas)
        committee = make.committee("runzhou")
        self.unit_a, self.unit_b = make.unit(committee, "甲单位"), make.unit(committee, "乙单位")
        self.a1 = make.group(committee, self.unit_a, "甲一团支部")
        self.a2 = make.group(committee, self.unit_a, "甲二团支部")
        self.b = make.group(committee, self.unit_b, "乙团支部")
        make.admin(committee, username="admin")
        make.secretary(self.unit_a, username="sec-a")
        self.duo = make.user(
            committee, "booker", username="duo", groups=[self.a2, self.a1], email="duo@example.com"
        )
        self.venue = make.venue(
            self.unit_b, name="乙羽毛球馆", capacity_units=2, min_notice_minutes=0
        )

    def fresh(self) -> Session:
        self.session.rollback()
        self.session.expire_all()
        return self.session


class Clients:
    def __init__(self, app: Any) -> None:
        self.app = app

    def as_(self, username: str) -> Any:
        client = self.app.test_client()
        client.post("/login", data={"username": username, "password": PASSWORD})
        return client


world, web = module_world(World, lambda app, _w: Clients(app), csrf=False)


def test_secretaries_and_the_admin_pick_several_groups(world: World, web: Clients) -> None:
    sec, admin = web.as_("sec-a"), web.as_("admin")
    new = {"role": "booker", "group_id": [str(world.a1.id), str(world.a2.id)]}
    assert sec.post("/users/new", data={**new, "username": "two-a"}).status_code == 200
    user = world.fresh().scalars(select(User).where(User.username == "two-a")).one()
    assert ({g.name for g in user.groups}, user.group_id) == (
        {"甲一团支部", "甲二团支部"},
        world.a1.id,
    )

    before = snapshot(world.engine)
    other = {"role": "booker", "username": "x-ab", "group_id": [str(world.a1.id), str(world.b.id)]}
    resp = sec.post("/users/new", data=other)  # another unit's group among them
    assert resp.status_code == 422 and "只能管理本单位的团体" in resp.get_data(as_text=True)
    none = {"role": "booker", "username": "x-none"}
    assert sec.post("/users/new", data=none).status_code == 422  # a booker with no group
    assert admin.post("/users/new", data=none).status_code == 422
    assert changed_tables(before, snapshot(world.engine)) == []

    mixed = {"role": "booker", "username": "mixed", "group_id": [str(world.b.id), str(world.a1.id)]}
    assert admin.post("/users/new", data=mixed).status_code == 200
    assert "乙团支部、甲一团支部" in admin.get("/users/").get_data(as_text=True).replace(
        "甲一团支部、乙团支部", "乙团支部、甲一团支部"
    )
    # A booker also booking for another unit's group is the admin's, not the secretary's.
    listed = sec.get("/users/").get_data(as_text=True)
    assert "two-a" in listed and "mixed" not in listed
    mixed_id = world.fresh().scalars(select(User.id).where(User.username == "mixed")).one()
    assert sec.get(f"/users/{mixed_id}/groups").status_code == 404

    # Its groups changed later: the secretary within its unit only; the default follows.
    url = f"/users/{user.id}/groups"
    assert f'selected value="{world.a2.id}"' in sec.get(url).get_data(as_text=True)
    before = snapshot(world.engine)
    assert sec.post(url, data={"group_id": [str(world.b.id)]}).status_code == 422
    assert sec.post(url, data={}).status_code == 422
    assert changed_tables(before, snapshot(world.engine)) == []
    assert sec.post(url, data={"group_id": [str(world.a2.id)]}).status_code == 302
    user = world.fresh().get(User, user.id)
    assert ([g.name for g in user.groups], user.group_id) == (["甲二团支部"], world.a2.id)
    assert "甲一团支部" in admin.get("/audit/?action=user.groups").get_data(as_text=True)


def test_a_booker_books_for_each_of_its_groups(world: World, web: Clients) -> None:
    duo = web.as_("duo")
    url = f"/venues/{world.venue.id}/book"
    form = duo.get(url).get_data(as_text=True)
    picker = re.search(r'<select[^>]*name="group".*?</select>', form, re.S)
    assert (
        picker is not None and "甲二团支部" in picker.group(0) and "乙团支部" not in picker.group(0)
    )
    assert f'selected value="{world.a2.id}"' in picker.group(0)  # its default group
    day = (datetime.now(TZ) + timedelta(days=2)).date().isoformat()
    data = {"date": day, "start": "10:00", "end": "11:00", "units": "1", "headcount": "5"}
    for group, start in ((world.a2, "10:00"), (world.a1, "12:00")):
        end = f"{int(start[:2]) + 1}:00"
        resp = duo.post(url, data={**data, "start": start, "end": end, "group": str(group.id)})
        assert resp.status_code == 303, resp.get_data(as_text=True)[:3000]
    # Another's group in the form: the booking is for one of its own (its default).
    resp = duo.post(url, data={**data, "start": "15:00", "end": "16:00", "group": str(world.b.id)})
    assert resp.status_code == 303
    booked = world.fresh().scalars(select(Booking).where(Booking.venue_id == world.venue.id))
    assert sorted(b.group_id for b in booked) == sorted([world.a1.id, world.a2.id, world.a2.id])
    mine = duo.get("/bookings/").get_data(as_text=True)
    assert "甲一团支部" in mine and "甲二团支部" in mine
    feeds = duo.get("/feeds/").get_data(as_text=True)
    assert f"group:{world.a1.id}" in feeds and f"group:{world.a2.id}" in feeds
    # The notices of either group reach its bookers (in-app and by e-mail).
    session = world.fresh()
    note = Notification(group_id=world.a2.id, kind="booking.confirmed", params="{}")
    session.add(note)
    session.commit()
    assert [m.to for m in mails_for(session, [note.id], "zh_CN")] == [("duo@example.com",)]
    assert duo.get("/notifications").status_code == 200


def test_migration_0015_gives_every_booker_its_group(
    pg_cluster: Any, db_kind: str, tmp_path: Any, runzhou_areas: Any
) -> None:
    url = fresh_database(pg_cluster, db_kind, tmp_path, "mapservice_0015")
    upgrade(url, "0013")
    eng = make_engine(url)
    with Session(eng, expire_on_commit=False) as session:  # the user's groups never loaded
        make = Factory(session, runzhou_areas)
        committee = make.committee(with_streets=False)
        group = make.group(committee, None, "社区青年")
        session.add(
            User(
                committee_id=committee.id,
                username="old",
                password_hash="x",
                role="booker",
                group_id=group.id,
            )
        )
        session.commit()
    upgrade(url)
    with eng.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT u.username, ug.group_id FROM user_groups ug"
                " JOIN users u ON u.id = ug.user_id"
            )
        ).all()
    eng.dispose()
    assert [tuple(r) for r in rows] == [("old", group.id)]
