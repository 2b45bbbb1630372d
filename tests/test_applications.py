"""Issue 19, item 3: units apply to join at ``/apply`` (成员准入); the committee admin admits
(the unit active, its contact a secretary with a set-password link, e-mailed under SMTP) or
declines with a reason. Abuse guards: a flood from one address, the honeypot, length limits,
a name the committee has. Every refusal leaves every table as it was. One world per module,
CSRF off (the access matrix runs these routes with CSRF on)."""

from __future__ import annotations

import email
from email.policy import default
from itertools import count
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.models import AuditEntry, Unit, UnitApplication, User
from mapservice.operations.applications import MAX_PER_ADDRESS
from tests.conftest import PASSWORD, Factory, module_world
from tests.test_access_matrix_web import changed_tables, snapshot
from tests.test_groups_accounts import _link_of

ADDRESSES = count(1)


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        self.session, self.engine = session, engine
        make = Factory(session, areas)
        self.committee = make.committee("runzhou")
        self.unit = make.unit(self.committee, "甲单位")
        self.admin = make.admin(self.committee, username="admin")

    def one(self, stmt: Any) -> Any:
        self.session.rollback()
        self.session.expire_all()
        return self.session.scalars(stmt).one()


class Clients:
    def __init__(self, app: Any) -> None:
        self.app = app

    def visitor(self) -> Any:
        """A visitor from an address of its own (the flood guard counts per address)."""
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{next(ADDRESSES)}"
        return client

    def admin(self) -> Any:
        client = self.app.test_client()
        assert client.post("/login", data={"username": "admin", "password": PASSWORD}).status_code
        return client


world, web = module_world(World, lambda app, _w: Clients(app), csrf=False)


def form(**kw: str) -> dict[str, str]:
    data = {
        "name": "润州律师事务所",
        "kind": "two_new",
        "address": "润州区南山路 8 号",
        "lon": "119.4253",
        "lat": "32.1975",
        "crs": "wgs84",
        "contact_name": "李明",
        "phone": "0511-8888 0001",
        "email": "liming@example.com",
        "venues_plan": "会议室一间，可容纳 30 人",
        "website": "",
    }
    data.update(kw)
    return data


def test_apply_then_admit(world: World, web: Clients) -> None:
    from tests.test_booking_web import SmtpStub

    visitor = web.visitor()
    page = visitor.get("/apply").get_data(as_text=True)
    assert 'id="pick-map"' in page and 'name="website"' in page
    resp = visitor.post("/apply", data=form())
    assert resp.status_code == 200 and "润州律师事务所" in resp.get_data(as_text=True)
    application = world.one(select(UnitApplication).where(UnitApplication.name == "润州律师事务所"))
    unit = application.unit
    assert (unit.status, unit.kind, unit.secretary, application.status) == (
        "applied",
        "two_new",
        "李明",
        "pending",
    )
    entry = world.one(select(AuditEntry).where(AuditEntry.action == "unit.apply"))
    assert entry.actor_id is None and entry.changed()["name"] == [None, "润州律师事务所"]

    admin = web.admin()
    assert "润州律师事务所" in admin.get("/units/applications").get_data(as_text=True)
    # The plain status buttons do not bypass the application.
    before = snapshot(world.engine)
    assert admin.post(f"/units/{unit.id}/status", data={"status": "active"}).status_code == 422
    assert changed_tables(before, snapshot(world.engine)) == []

    before = snapshot(world.engine)  # a user name that is taken: refused, nothing changes
    resp = admin.post(f"/units/applications/{application.id}/admit", data={"username": "admin"})
    assert resp.status_code == 422 and "admin" in resp.get_data(as_text=True)
    assert changed_tables(before, snapshot(world.engine)) == []

    stub = SmtpStub()
    try:
        web.app.config.update(MAPSERVICE_SMTP_HOST="127.0.0.1", MAPSERVICE_SMTP_PORT=stub.port)
        resp = admin.post(
            f"/units/applications/{application.id}/admit", data={"username": "liming"}
        )
        link = _link_of(resp.get_data(as_text=True))
        (to, raw), *rest = stub.messages
        assert rest == [] and to == ["liming@example.com"]
        assert link in email.message_from_bytes(raw, policy=default).get_content()
    finally:
        web.app.config.update(MAPSERVICE_SMTP_HOST="")
        stub.close()
    user = world.one(select(User).where(User.username == "liming"))
    assert (user.role, user.unit_id, user.display_name, user.phone) == (
        "unit_secretary",
        unit.id,
        "李明",
        "0511-8888 0001",
    )
    application = world.one(select(UnitApplication).where(UnitApplication.id == application.id))
    assert (application.status, application.account_id, application.unit.status) == (
        "admitted",
        user.id,
        "active",
    )
    admitted = world.one(select(AuditEntry).where(AuditEntry.action == "unit.admit"))
    assert admitted.changed()["status"] == ["applied", "active"]
    # Decided once: a second admission is refused, nothing changes.
    before = snapshot(world.engine)
    again = admin.post(f"/units/applications/{application.id}/admit", data={"username": "x-2"})
    assert again.status_code == 422 and changed_tables(before, snapshot(world.engine)) == []

    newcomer = web.app.test_client()
    new_password = "runzhou-lvsuo-2026"
    data = {"password": new_password, "confirm": new_password}
    assert newcomer.post(link, data=data).status_code == 200
    resp = newcomer.post("/login", data={"username": "liming", "password": new_password})
    assert resp.status_code == 302


