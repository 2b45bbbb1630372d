"""Issue 19, items 1 and 2: youth groups and accounts from the browser, the API and the CLI;
set-password links; one's own password and details; deactivation stopping sessions and tokens.
Every refusal leaves every table as it was. One world per module, CSRF off (the access matrix
runs these routes with CSRF on)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.core.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from mapservice.db import writer
from mapservice.models import AuditEntry, Group, PasswordLink, User
from mapservice.operations import accounts, groups
from mapservice.operations.tokens import create_token
from tests.conftest import PASSWORD, Factory, module_world
from tests.test_access_matrix_web import changed_tables, snapshot

TZ = ZoneInfo("Asia/Shanghai")
NEW_PASSWORD = "a-much-longer-secret-42"


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        self.session, self.engine = session, engine
        make = self.make = Factory(session, areas)
        self.committee = make.committee("runzhou")
        other = make.committee("other", with_streets=False)
        self.unit_a, self.unit_b = (
            make.unit(self.committee, "甲单位"),
            make.unit(self.committee, "乙单位"),
        )
        self.group_a = make.group(self.committee, self.unit_a, "甲团支部")
        self.group_b = make.group(self.committee, self.unit_b, "乙团支部")
        self.admin = make.admin(self.committee, username="admin")
        self.sec_a = make.secretary(self.unit_a, username="sec-a")
        self.booker_b = make.booker(self.group_b, username="booker-b")
        self.other_admin = make.admin(other, username="other-admin")
        self.venue = make.venue(
            self.unit_a, name="甲会议室", hours="Mon-Sun 00:00-24:00", min_notice_minutes=0
        )

    def fresh(self) -> None:
        self.session.rollback()
        self.session.expire_all()

    def get(self, model: Any, obj_id: int) -> Any:
        self.fresh()
        return self.session.get(model, obj_id)


class Clients:
    def __init__(self, app: Any) -> None:
        self.app = app

    def as_(self, username: str | None, password: str = PASSWORD) -> Any:
        client = self.app.test_client()
        if username:
            resp = client.post("/login", data={"username": username, "password": password})
            assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        return client


world, web = module_world(World, lambda app, _w: Clients(app), csrf=False)


def refused(world: World, call: Any, *args: Any, **kw: Any) -> DomainError:
    """Run a use case in a writer session that must raise; nothing is written."""
    before = snapshot(world.engine)
    with Session(writer(world.engine), expire_on_commit=False) as w:
        with pytest.raises(DomainError) as info:
            call(w, *args, **kw)
        w.rollback()
    assert changed_tables(before, snapshot(world.engine)) == []
    return info.value


def actor(w: Session, user: User) -> User:
    found = w.get(User, user.id)
    assert found is not None
    return found


def test_group_rules_by_role(world: World) -> None:
    """A secretary makes groups of its own unit only; names are unique per committee; a
    booker manages none; a suspended group cannot book and its bookings are listed."""
    with Session(writer(world.engine), expire_on_commit=False) as w:
        made = groups.save_group(
            w, actor(w, world.sec_a), name="甲青年突击队", contact_phone="123 456"
        )
        w.commit()
    assert made.unit_id == world.unit_a.id  # forced to the secretary's unit
    err = refused(
        world,
        lambda w: groups.save_group(
            w, actor(w, world.sec_a), name="越权团体", unit_id=world.unit_b.id
        ),
    )
    assert isinstance(err, ValidationFailed) and "unit_id" in err.fields
    err = refused(world, lambda w: groups.save_group(w, actor(w, world.admin), name="乙团支部"))
    assert isinstance(err, ValidationFailed) and "乙团支部" in err.fields["name"]
    err = refused(
        world, lambda w: groups.save_group(w, actor(w, world.admin), name="x", contact_email="no")
    )
    assert set(err.fields) == {"contact_email"}  # type: ignore[attr-defined]
    assert isinstance(
        refused(world, lambda w: groups.save_group(w, actor(w, world.booker_b), name="y")),
        NotAllowed,
    )
    # A's secretary may not touch B's group: not found, whatever the verb.
    assert isinstance(
        refused(
            world,
            lambda w: groups.set_group_active(w, actor(w, world.sec_a), world.group_b.id, False),
        ),
        NotFound,
    )
    start = datetime.now(TZ).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    with Session(writer(world.engine), expire_on_commit=False) as w:
        booked = booking_engine.book(
            w, actor(w, world.sec_a), world.venue.id, made.id, start, start + timedelta(hours=1)
        )
        groups.set_group_active(w, actor(w, world.sec_a), made.id, False)
        w.commit()
        group = w.get(Group, made.id)
        assert group is not None
        assert [b.id for b in groups.upcoming_bookings(w, group, datetime.now(UTC))] == [booked.id]
    later = start + timedelta(hours=2)
    err = refused(
        world,
        lambda w: booking_engine.book(
            w, actor(w, world.admin), world.venue.id, made.id, later, later + timedelta(hours=1)
        ),
    )
    assert "group" in err.code or "inactive" in err.code, err.code
    world.fresh()
    actions = world.session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.object_type == "group", AuditEntry.object_id == made.id)
        .order_by(AuditEntry.id)  # in the order written (PostgreSQL gives no order without)
    ).all()
    assert list(actions) == ["group.create", "group.suspend"]


def test_group_pages(world: World, web: Clients) -> None:
    admin, sec = web.as_("admin"), web.as_("sec-a")
    resp = admin.post(
        "/groups/new",
        data={
            "name": "社区青年志愿队",
            "unit_id": "",
            "contact_name": "王",
            "contact_phone": "0511-1",
        },
    )
    assert resp.status_code == 302
    world.fresh()
    lone = world.session.scalars(select(Group).where(Group.name == "社区青年志愿队")).one()
    assert lone.unit_id is None and lone.contact_name == "王"
    page = admin.get("/groups/?unit=0").get_data(as_text=True)
    assert (
        f'data-group-id="{lone.id}"' in page and f'data-group-id="{world.group_a.id}"' not in page
    )
    assert f'data-group-id="{lone.id}"' not in sec.get("/groups/").get_data(as_text=True)
    before = snapshot(world.engine)
    dup = sec.post("/groups/new", data={"name": "甲团支部", "unit_id": str(world.unit_a.id)})
    assert dup.status_code == 422 and "已存在" in dup.get_data(as_text=True)
    other = admin.post("/groups/new?lang=en", data={"name": "甲团支部", "unit_id": ""})
    assert "already exists" in other.get_data(as_text=True)
    assert sec.get(f"/groups/{world.group_b.id}/edit").status_code == 404
    assert sec.post(f"/groups/{world.group_b.id}/status", data={"active": "0"}).status_code == 404
    assert changed_tables(before, snapshot(world.engine)) == []
    assert admin.post(f"/groups/{lone.id}/status", data={"active": "0"}).status_code == 302
    assert "社区青年志愿队" in admin.get(f"/groups/{lone.id}/edit").get_data(as_text=True)
    assert admin.post(f"/groups/{lone.id}/status", data={"active": "1"}).status_code == 302
    assert world.get(Group, lone.id).active


def _link_of(page: str) -> str:
    found = re.search(r'id="password-link" value="[^"]*(/password/[^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def test_account_lifecycle(world: World, web: Clients) -> None:
    """A secretary signs up a booker of its unit's group; the link sets a password once; the
    booker changes it and its details; deactivation ends its session and token at once."""
    sec = web.as_("sec-a")
    before = snapshot(world.engine)
    for data in (
        {"username": "x-sec", "role": "unit_secretary", "unit_id": str(world.unit_a.id)},
        {"username": "x-b", "role": "booker", "group_id": str(world.group_b.id)},
    ):
        assert sec.post("/users/new", data=data).status_code == 422
    assert changed_tables(before, snapshot(world.engine)) == []
    resp = sec.post(
        "/users/new",
        data={"username": "xiaojia", "role": "booker", "group_id": str(world.group_a.id)},
    )
    assert resp.status_code == 200
    link = _link_of(resp.get_data(as_text=True))
    world.fresh()
    stored = world.session.scalars(select(PasswordLink)).all()
    assert stored and all(link.rsplit("/", 1)[1] not in s.token_hash for s in stored)
    anon = web.as_(None)
    assert anon.get(link).status_code == 200
    weak = anon.post(link, data={"password": "short", "confirm": "short"})
    assert weak.status_code == 422 and "12" in weak.get_data(as_text=True)
    ok = anon.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert ok.status_code == 200 and "password-set" in ok.get_data(as_text=True)
    before = snapshot(world.engine)
    again = anon.post(link, data={"password": NEW_PASSWORD + "x", "confirm": NEW_PASSWORD + "x"})
    assert again.status_code == 410 and "已" in again.get_data(as_text=True)
    assert changed_tables(before, snapshot(world.engine)) == []
    booker = web.as_("xiaojia", NEW_PASSWORD)
    wrong = booker.post("/account/password", data={"current": "nope", "new": PASSWORD + "!"})
    assert wrong.status_code == 422
    assert (
        booker.post(
            "/account/password", data={"current": NEW_PASSWORD, "new": PASSWORD}
        ).status_code
        == 302
    )
    assert (
        booker.post(
            "/account/",
            data={"display_name": "小甲", "phone": "139 0000", "email": "j@example.com"},
        ).status_code
        == 302
    )
    world.fresh()
    user = world.session.scalars(select(User).where(User.username == "xiaojia")).one()
    assert (user.display_name, user.email) == ("小甲", "j@example.com")
    with Session(writer(world.engine), expire_on_commit=False) as w:
        _t, secret = create_token(w, None, w.get(User, user.id), ["read"])
        w.commit()
    api = {"Authorization": f"Bearer {secret}"}
    assert booker.get("/api/v1/groups", headers=api).status_code == 200
    # B's booker is not A's secretary's to manage; her own booker is.
    assert sec.post(f"/users/{world.booker_b.id}/active", data={"active": "0"}).status_code == 404
    assert sec.post(f"/users/{user.id}/active", data={"active": "0"}).status_code == 302
    assert booker.get("/account/").status_code == 302  # signed out at once
    assert booker.get("/api/v1/groups", headers=api).status_code == 401
    assert sec.post(f"/users/{user.id}/active", data={"active": "1"}).status_code == 302


def test_links_expire_and_the_last_admin_stays(world: World) -> None:
    now = datetime.now(UTC)
    with Session(writer(world.engine), expire_on_commit=False) as w:
        user, secret = accounts.issue_link_for(w, actor(w, world.admin), world.booker_b.id, now)
        w.commit()
    late = now + accounts.LINK_LIFETIME + timedelta(seconds=1)
    err = refused(world, lambda w: accounts.redeem_link(w, secret, NEW_PASSWORD, late))
    assert isinstance(err, ValidationFailed) and "link" in err.fields
    with Session(writer(world.engine), expire_on_commit=False) as w:
        _u, newer = accounts.issue_link_for(w, actor(w, world.admin), world.booker_b.id, now)
        w.commit()
    refused(world, lambda w: accounts.redeem_link(w, secret, NEW_PASSWORD, now))  # superseded
    err = refused(
        world, lambda w: accounts.set_user_active(w, actor(w, world.admin), world.admin.id, False)
    )
    assert isinstance(err, NotAllowed) and err.code == "last_admin"
    assert isinstance(
        refused(
            world,
            lambda w: accounts.set_user_active(
                w, actor(w, world.other_admin), world.sec_a.id, False
            ),
        ),
        NotFound,
    )
    with Session(writer(world.engine), expire_on_commit=False) as w:
        accounts.redeem_link(w, newer, PASSWORD, now)
        w.commit()


def test_link_is_e_mailed_when_smtp_is_configured(world: World, web: Clients) -> None:
    import email
    from email.policy import default

    from tests.test_booking_web import SmtpStub

    stub = SmtpStub()
    try:
        web.app.config.update(MAPSERVICE_SMTP_HOST="127.0.0.1", MAPSERVICE_SMTP_PORT=stub.port)
        resp = web.as_("admin").post(
            "/users/new",
            data={
                "username": "shuji-b",
                "role": "unit_secretary",
                "unit_id": str(world.unit_b.id),
                "email": "b@example.com",
            },
        )
        link = _link_of(resp.get_data(as_text=True))
        (to, raw), *rest = stub.messages
        body = email.message_from_bytes(raw, policy=default).get_content()
        assert rest == [] and to == ["b@example.com"] and link in body and "72" in body
    finally:
        web.app.config.update(MAPSERVICE_SMTP_HOST="")
        stub.close()


def test_groups_api(world: World, web: Clients) -> None:
    secrets = {}
    with Session(writer(world.engine), expire_on_commit=False) as w:
        for name, user in (
            ("admin", world.admin),
            ("sec", world.sec_a),
            ("booker", world.booker_b),
        ):
            _t, secrets[name] = create_token(w, None, w.get(User, user.id), ["read", "manage"])
        w.commit()
    client = web.app.test_client()

    def call(method: str, path: str, who: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {secrets[who]}"}
        return client.open("/api/v1" + path, method=method, json=body, headers=headers)

    names = {g["name"] for g in call("GET", "/groups", "sec").get_json()["groups"]}
    assert "甲团支部" in names and "乙团支部" not in names
    assert [g["name"] for g in call("GET", "/groups", "booker").get_json()["groups"]] == [
        "乙团支部"
    ]
    made = call("POST", "/groups", "sec", {"name": "甲篮球队", "contact_phone": "12345"})
    assert made.status_code == 201 and made.get_json()["unit_id"] == world.unit_a.id
    gid = made.get_json()["id"]
    assert call("POST", "/groups", "booker", {"name": "z"}).status_code == 403
    assert call("POST", "/groups", "admin", {"name": "甲篮球队"}).status_code == 422
    assert call("GET", f"/groups/{gid}", "booker").status_code == 404
    assert call("PATCH", f"/groups/{world.group_b.id}", "booker", {"name": "z"}).status_code == 403
    assert call("PATCH", f"/groups/{world.group_b.id}", "sec", {"name": "z"}).status_code == 404
    patched = call("PATCH", f"/groups/{gid}", "admin", {"active": False, "contact_name": "李"})
    assert patched.status_code == 200
    assert patched.get_json()["active"] is False and patched.get_json()["contact_name"] == "李"
    doc = client.get("/api/v1/openapi.json").get_json()
    assert {"/groups", "/groups/{group_id}"} <= set(doc["paths"])


def test_group_create_cli(world: World, database_url: str, tmp_path: Any) -> None:
    from tests.test_cli import Cli

    cli = Cli(database_url, tmp_path)
    result = cli(
        "group", "create", "--name", "乙舞蹈队", "--unit", "乙单位", "--committee", "runzhou",
        "--contact", "赵", "--phone", "123456",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    world.fresh()
    group = world.session.scalars(select(Group).where(Group.name == "乙舞蹈队")).one()
    assert (group.unit_id, group.contact_name) == (world.unit_b.id, "赵")
    again = cli("group", "create", "--name", "乙舞蹈队", "--committee", "runzhou")
    assert again.exit_code == 1 and "乙舞蹈队" in again.output
