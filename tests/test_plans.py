"""Issue 20 items 1 and 4 through HTTP: the year's activity list (活动清单) drafted, edited,
published, marked led, read as led / due / late, exported (XLSX, PDF); units' rotation
preferences; pairings (结对挂钩) with the communities and streets that have none; the API's
``/api/v1/plans`` and ``/api/v1/pairings``. Every refusal changes nothing. One world per
module, CSRF off (the access matrix runs these routes with CSRF on)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.models import Area, Pairing, Plan, PlanEntry, Unit
from tests.conftest import PASSWORD, Factory, module_world
from tests.test_access_matrix_web import changed_tables, snapshot


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        self.session, self.engine = session, engine
        make = Factory(session, areas)
        self.committee = make.committee("runzhou")
        self.units = [make.unit(self.committee, n) for n in ("邮政", "移动", "华电", "律所")]
        self.community = make.unit(self.committee, "朝阳社区", kind="community")
        self.applied = make.unit(self.committee, "申请中单位", status="applied")
        self.admin = make.admin(self.committee, username="admin")
        self.sec = make.secretary(self.units[0], username="sec")
        self.booker = make.booker(make.group(self.committee, self.units[1]), username="booker")
        empty = make.committee("empty", with_streets=False)
        make.admin(empty, username="admin-empty")
        self.street = session.scalars(
            select(Area).where(Area.committee_id == self.committee.id, Area.level == "street")
        ).first()

    def fresh(self) -> Session:
        self.session.rollback()
        self.session.expire_all()
        return self.session


class Clients:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.by_name: dict[str, Any] = {}

    def __call__(self, username: str) -> Any:
        if username not in self.by_name:
            client = self.app.test_client()
            client.post("/login", data={"username": username, "password": PASSWORD})
            self.by_name[username] = client
        return self.by_name[username]


world, web = module_world(World, lambda app, _w: Clients(app), csrf=False)


def unchanged(world: World, do: Any) -> Any:
    before = snapshot(world.engine)
    answer = do()
    changed = set(changed_tables(before, snapshot(world.engine)))
    assert changed - {"api_tokens"} == set()  # a token's use is stamped
    return answer


@pytest.fixture(scope="module")
def plan(world: World, web: Clients) -> Plan:
    for name in ("admin", "admin-empty", "sec", "booker"):
        web(name)  # logged in before any "nothing changed" check (a log-in stamps the user)
    got = web("admin").post("/plans/", data={"year": "2023", "period": "month", "title": ""})
    assert got.status_code == 302, got.text
    found = world.fresh().scalars(select(Plan).where(Plan.year == 2023)).one()
    return found


def test_the_admin_drafts_a_plan_every_admitted_unit_leads(world: World, plan: Plan) -> None:
    entries = world.fresh().scalars(select(PlanEntry).where(PlanEntry.plan_id == plan.id)).all()
    active = {u.id for u in world.units} | {world.community.id}
    assert {e.unit_id for e in entries} == active  # not the applying unit
    assert len(entries) == 12 and {e.period for e in entries} == set(range(1, 13))
    assert plan.status == "draft" and "2023" in plan.title


def test_bad_plans_are_refused_with_a_message_and_nothing_changes(
    world: World, web: Clients, plan: Plan
) -> None:
    again = unchanged(world, lambda: web("admin").post("/plans/", data={"year": "2023"}))
    assert again.status_code == 422 and "2023" in again.text and "已有" in again.text
    none = unchanged(world, lambda: web("admin-empty").post("/plans/", data={"year": "2024"}))
    assert none.status_code == 422 and "没有已准入的成员单位" in none.text
    sec = unchanged(world, lambda: web("sec").post("/plans/", data={"year": "2025"}))
    assert sec.status_code == 403
    entry = plan.entries[0]
    edit = unchanged(
        world,
        lambda: web("sec").post(
            f"/plans/{plan.id}/entries/{entry.id}",
            data={"period": "2", "unit_id": str(entry.unit_id), "kind": "salon"},
        ),
    )
    assert edit.status_code == 403
    assert unchanged(world, lambda: web("booker").get(f"/plans/{plan.id}")).status_code == 403
    assert web("admin-empty").get(f"/plans/{plan.id}").status_code == 404


def test_edit_swap_publish_and_led_due_late(world: World, web: Clients, plan: Plan) -> None:
    admin = web("admin")
    first, second = plan.entries[0], plan.entries[1]
    moved = admin.post(
        f"/plans/{plan.id}/entries/{first.id}",
        data={"period": "3", "unit_id": str(first.unit_id), "kind": "volunteer", "title": "植树"},
    )
    assert moved.status_code == 302
    bad = unchanged(
        world,
        lambda: admin.post(
            f"/plans/{plan.id}/entries/{first.id}",
            data={"period": "3", "unit_id": str(world.applied.id), "kind": "volunteer"},
        ),
    )
    assert bad.status_code == 422
    a, b = first.unit_id, second.unit_id
    assert (
        admin.post(
            f"/plans/{plan.id}/swap", data={"first": first.id, "second": second.id}
        ).status_code
        == 302
    )
    s = world.fresh()
    assert (s.get(PlanEntry, first.id).unit_id, s.get(PlanEntry, second.id).unit_id) == (b, a)
    assert s.get(PlanEntry, first.id).period == 3
    assert admin.post(f"/plans/{plan.id}/publish").status_code == 302
    # 2023 is past: every turn is late until led; the lead unit's secretary marks its own
    own = next(e for e in s.get(Plan, plan.id).entries if e.unit_id == world.sec.unit_id)
    assert (
        web("sec")
        .post(f"/plans/{plan.id}/entries/{own.id}/led", data={"led_on": "2023-03-10"})
        .status_code
        == 302
    )
    other = next(e for e in s.get(Plan, plan.id).entries if e.unit_id != world.sec.unit_id)
    assert (
        unchanged(
            world,
            lambda: web("sec").post(
                f"/plans/{plan.id}/entries/{other.id}/led", data={"led_on": "2023-03-10"}
            ),
        ).status_code
        == 403
    )
    page = web("sec").get(f"/plans/{plan.id}")
    assert page.status_code == 200
    assert f'id="entry-{own.id}" data-entry-id="{own.id}" data-standing="led"' in page.text
    assert f'data-entry-id="{other.id}" data-standing="late"' in page.text
    assert 'id="my-turns"' in page.text and 'id="plan-publish"' not in page.text


def test_exports(world: World, web: Clients, plan: Plan) -> None:
    from openpyxl import load_workbook

    got = web("sec").get(f"/plans/{plan.id}/plan.xlsx")
    assert got.status_code == 200
    sheet = load_workbook(io.BytesIO(got.data)).active
    assert sheet is not None and sheet.max_row == 2 + 12
    pdf = web("admin").get(f"/plans/{plan.id}/plan.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert web("admin").get(f"/plans/{plan.id}/plan.doc").status_code == 404


def test_preferences_and_a_blackout_in_every_month(world: World, web: Clients) -> None:
    sec = web("sec")
    assert sec.get("/plans/preferences").status_code == 200
    every = unchanged(
        world,
        lambda: sec.post("/plans/preferences", data={"blackout_months": "1-12"}),
    )
    assert every.status_code == 422 and "不能每个月" in every.text
    bad = unchanged(world, lambda: sec.post("/plans/preferences", data={"preferred_months": "13"}))
    assert bad.status_code == 422
    ok = sec.post(
        "/plans/preferences",
        data={"preferred_months": "3", "blackout_months": "1, 2", "preferred_kinds": "volunteer"},
    )
    assert ok.status_code == 302
    # a secretary's "unit" is always its own
    sec.post(f"/plans/preferences?unit={world.units[1].id}", data={"blackout_months": "5"})
    from mapservice.models import UnitPlanPreference

    s = world.fresh()
    assert s.get(UnitPlanPreference, world.units[0].id).blackout_months == "5"
    assert s.get(UnitPlanPreference, world.units[1].id) is None


def test_pairings(world: World, web: Clients) -> None:
    admin = web("admin")
    u = world.units
    c = world.community.id

    def pair(unit: Unit, partner: str, start: str, end: str = "") -> Any:
        return admin.post(
            "/pairings/",
            data={"unit_id": unit.id, "partner": partner, "start_on": start, "end_on": end},
        )

    page = web("booker").get("/pairings/")
    assert page.status_code == 200 and "朝阳社区" in page.text.split('id="unpaired"')[1]
    assert pair(u[0], f"u{c}", "2023-01-01").status_code == 302  # one to one
    assert pair(u[1], f"u{u[2].id}", "2023-01-01", "2023-12-31").status_code == 302
    assert pair(u[3], f"a{world.street.id}", "2023-02-21").status_code == 302
    ends_early = unchanged(world, lambda: pair(u[2], f"u{c}", "2023-05-01", "2023-04-01"))
    assert ends_early.status_code == 422 and "结束" in ends_early.text
    twice = unchanged(world, lambda: pair(u[0], f"u{c}", "2024-01-01"))
    assert twice.status_code == 422
    reverse = unchanged(world, lambda: pair(u[2], f"u{u[1].id}", "2023-06-01"))
    assert reverse.status_code == 422
    assert unchanged(world, lambda: web("sec").post("/pairings/", data={})).status_code == 403
    assert pair(u[2], f"u{c}", "2023-03-01").status_code == 302  # now many to one
    page = web("booker").get("/pairings/")
    unpaired = page.text.split('id="unpaired"')[1]
    assert "朝阳社区" not in unpaired and world.street.name not in unpaired
    assert page.text.count("多对一") == 2
    p = world.fresh().scalars(select(Pairing).where(Pairing.unit_id == u[2].id)).all()[-1]
    early = unchanged(
        world, lambda: admin.post(f"/pairings/{p.id}/end", data={"end_on": "2020-01-01"})
    )
    assert early.status_code == 302  # refused with a flash, nothing changed
    assert admin.post(f"/pairings/{p.id}/end", data={"end_on": "2023-06-30"}).status_code == 302
    assert world.fresh().get(Pairing, p.id).end_on.isoformat() == "2023-06-30"


def test_api_plans_and_pairings(world: World, web: Clients, plan: Plan) -> None:
    from mapservice.operations.tokens import create_token

    s = world.fresh()
    tokens = {}
    for user in (world.admin, world.sec, world.booker):
        _t, tokens[user.username] = create_token(s, None, user, ["read", "book", "manage"])
    s.commit()
    api = web.app.test_client()

    def call(method: str, path: str, who: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        return api.open(f"/api/v1{path}", method=method, headers=headers, json=body)

    got = call("GET", "/plans", "sec")
    assert got.status_code == 200
    (p,) = [x for x in got.json["plans"] if x["year"] == 2023]
    assert {e["standing"] for e in p["entries"]} <= {"led", "late"}  # 2023 is past
    assert call("GET", "/plans", "booker").status_code == 403
    assert (
        unchanged(world, lambda: call("POST", "/plans", "sec", {"year": 2030})).status_code == 403
    )
    dup = unchanged(world, lambda: call("POST", "/plans", "admin", {"year": 2023}))
    assert dup.status_code == 422 and dup.json["error"]["code"] == "validation_failed"
    made = call("POST", "/plans", "admin", {"year": 2031, "period": "week"})
    assert made.status_code == 201 and made.json["period"] == "week"
    assert {e["standing"] for e in made.json["entries"]} == {"upcoming"}
    pairs = call("GET", "/pairings", "booker")
    assert pairs.status_code == 200 and all("kind" in x for x in pairs.json["pairings"])
    body = {
        "unit_id": world.units[3].id,
        "partner_unit_id": world.units[0].id,
        "start_on": "2031-01-01",
    }
    bad = unchanged(
        world, lambda: call("POST", "/pairings", "admin", {**body, "end_on": "2030-01-01"})
    )
    assert bad.status_code == 422 and "end_on" in bad.json["error"]["fields"]
    assert unchanged(world, lambda: call("POST", "/pairings", "sec", body)).status_code == 403
    created = call("POST", "/pairings", "admin", body)
    assert created.status_code == 201 and created.json["active"] is False  # starts in 2031
    doc = web.app.test_client().get("/api/v1/openapi.json").json
    assert {"/plans", "/pairings"} <= {p.removeprefix("/api/v1") for p in doc["paths"]}
