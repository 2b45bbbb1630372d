"""Issue 19, items 4, 5 and 7: the audit log (who reads which entries, filters, pages, what
changed, CSV/XLSX, the API), the settings that were fixed (a venue's hold time and
cancellation cut-off; a committee's name, time zone, printed map title and new venues'
rules) and the front page. One world per module; every route's roles: the access matrix."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.booking import engine as booking_engine
from mapservice.db import writer
from mapservice.models import AuditEntry, Booking, Committee, User, Venue
from mapservice.operations import audit as audit_ops
from mapservice.operations.tokens import create_token
from mapservice.operations.units import save_unit
from mapservice.operations.venues import row_of, save_venue
from tests.conftest import PASSWORD, Factory, module_world
from tests.test_cli import Cli

TZ = ZoneInfo("Asia/Shanghai")
ROLES = ("admin", "sec_a", "sec_b", "booker_a", "other_admin")


class World:
    def __init__(self, session: Session, engine: Any, areas: Any) -> None:
        make = Factory(session, areas)
        self.session, self.engine = session, engine
        self.committee = make.committee("runzhou")
        self.other = make.committee("other", with_streets=False)
        unit_a, unit_b = make.unit(self.committee, "甲单位"), make.unit(self.committee, "乙单位")
        unit_x = make.unit(self.other, "外会单位")
        self.unit_a, self.unit_b = unit_a, unit_b
        group_a = make.group(self.committee, unit_a, "甲团支部")
        self.users: dict[str, User] = {
            "admin": make.admin(self.committee, username="admin"),
            "sec_a": make.secretary(unit_a, username="sec-a"),
            "sec_b": make.secretary(unit_b, username="sec-b"),
            "booker_a": make.booker(group_a, username="booker-a"),
            "other_admin": make.admin(self.other, username="other-admin"),
        }
        rules = {"hours": "Mon-Sun 00:00-24:00", "min_notice_minutes": 0, "capacity_units": 3}
        self.venue_a = make.venue(unit_a, self.users["sec_a"], name="甲场地", **rules)
        self.venue_b = make.venue(unit_b, self.users["sec_b"], name="乙场地", **rules)
        self.venue_x = make.venue(unit_x, self.users["other_admin"], name="外会场地", **rules)
        # The admin raises A's capacity; an entry written before 0012 (changes in details).
        row = row_of(self.venue_a)
        row.capacity_units = 4
        save_venue(session, self.users["admin"], self.committee, row, self.venue_a)
        save_unit(
            session, self.users["admin"], name="甲单位", kind="soe", phone="0511-1", unit=unit_a
        )
        session.add(
            AuditEntry(
                committee_id=self.committee.id,
                unit_id=unit_a.id,
                actor_name="admin",
                actor_id=self.users["admin"].id,
                action="venue.update",
                object_type="venue",
                object_id=self.venue_a.id,
                details=json.dumps({"changed": {"phone": ["110", "119"]}}),
            )
        )
        session.commit()
        # A's booker books at B's venue; B's secretary cancels it.
        start = datetime.now(TZ).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
        with Session(writer(engine), expire_on_commit=False) as w:
            booking = booking_engine.book(
                w,
                w.get(User, self.users["booker_a"].id),
                self.venue_b.id,
                group_a.id,
                start,
                start + timedelta(hours=1),
            )
            w.commit()
            booking_engine.cancel(w, w.get(User, self.users["sec_b"].id), booking.id, reason="维修")
            w.commit()
        self.booking = booking


def build_clients(app: Any, world: World) -> dict[str, Any]:
    clients = {"anon": app.test_client()}
    for role, user in world.users.items():
        client = app.test_client()
        resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
        assert resp.status_code == 302
        clients[role] = client
    return clients


world, web = module_world(World, build_clients, csrf=False)


def entries(world: World) -> list[AuditEntry]:
    world.session.rollback()
    return list(world.session.scalars(select(AuditEntry)))


def seen_sql(world: World, user: User | None) -> set[int]:
    world.session.rollback()
    return set(
        world.session.scalars(select(AuditEntry.id).where(policy.audit_entries_seen_by(user)))
    )


def about(world: World, kind: str, obj_id: int) -> set[int]:
    return {e.id for e in entries(world) if e.object_type == kind and e.object_id == obj_id}


def test_who_reads_which_entries_sql_and_predicate_agree(world: World) -> None:
    everything = entries(world)
    for user in [*world.users.values(), None]:
        predicate = {e.id for e in everything if policy.can_see_audit_entry(user, e)}
        assert seen_sql(world, user) == predicate, user and user.username
    venue_a = about(world, "venue", world.venue_a.id)
    venue_b = about(world, "venue", world.venue_b.id)
    booking = about(world, "booking", world.booking.id)
    assert len(venue_a) == 3 and len(booking) == 2  # create, update, the old one; book, cancel
    sec_a, sec_b = seen_sql(world, world.users["sec_a"]), seen_sql(world, world.users["sec_b"])
    assert venue_a <= sec_a and not venue_b & sec_a and not booking & sec_a
    assert venue_b <= sec_b and booking <= sec_b and not venue_a & sec_b
    committee = {e.id for e in everything if e.committee_id == world.committee.id}
    assert seen_sql(world, world.users["admin"]) == committee
    assert not seen_sql(world, world.users["booker_a"]) and not seen_sql(world, None)
    assert not committee & seen_sql(world, world.users["other_admin"])


def test_the_page_shows_what_changed_filters_and_refuses_bad_input(
    world: World, web: dict[str, Any]
) -> None:
    admin = web["admin"]
    page = admin.get(f"/audit/?object_type=venue&object_id={world.venue_a.id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and body.count("data-entry-id=") == 3
    assert '<li data-field="capacity_units">' in body
    assert '<del lang="und">3</del> → <ins lang="und">4</ins>' in body
    assert '<del lang="und">110</del> → <ins lang="und">119</ins>' in body  # before 0012
    cancelled = admin.get("/audit/?action=booking.cancel").get_data(as_text=True)
    assert '<del lang="und">已确认</del> → <ins lang="und">已取消</ins>' in cancelled
    yesterday = (datetime.now(TZ) - timedelta(days=1)).date().isoformat()
    assert "data-entry-id=" not in admin.get(f"/audit/?until={yesterday}").get_data(as_text=True)
    bad = admin.get("/audit/?since=2026-13-01&object_id=x")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "不是日期" in text and "不是正整数" in text
    english = admin.get("/audit/?since=soon&lang=en").get_data(as_text=True)
    assert "'soon' is not a date (YYYY-MM-DD)." in html.unescape(english)
    admin.get("/audit/?lang=zh_CN")
    # A secretary's page lists its unit's entries only; a booker and a visitor get none.
    own = web["sec_a"].get("/audit/").get_data(as_text=True)
    assert f'data-object="venue-{world.venue_a.id}"' in own
    assert f'data-object="venue-{world.venue_b.id}"' not in own
    assert web["booker_a"].get("/audit/").status_code == 403
    assert "/login" in web["anon"].get("/audit/").headers["Location"]


def test_pages_are_newest_first_and_cover_every_entry(world: World) -> None:
    admin = world.users["admin"]
    total = len(seen_sql(world, admin))
    pages = [
        audit_ops.audit_page(world.session, admin, audit_ops.AuditFilter(page=n), per_page=3)
        for n in range(1, 10)
    ]
    ids = [line.entry.id for p in pages for line in p.lines]
    assert pages[0].total == total and pages[0].pages == -(-total // 3)
    assert len(ids) == total == len(set(ids))
    stamps = [(line.entry.at, line.entry.id) for p in pages for line in p.lines]
    assert stamps == sorted(stamps, reverse=True)


def test_exports_hold_the_filtered_entries(world: World, web: dict[str, Any]) -> None:
    want = len(
        [e for e in entries(world) if e.object_type == "booking" and e.committee_id is not None]
    )
    data = web["admin"].get("/audit/export.csv?action=booking.").get_data()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["时间", "操作人", "操作"] and len(rows) == 1 + want
    assert {r[2] for r in rows[1:]} == {"预约", "预约已取消"}
    assert any("已确认 → 已取消" in r[5] for r in rows[1:])
    book = load_workbook(io.BytesIO(web["sec_b"].get("/audit/export.xlsx").get_data()))
    sheet = list(book.active.iter_rows(values_only=True))
    assert sheet[0][0] == "时间" and len(sheet) - 1 == len(seen_sql(world, world.users["sec_b"]))
    assert web["booker_a"].get("/audit/export.csv").status_code == 403


def test_the_console_lists_and_exports(world: World, database_url: str, tmp_path: Any) -> None:
    cli = Cli(database_url, tmp_path)
    args = ("audit", "list", "--committee", "runzhou", "--action", "venue.update")
    out = cli(*args)
    assert out.exit_code == 0 and out.output.count("\n") == 2, out.output
    assert "3 → 4" in out.output and "119" in out.output
    path = tmp_path / "audit.csv"
    assert cli(*args, "--format", "csv", "--output", str(path)).exit_code == 0
    assert len(path.read_text("utf-8-sig").splitlines()) == 3
    bad = cli("audit", "list", "--since", "tomorrow")
    assert bad.exit_code == 1 and "tomorrow" in bad.output


def test_the_api_lists_entries_with_manage_scope(world: World, web: dict[str, Any]) -> None:
    session = world.session
    session.rollback()
    manage = create_token(session, None, world.users["sec_b"], ["read", "manage"], "m")[1]
    read = create_token(session, None, world.users["admin"], ["read"], "r")[1]
    booker = create_token(session, None, world.users["booker_a"], ["read", "manage"], "b")[1]
    session.commit()
    client = web["anon"]

    def get(url: str, secret: str) -> Any:
        return client.get(url, headers={"Authorization": f"Bearer {secret}"})

    resp = get(f"/api/v1/audit?object_type=booking&object_id={world.booking.id}", manage)
    body = resp.get_json()
    assert resp.status_code == 200 and body["total"] == 2
    cancel = next(e for e in body["entries"] if e["action"] == "booking.cancel")
    assert cancel["changes"] == {"status": ["confirmed", "cancelled"]}
    assert get("/api/v1/audit", read).status_code == 403
    assert get("/api/v1/audit", booker).status_code == 403
    bad = get("/api/v1/audit?since=2026-01-02&until=2026-01-01", manage)
    assert bad.status_code == 422 and "until" in bad.get_json()["error"]["fields"]


SETTINGS = {
    "name": "润州区青工委",
    "name_en": "Runzhou Youth Work Committee",
    "timezone": "Asia/Urumqi",
    "print_title": "润州区共享阵地一张图",
    "slot_minutes": "30",
    "min_duration_minutes": "30",
    "max_duration_minutes": "120",
    "max_days_ahead": "14",
    "min_notice_minutes": "0",
    "weekly_quota_hours": "",
    "hold_hours": "24",
    "cancel_cutoff_minutes": "60",
    "bookable_by": "public",
    "requires_approval": "y",
}


def count(world: World, model: Any) -> int:
    world.session.rollback()
    return int(world.session.scalar(select(func.count()).select_from(model)) or 0)


def test_settings_refuse_bad_input_in_the_users_language(world: World, web: dict[str, Any]) -> None:
    before = (count(world, AuditEntry), json.dumps(row_of_committee(world)))
    for bad, message in (
        ({"min_duration_minutes": "45"}, "必须是时段长度 30 分钟的整数倍，实际为「45」"),
        ({"timezone": "Mars/Olympus"}, "不是有效的选择。"),
    ):
        resp = web["admin"].post("/settings/", data={**SETTINGS, **bad})
        assert resp.status_code == 422 and message in html.unescape(resp.get_data(as_text=True))
        assert (count(world, AuditEntry), json.dumps(row_of_committee(world))) == before
    english = web["admin"].post("/settings/?lang=en", data={**SETTINGS, "hold_hours": "721"})
    assert english.status_code == 422
    assert "Number must be between 1 and 720." in english.get_data(as_text=True)
    web["admin"].get("/settings/?lang=zh_CN")
    assert (count(world, AuditEntry), json.dumps(row_of_committee(world))) == before


def row_of_committee(world: World) -> list[Any]:
    world.session.rollback()
    c = world.session.get(Committee, world.committee.id)
    assert c is not None
    world.session.refresh(c)
    return [c.name, c.name_en, c.timezone, c.print_title, c.venue_defaults]


def test_settings_change_the_committee_and_new_venues_not_stored_instants(
    world: World, web: dict[str, Any]
) -> None:
    start = world.booking.start_at
    resp = web["admin"].post("/settings/", data=SETTINGS)
    assert resp.status_code == 302
    name, name_en, tz, title, defaults = row_of_committee(world)
    assert (name, tz, title) == ("润州区青工委", "Asia/Urumqi", "润州区共享阵地一张图")
    assert json.loads(defaults)["hold_hours"] == 24
    entry = world.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "committee.settings")
    ).one()
    assert entry.changed()["timezone"] == ["Asia/Shanghai", "Asia/Urumqi"]
    assert entry.changed()["hold_hours"] == [48, 24]
    # Stored instants stay: the booking starts at the same instant, shown in the new zone.
    world.session.rollback()
    assert world.session.get(Booking, world.booking.id).start_at == start
    # A new venue's form starts with the committee's rules; the API's too.
    form = web["sec_a"].get("/venues/new").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="hold_hours"[^>]*value="24"', form)
    session = world.session
    secret = create_token(session, None, world.users["sec_a"], ["read", "manage"], "v")[1]
    session.commit()
    auth = {"Authorization": f"Bearer {secret}"}
    made = web["anon"].post(
        "/api/v1/venues",
        json={
            "name": "新会议室",
            "type": "meeting_room",
            "lon": 119.4253,
            "lat": 32.1975,
            "hours": "Mon-Sun 08:00-20:00",
        },
        headers=auth,
    )
    assert made.status_code == 201, made.get_json()
    props = made.get_json()["properties"]
    assert (props["hold_hours"], props["cancel_cutoff_minutes"], props["slot_minutes"]) == (
        24,
        60,
        30,
    )
    # A venue's own hold time and cut-off: bounds refused with the field named, else saved.
    url = f"/api/v1/venues/{world.venue_a.id}"
    refused = web["anon"].patch(url, json={"hold_hours": 721}, headers=auth)
    assert refused.status_code == 422 and "hold_hours" in json.dumps(refused.get_json())
    ok = web["anon"].patch(url, json={"hold_hours": 6, "cancel_cutoff_minutes": 0}, headers=auth)
    assert ok.status_code == 200
    world.session.rollback()
    venue = world.session.get(Venue, world.venue_a.id)
    assert (venue.hold_hours, venue.cancel_cutoff_minutes) == (6, 0)
    change = world.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "venue.update", AuditEntry.object_id == venue.id)
        .order_by(AuditEntry.id.desc())
    ).first()
    assert change.changed()["hold_hours"] == [48, 6]


def test_the_front_page_opens_the_map(web: dict[str, Any]) -> None:
    resp = web["anon"].get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/map")