def test_decline_keeps_the_reason_and_frees_the_name(world: World, web: Clients) -> None:
    assert web.visitor().post("/apply", data=form(name="拟拒单位")).status_code == 200
    application = world.one(select(UnitApplication).where(UnitApplication.name == "拟拒单位"))
    admin = web.admin()
    url = f"/units/applications/{application.id}/decline"
    before = snapshot(world.engine)
    assert admin.post(url, data={"reason": " "}).status_code == 422  # a reason is required
    assert admin.post(url, data={"reason": "理" * 501}).status_code == 422
    assert changed_tables(before, snapshot(world.engine)) == []
    assert admin.post(url, data={"reason": "不在本区"}).status_code == 302
    application = world.one(select(UnitApplication).where(UnitApplication.id == application.id))
    assert (application.status, application.reason, application.unit_id) == (
        "declined",
        "不在本区",
        None,
    )
    assert world.session.scalar(select(Unit.id).where(Unit.name == "拟拒单位")) is None
    entry = world.one(select(AuditEntry).where(AuditEntry.action == "unit.decline"))
    assert entry.changed()["reason"] == [None, "不在本区"] and entry.actor_id == world.admin.id
    page = admin.get("/units/applications").get_data(as_text=True)
    assert "不在本区" in page
    audit = admin.get("/audit/?action=unit.decline").get_data(as_text=True)
    assert "不在本区" in audit
    # The name is free again: the organisation may apply once more.
    assert web.visitor().post("/apply", data=form(name="拟拒单位")).status_code == 200


def test_refusals_change_nothing(world: World, web: Clients) -> None:
    cases = [
        (form(name="甲单位"), 422, "甲单位"),  # the committee has this unit
        (form(name="名" * 121), 422, "120"),
        (form(venues_plan="场" * 1001), 422, "1000"),
        (form(lon="", lat=""), 422, "地图"),
        (form(lon="116.40", lat="39.90"), 422, "116.4"),  # outside the district
        (form(email="not-an-address"), 422, "name@example.com"),
        (form(phone="call me"), 422, "3"),
        (form(kind="pirate"), 422, "kind"),
        (form(website="http://spam.example"), 400, "无法受理"),  # the honeypot
        (form(website="x", name="", phone="?"), 400, "无法受理"),  # before any other check
    ]
    before = snapshot(world.engine)
    for data, status, shown in cases:
        resp = web.visitor().post("/apply", data=data)
        assert resp.status_code == status, (data, resp.get_data(as_text=True)[:3000])
        assert shown in resp.get_data(as_text=True), data
        if status == 400:  # the form comes back empty, its choices there
            assert 'value="two_new"' in resp.get_data(as_text=True)
            assert data["name"] not in resp.get_data(as_text=True) or not data["name"]
    # A flood from one address: the sixth in an hour is refused.
    flooder = web.visitor()
    for n in range(MAX_PER_ADDRESS):
        assert flooder.post("/apply", data=form(name=f"刷单位{n}")).status_code == 200
    flooded = snapshot(world.engine)
    resp = flooder.post("/apply", data=form(name="刷单位多"))
    assert resp.status_code == 429 and "一小时" in resp.get_data(as_text=True)
    assert changed_tables(flooded, snapshot(world.engine)) == []
    # The units admitted change the search's token too (a search keeps venues with their unit).
    assert set(changed_tables(before, flooded)) == {
        "units",
        "unit_applications",
        "audit_log",
        "search_epoch",
    }


