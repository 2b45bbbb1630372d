"""Issue 20 item 5: the one map's activity layer (/map/activities.json: filters, who sees what,
pairings as lines and shaded streets) and the dashboard's activity figures (rotation
fulfilment, participants, fill rate, streets reached; charts and CSV/XLSX), on one world."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.models import Activity, Area, Pairing, Plan, PlanEntry, SignUp
from tests.conftest import PASSWORD, Factory, module_world

TZ = ZoneInfo("Asia/Shanghai")


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        make = Factory(session, areas)
        committee = make.committee("runzhou")
        self.post = make.unit(committee, "中国邮政镇江分公司")
        self.mobile = make.unit(committee, "中国移动镇江分公司")
        group = make.group(committee, self.post, "邮政团支部")
        make.admin(committee, username="admin")
        make.secretary(self.mobile, username="sec-mobile")
        make.booker(group, username="booker")
        make.venue(self.post, name="邮政会议室", lon=119.43, lat=32.2)
        make.venue(self.mobile, name="移动羽毛球馆", lon=119.42, lat=32.17)
        self.street = session.scalars(
            select(Area).where(Area.committee_id == committee.id, Area.level == "street")
        ).first()
        today = datetime.now(TZ).date()
        self.year = today.year
        plan = Plan(committee_id=committee.id, year=today.year, title="清单", status="published")
        # two turns of the post (one led by hand), one of the mobile, all begun by now
        plan.entries = [
            PlanEntry(
                period=1, unit_id=self.post.id, kind="volunteer", led_on=date(today.year, 1, 9)
            ),
            PlanEntry(period=1, unit_id=self.post.id, kind="salon"),
            PlanEntry(period=1, unit_id=self.mobile.id, kind="sports"),
        ]
        session.add(plan)

        def activity(title: str, unit: Any, days: int, kind: str, **kw: Any) -> Activity:
            start = (datetime.now(TZ) + timedelta(days=days)).replace(microsecond=0)
            a = Activity(
                committee_id=committee.id, title=title, kind=kind, lead_unit_id=unit.id,
                start_at=start, end_at=start + timedelta(hours=2), capacity=10,
                signup_deadline=start, status=kw.pop("status", "open"), site_lon=119.45,
                site_lat=32.19, site_name="公益林", site_street=self.street.name, **kw,
            )  # fmt: skip
            session.add(a)
            session.flush()
            return a

        self.tree = activity("植树", self.post, 3, "volunteer")
        self.club = activity("读书会", self.mobile, 40, "reading_club")
        self.draft = activity("草稿活动", self.mobile, 4, "sports", status="draft")
        session.add(SignUp(activity_id=self.tree.id, unit_id=self.post.id, group_id=group.id,
                           headcount=6, state="confirmed", seq=1))  # fmt: skip
        pair = {"committee_id": committee.id, "start_on": date(2023, 2, 21)}
        session.add(Pairing(unit_id=self.post.id, partner_area_id=self.street.id, **pair))
        session.add(Pairing(unit_id=self.mobile.id, partner_unit_id=self.post.id, **pair))
        session.commit()


world, web = module_world(World, lambda app, _w: app, csrf=False)


def client(web: Any, username: str | None) -> Any:
    c = web.test_client()
    if username:
        c.post("/login", data={"username": username, "password": PASSWORD})
    return c


def titles(answer: dict[str, Any]) -> list[str]:
    return [f["properties"]["title"] for f in answer["activities"]["features"]]


def test_the_activity_layer_filters_and_shows_pairings(web: Any, world: World) -> None:
    booker = client(web, "booker")
    everything = booker.get("/map/activities.json").get_json()
    assert titles(everything) == ["植树", "读书会"]  # no draft
    tree = everything["activities"]["features"][0]["properties"]
    assert (tree["confirmed"], tree["capacity"], tree["open"]) == (6, 10, True)
    month = (datetime.now(TZ) + timedelta(days=40)).strftime("%Y-%m")
    assert titles(booker.get(f"/map/activities.json?month={month}").get_json()) == ["读书会"]
    assert titles(booker.get("/map/activities.json?kind=volunteer").get_json()) == ["植树"]
    lines = everything["pairings"]["features"]
    assert sorted(f["properties"]["partner"] for f in lines) == sorted(
        [world.street.name, "中国邮政镇江分公司"]
    )
    assert [f["properties"]["units"] for f in everything["paired"]["features"]] == [
        ["中国邮政镇江分公司"]
    ]
    gcj = booker.get("/map/activities.json?crs=gcj02").get_json()["activities"]["features"]
    wgs = everything["activities"]["features"]
    assert gcj[0]["geometry"]["coordinates"] != wgs[0]["geometry"]["coordinates"]
    bad = booker.get("/map/activities.json?month=2026-13&kind=dance")
    assert bad.status_code == 422
    # A visitor: nothing (activities and pairings are members' information); no layer drawn.
    anon = client(web, None)
    answer = anon.get("/map/activities.json").get_json()
    assert titles(answer) == [] and answer["pairings"]["features"] == []
    assert "activityLayer" not in anon.get("/map").get_data(as_text=True)
    assert "activityLayer" in booker.get("/map").get_data(as_text=True)


def test_the_dashboard_counts_activities_against_the_plan(web: Any, world: World) -> None:
    admin = client(web, "admin")
    query = f"period=year&at={world.year}-06-01"
    page = admin.get(f"/dashboard/activities/?{query}")
    assert page.status_code == 200
    csv = admin.get(f"/dashboard/activities/export/rotation.csv?{query}").get_data(as_text=True)
    rows = {line.split(",")[0].lstrip("\ufeff"): line.split(",") for line in csv.splitlines()}
    # unit, planned, due, led, fulfilment, activities, participants, fill rate
    assert rows["中国邮政镇江分公司"][1:4] == ["2", "2", "1"]
    assert rows["中国邮政镇江分公司"][4] == "0.5"
    assert rows["中国移动镇江分公司"][1:4] == ["1", "1", "0"]
    streets = admin.get(f"/dashboard/activities/export/streets.csv?{query}").get_data(as_text=True)
    assert f"{world.street.name},2," in streets or f"{world.street.name},1," in streets
    xlsx = admin.get(f"/dashboard/activities/export/all.xlsx?{query}")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    svg = admin.get(f"/dashboard/activities/chart/fulfilment.svg?{query}")
    assert svg.status_code == 200 and b"<svg" in svg.data
    # A unit secretary: its own unit's only; a booker: 403.
    sec = client(web, "sec-mobile").get(f"/dashboard/activities/export/rotation.csv?{query}")
    assert "中国邮政镇江分公司" not in sec.get_data(as_text=True)
    assert client(web, "booker").get("/dashboard/activities/").status_code == 403
