"""Two requests taking the same name at the same moment (issue 19): two organisations
applying under one name, an application racing the admin's new unit of that name, two
groups or two accounts of one name. Each request checks that the name is free and then
inserts; both checks pass before either commits (a barrier holds each request after its
check until the other has checked too), so on PostgreSQL the second insert breaks the unique
constraint. The loser must get the same clear refusal the check gives (422), with nothing
of it written; never a 500. On SQLite the writers are serialised (BEGIN IMMEDIATE), the
barrier times out and the second request's check sees the first's name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mapservice.models import AuditEntry, Group, Unit, UnitApplication, User
from mapservice.operations import applications, groups, units, users
from tests import test_applications as applications_world
from tests.conftest import PASSWORD, module_world
from tests.test_applications import form

ADDRESSES = count(100)


class World(applications_world.World):
    """A committee, its unit 甲单位 and its admin ``admin``."""

    def count(self, model: Any, *where: Any) -> int:
        self.session.rollback()
        return int(self.session.scalar(select(func.count()).select_from(model).where(*where)))


def clients(app: Any, _world: World) -> Any:
    return app


world, web = module_world(World, clients, csrf=False)


def visitor(app: Any) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.1.0.{next(ADDRESSES)}"
    return client


def admin(app: Any) -> Any:
    client = app.test_client()
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    return client


def at_once(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    checks: list[tuple[Any, str]],
    posts: list[Callable[[], Any]],
) -> list[tuple[int, str]]:
    """Run ``posts`` in threads, each held after its name check (the functions ``checks``
    names) until every one has checked; their statuses and pages, in order."""
    barrier = threading.Barrier(len(posts))
    timeout = 10 if engine.dialect.name == "postgresql" else 0.5

    def held(real: Callable[..., bool]) -> Callable[..., bool]:
        def check(*args: Any, **kw: Any) -> bool:
            taken = real(*args, **kw)
            try:
                barrier.wait(timeout=timeout)
            except threading.BrokenBarrierError:
                pass
            return taken

        return check

    for module, name in checks:
        monkeypatch.setattr(module, name, held(getattr(module, name)))
    results: list[Any] = [None] * len(posts)

    def run(i: int) -> None:
        resp = posts[i]()
        results[i] = (resp.status_code, resp.get_data(as_text=True))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def one_refused(results: list[tuple[int, str]], ok: int, shown: str) -> None:
    statuses = sorted(status for status, _page in results)
    assert statuses == sorted([ok, 422]), [(s, p[:2000]) for s, p in results]
    refused = next(page for status, page in results if status == 422)
    assert shown in refused


def test_two_applications_of_one_name(world: World, web: Any, monkeypatch: Any) -> None:
    posts = [lambda: visitor(web).post("/apply", data=form(name="同名单位")) for _ in range(2)]
    results = at_once(monkeypatch, world.engine, [(applications, "name_taken")], posts)
    one_refused(results, 200, "已存在")
    assert world.count(Unit, Unit.name == "同名单位") == 1
    assert world.count(UnitApplication, UnitApplication.name == "同名单位") == 1
    assert world.count(AuditEntry, AuditEntry.action == "unit.apply") == 1


def test_an_application_racing_a_new_unit(world: World, web: Any, monkeypatch: Any) -> None:
    client = admin(web)
    data = {"name": "抢名单位", "kind": "soe", "secretary": "", "phone": "", "name_en": ""}
    posts = [
        lambda: visitor(web).post("/apply", data=form(name="抢名单位")),
        lambda: client.post("/units/new", data=data),
    ]
    checks = [(applications, "name_taken"), (units, "name_taken")]
    results = at_once(monkeypatch, world.engine, checks, posts)
    assert sorted(s for s, _p in results) in ([200, 422], [302, 422]), results
    assert "已存在" in next(p for s, p in results if s == 422)
    assert world.count(Unit, Unit.name == "抢名单位") == 1


def test_two_groups_of_one_name(world: World, web: Any, monkeypatch: Any) -> None:
    data = {"name": "同名团支部", "unit_id": str(world.unit.id)}
    posts = [lambda c=admin(web): c.post("/groups/new", data=data) for _ in range(2)]
    results = at_once(monkeypatch, world.engine, [(groups, "name_taken")], posts)
    one_refused(results, 302, "已存在")
    assert world.count(Group, Group.name == "同名团支部") == 1
    assert world.count(AuditEntry, AuditEntry.action == "group.create") == 1


def test_two_accounts_of_one_name(world: World, web: Any, monkeypatch: Any) -> None:
    data = {"username": "same-name", "role": "unit_secretary", "unit_id": str(world.unit.id)}
    posts = [lambda c=admin(web): c.post("/users/new", data=data) for _ in range(2)]
    results = at_once(monkeypatch, world.engine, [(users, "username_taken")], posts)
    one_refused(results, 200, "same-name")
    assert world.count(User, User.username == "same-name") == 1