def test_the_api_and_the_console_decide_as_the_page_does(
    world: World, web: Clients, tmp_path: Any
) -> None:
    from mapservice.operations.tokens import create_token
    from tests.test_cli import Cli

    for name in ("接口单位", "接口拒单位", "命令单位", "命令拒单位"):
        assert web.visitor().post("/apply", data=form(name=name, email="")).status_code == 200
    session = world.session
    session.rollback()
    ids = {a.name: a.id for a in session.scalars(select(UnitApplication))}
    manage = create_token(session, None, world.admin, ["read", "manage"], "m")[1]
    read = create_token(session, None, world.admin, ["read"], "r")[1]
    session.commit()
    client = web.app.test_client()

    def call(method: str, url: str, secret: str = manage, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {secret}"}
        return client.open(f"/api/v1{url}", method=method, json=body, headers=headers)

    listed = call("GET", "/applications?status=pending").get_json()["applications"]
    assert {a["name"] for a in listed} >= {"接口单位", "命令单位"}
    assert all(a["status"] == "pending" for a in listed)
    assert call("GET", "/applications", read).status_code == 403  # manage scope
    assert call("GET", "/applications?status=maybe").status_code == 422

    resp = call("POST", f"/applications/{ids['接口单位']}/admit", body={})
    body = resp.get_json()
    assert resp.status_code == 201, body
    assert body["account"]["role"] == "unit_secretary"
    assert body["account"]["username"] == f"unit-{body['application']['unit_id']}"
    assert "/password/" in body["set_password_url"] and body["application"]["status"] == "admitted"
    again = call("POST", f"/applications/{ids['接口单位']}/admit", body={})
    assert again.status_code == 422 and set(again.get_json()) == {"error"}

    before = snapshot(world.engine)
    no_reason = call("POST", f"/applications/{ids['接口拒单位']}/decline", body={"reason": ""})
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]["fields"]
    assert changed_tables(before, snapshot(world.engine)) == []
    resp = call("POST", f"/applications/{ids['接口拒单位']}/decline", body={"reason": "重复"})
    assert resp.status_code == 200 and resp.get_json()["reason"] == "重复"
    assert call("POST", "/applications/99999/decline", body={"reason": "x"}).status_code == 404

    cli = Cli(str(world.engine.url.render_as_string(hide_password=False)), tmp_path)
    out = cli("application", "list", "--committee", "runzhou", "--status", "pending")
    assert out.exit_code == 0 and "命令单位" in out.output and "接口单位" not in out.output
    out = cli("application", "admit", str(ids["命令单位"]), "--username", "mingling")
    assert out.exit_code == 0 and "mingling" in out.output and "/password/" in out.output
    out = cli("application", "decline", str(ids["命令拒单位"]))
    assert out.exit_code == 2  # --reason is required
    out = cli("application", "decline", str(ids["命令拒单位"]), "--reason", "不在本区")
    assert out.exit_code == 0
    assert world.one(select(UnitApplication).where(UnitApplication.name == "命令拒单位")).reason
    out = cli("application", "admit", str(ids["命令拒单位"]))
    assert out.exit_code == 1 and "已" in out.output  # decided once
    page = web.admin().get("/units/applications?lang=en").get_data(as_text=True)
    assert 'class="application-account">mingling<' in page and "Applications to join" in page
