"""Issue 8: every HTML route × every role × objects owned by unit A, unit B and another
committee, through real HTTP with CSRF on.

Roles: anonymous, a booker of group A (unit A), a booker of group B (unit B), the secretaries of
units A and B, the committee admin, and the admin of another committee. Every cell's expected
outcome is written out below; a cell that is refused must leave the database as it was (every
table, row for row, the audit log included); a cell that succeeds must really have made its
change. The world is built once per module; a cell that is expected to change something acts
on a fresh object of its own, so the shared objects stay as they were for every other cell.

The matrix must cover every route of ``app.url_map`` (the JSON API has its own matrix in
``tests/test_api.py``; static files and vendored front-end libraries are listed below): a new
route fails ``test_every_route_is_in_the_matrix`` until it is added here.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.booking import feeds
from mapservice.db import Base, utcnow, writer
from mapservice.models import (
    Activity,
    ApiToken,
    AuditEntry,
    Booking,
    Closure,
    Committee,
    FeedToken,
    Group,
    LoginSession,
    Notification,
    Pairing,
    PasswordLink,
    Plan,
    PlanEntry,
    SignUp,
    Unit,
    UnitApplication,
    User,
    Venue,
)
from mapservice.operations import login_sessions
from mapservice.operations.accounts import issue_link
from mapservice.operations.tokens import create_token
from tests.conftest import PASSWORD, Factory, module_world, pending_application

TZ = ZoneInfo("Asia/Shanghai")
ROLES = ("anon", "booker_a", "booker_b", "sec_a", "sec_b", "admin", "other_admin")
OWNERS = ("A", "B", "X")  # unit A, unit B (same committee), unit X of another committee
USERNAMES = {
    "booker_a": "booker-a",
    "booker_b": "booker-b",
    "sec_a": "sec-a",
    "sec_b": "sec-b",
    "admin": "admin",
    "other_admin": "other-admin",
}
# Routes outside this matrix, on purpose.
NOT_IN_MATRIX = {
    "/static/<path:filename>": "static files: public, no data",
    "/vendor/<package>/<path:filename>": "front-end libraries: public, no data",
    "/tiles/<int:z>/<int:x>/<int:y>": "base-map tiles of an MBTiles file: public, no data",
}
API_PREFIX = "/api/v1/"  # endpoints × roles: tests/test_api.py (its docs pages are below)
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
IGNORED_TABLES = {"login_attempts", "areas"}  # log-in throttle bookkeeping; static geometry
#: Columns a request may touch without changing anything a user has: a log-in session's last
#: sighting, refreshed once every few minutes (operations.login_sessions.SEEN_EVERY), so a
#: slow run crossing that mark saw 'login_sessions' "changed" by a refused request.
VOLATILE_COLUMNS = {("login_sessions", "last_seen_at")}


# ---------------------------------------------------------------- the world


class World:
    """Committee C (units A and B, groups A and B, their bookers and secretaries, the admin)
    and committee X (unit X, group X, its admin); a venue per unit. ``obj(kind, owner)`` gives
    the shared object of that kind owned by A, B or X, ``fresh(kind, owner)`` a new one."""

    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        self.session = session
        self.engine = engine
        make = Factory(session, areas)
        self.make = make
        self.committee = make.committee("runzhou")
        self.other_committee = make.committee("other", with_streets=False)
        self.units = {
            "A": make.unit(self.committee, "甲单位"),
            "B": make.unit(self.committee, "乙单位"),
            "X": make.unit(self.other_committee, "外会单位"),
        }
        self.groups = {o: make.group(u.committee, u, f"{o}团支部") for o, u in self.units.items()}
        self.users: dict[str, User] = {
            "booker_a": make.booker(self.groups["A"], username="booker-a"),
            "booker_b": make.booker(self.groups["B"], username="booker-b"),
            "sec_a": make.secretary(self.units["A"], username="sec-a"),
            "sec_b": make.secretary(self.units["B"], username="sec-b"),
            "admin": make.admin(self.committee, username="admin"),
            "other_admin": make.admin(self.other_committee, username="other-admin"),
        }
        self.seq = itertools.count(1)
        self.years = itertools.count(2001)  # plans: one per committee and year
        self.slots = itertools.count(0)
        self.shared: dict[tuple[str, str], Any] = {}

    # Who "owns" a token or a feed: A's booker, B's booker, the other committee's admin.
    def holder(self, owner: str) -> User:
        return self.users[{"A": "booker_a", "B": "booker_b", "X": "other_admin"}[owner]]

    def venue_of(self, owner: str) -> Venue:
        return self.obj("venue", owner)

    def obj(self, kind: str, owner: str) -> Any:
        if kind == "unit":
            return self.units[owner]
        key = (kind, owner)
        if key not in self.shared:
            self.shared[key] = self.fresh(kind, owner)
        return self.shared[key]

    def slot(self) -> tuple[datetime, datetime]:
        """A new one-hour slot, 2 to ~20 days ahead, 08:00 to 21:00 local."""
        n = next(self.slots)
        day = (datetime.now(TZ) + timedelta(days=2 + n // 13)).date()
        start = datetime(day.year, day.month, day.day, 8 + n % 13, tzinfo=TZ)
        return start, start + timedelta(hours=1)

    def fresh(self, kind: str, owner: str) -> Any:
        make, db = self.make, self.session
        # End any read transaction first: on SQLite (WAL) a transaction that read before
        # another connection committed may not write ("database is locked" at once).
        db.rollback()
        n = next(self.seq)
        if kind == "venue":
            return make.venue(
                self.units[owner],
                name=f"{owner}场地{n}号",
                capacity_units=20,
                hours="Mon-Sun 00:00-24:00",
                min_notice_minutes=0,
            )
        if kind == "closure":
            venue = self.venue_of(owner)
            start = datetime.now(UTC) + timedelta(days=40 + n)
            closure = Closure(venue_id=venue.id, start_at=start, end_at=start + timedelta(hours=2))
            db.add(closure)
            db.commit()
            return closure
        if kind == "unit":
            return make.unit(self.units[owner].committee, f"{owner}新单位{n}")
        if kind in ("booking", "pending", "underway", "series"):
            return self._booking(kind, owner)
        if kind == "token":
            token, _secret = create_token(db, None, self.holder(owner), ["read"], f"t{n}")
            db.commit()
            return token
        if kind == "feed":
            token, secret = feeds.create_token(
                db, self.holder(owner), group_id=self.groups[owner].id
            )
            db.commit()
            token.secret = secret  # type: ignore[attr-defined]
            return token
        if kind == "group":
            unit = self.units[owner]
            return make.group(unit.committee, unit, f"{owner}新团体{n}")
        if kind == "user":
            return make.booker(self.groups[owner], username=f"{owner.lower()}-booker-{n}")
        if kind == "link":
            user = self.fresh("user", owner)
            secret = issue_link(db, None, user, datetime.now(UTC))
            db.commit()
            link = db.scalars(select(PasswordLink).where(PasswordLink.user_id == user.id)).one()
            link.secret = secret  # type: ignore[attr-defined]
            return link
        if kind == "application":
            return self._application(owner, n)
        if kind in ("plan", "pairing"):
            return self._plan(owner) if kind == "plan" else self._pairing(owner, n)
        if kind in ("activity", "started", "signup"):
            return self._activity(kind, owner, n)
        if kind == "note":
            note = Notification(
                group_id=self.groups[owner].id,
                kind="confirmed",
                params=json.dumps({"venue": f"通知{n}"}),
            )
            db.add(note)
            db.commit()
            return note
        raise AssertionError(kind)

    def _plan(self, owner: str) -> Plan:
        """A draft plan of ``owner``'s committee: a turn of ``owner``'s unit, then one of the
        committee's other unit (A's plan: A then B; X's: X twice)."""
        unit = self.units[owner]
        other = self.units[{"A": "B", "B": "A", "X": "X"}[owner]]
        plan = Plan(committee_id=unit.committee_id, year=next(self.years), title="矩阵清单")
        plan.entries = [
            PlanEntry(period=1, unit_id=unit.id, kind="other"),
            PlanEntry(period=2, unit_id=other.id, kind="other"),
        ]
        self.session.add(plan)
        self.session.commit()
        return plan

    def _pairing(self, owner: str, n: int) -> Pairing:
        """``owner``'s unit paired with a new unit of its committee from 2020."""
        partner = self.make.unit(self.units[owner].committee, f"{owner}结对单位{n}")
        pairing = Pairing(
            committee_id=partner.committee_id,
            unit_id=self.units[owner].id,
            partner_unit_id=partner.id,
            start_on=date(2020, 1, 1),
        )
        self.session.add(pairing)
        self.session.commit()
        return pairing

    def _activity(self, kind: str, owner: str, n: int) -> Any:
        """An open activity at a site led by ``owner``'s unit (``started``: begun an hour
        ago); ``signup``: the owner's group signed up for a new one."""
        db, unit = self.session, self.units[owner]
        start = datetime.now(TZ).replace(microsecond=0) + timedelta(days=5)
        if kind == "started":
            start = datetime.now(TZ).replace(microsecond=0) - timedelta(hours=1)
        activity = Activity(
            committee_id=unit.committee_id,
            title=f"{owner}活动{n}",
            kind="volunteer",
            lead_unit_id=unit.id,
            start_at=start,
            end_at=start + timedelta(hours=3),
            capacity=20,
            signup_deadline=start,
            status="open",
            site_lon=119.4253,
            site_lat=32.1975,
            site_name="公益林",
        )
        db.add(activity)
        db.commit()
        if kind != "signup":
            return activity
        signup = SignUp(
            activity_id=activity.id,
            unit_id=unit.id,
            group_id=self.groups[owner].id,
            headcount=2,
            state="confirmed",
            seq=1,
        )
        db.add(signup)
        db.commit()
        return signup

    def _application(self, owner: str, n: int) -> UnitApplication:
        """A pending application to join ``owner``'s committee (its unit applied)."""
        committee_id = self.units[owner].committee_id
        return pending_application(self.session, committee_id, f"{owner}申请单位{n}")

    def _booking(self, kind: str, owner: str) -> Any:
        """A booking of group ``owner`` at the *other* unit's venue (A's group at B's venue,
        B's at A's, X's at X's): both the booker's side and the venue's side are exercised."""
        venue = self.venue_of({"A": "B", "B": "A", "X": "X"}[owner])
        group = self.groups[owner]
        actor = self.users["admin" if owner != "X" else "other_admin"]
        now = None
        if kind == "underway":  # booked an hour ago for the hour now under way
            start = datetime.now(TZ).replace(minute=0, second=0, microsecond=0)
            end, now = start + timedelta(hours=1), start - timedelta(hours=1)
        else:
            start, end = self.slot()
        with Session(writer(self.engine), expire_on_commit=False) as w:
            booker = w.get(User, actor.id)
            if kind == "series":
                result = booking_engine.book_series(
                    w, booker, venue.id, group.id, start, end, freq="daily", count=3
                )
                w.commit()
                return result.booked[0]
            booking = booking_engine.book(w, booker, venue.id, group.id, start, end, now=now)
            if kind == "pending":
                booking.status = "pending"
                booking.hold_expires_at = None
            w.commit()
            return booking


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but the log-in throttle's and the static boundaries), as the
    database stores it: one statement per table, compiled once per database kind and run on
    the driver's cursor (built and run through SQLAlchemy, two snapshots were about 40 % of
    a refused cell's time), in one transaction."""
    statements = _SNAPSHOT_SQL.get(engine.dialect.name)
    if statements is None:
        statements = _SNAPSHOT_SQL[engine.dialect.name] = [
            (
                table.name,
                str(
                    select(
                        *(c for c in table.columns if (table.name, c.name) not in VOLATILE_COLUMNS)
                    )
                    .order_by(*table.primary_key.columns)
                    .compile(dialect=engine.dialect)
                ),
            )
            for table in Base.metadata.sorted_tables
            if table.name not in IGNORED_TABLES
        ]
    out = {}
    with engine.connect() as conn, conn.begin():
        cursor = conn.connection.driver_connection.cursor()
        try:
            for name, sql in statements:
                cursor.execute(sql)
                out[name] = [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()
    return out


_SNAPSHOT_SQL: dict[str, list[tuple[str, str]]] = {}


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


class Clients:
    """One logged-in test client per role (CSRF on: tokens read from the pages)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.clients: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}
        for role in ROLES:
            self.clients[role], self.tokens[role] = self.new(role)

    def new(self, role: str) -> tuple[Any, str]:
        client = self.app.test_client()
        # An address per role: /apply takes a few applications per address and hour.
        client.environ_base["REMOTE_ADDR"] = f"127.0.0.{ROLES.index(role) + 10}"
        token = csrf_of(client.get("/login"))
        if role != "anon":
            resp = client.post(
                "/login",
                data={"username": USERNAMES[role], "password": PASSWORD, "csrf_token": token},
            )
            assert resp.status_code == 302, resp.get_data(as_text=True)
            token = csrf_of(client.get("/account/tokens"))
        forget_flashes(client)
        return client, token


def csrf_of(resp: Any) -> str:
    found = CSRF_RE.search(resp.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def forget_flashes(client: Any) -> None:
    """Messages flashed by redirects would pile up in the session cookie."""
    with client.session_transaction() as sess:
        sess.pop("_flashes", None)


world, web = module_world(World, lambda app, _world: Clients(app), csrf=True)


# ---------------------------------------------------------------- the matrix

OK, LOGIN = "ok", "login"
Data = Callable[[World, str, Any], dict[str, Any]]
Check = Callable[[World, str, Any, Any], bool]


@dataclass
class Case:
    """One route (rule + method), and the outcome for each role: for routes about an object,
    three outcomes (the objects of A, B and X); for listings, ``+``/``-`` per owner (listed or
    not, or for a bulk action: changed or not); else one outcome for the role."""

    rule: str
    method: str
    url: Callable[[World, Any], str]
    expect: dict[str, str]
    kind: str | None = None  # object kind (per-owner cells), None for role-only routes
    listing: bool = False
    data: Data | None = None
    check: Check | None = None  # for successes: did the change really happen?
    label: str = ""
    files: bool = False
    shown: Callable[[World, Any, str], Any] | None = None  # listings: is owner's object shown?
    fresh_all: bool = False  # bulk actions: fresh objects for every owner in every cell

    @property
    def mutating(self) -> bool:
        return self.method == "POST"

    @property
    def name(self) -> str:
        return f"{self.method} {self.rule}{' ' + self.label if self.label else ''}"


def R(**kw: str) -> dict[str, str]:
    return kw


def reload(world: World, obj: Any) -> Any:
    world.session.rollback()
    world.session.expire_all()
    return world.session.get(type(obj), obj.id)


def own_committee(world: World, role: str) -> Committee:
    world.session.rollback()
    world.session.expire_all()
    user = world.users.get(role)
    committee = world.session.get(Committee, user.committee_id if user else world.committee.id)
    assert committee is not None
    return committee


def settings_form(world: World, role: str, _obj: Any) -> dict[str, Any]:
    committee = own_committee(world, role)
    return {
        "name": committee.name,
        "timezone": committee.timezone,
        "print_title": f"矩阵地图{next(world.seq)}",
        "slot_minutes": "60",
        "min_duration_minutes": "60",
        "max_duration_minutes": "240",
        "max_days_ahead": "30",
        "min_notice_minutes": "60",
        "hold_hours": "48",
        "cancel_cutoff_minutes": "120",
        "bookable_by": "members",
    }


def venue_form(world: World, role: str, venue: Venue) -> dict[str, Any]:
    unit = world.session.get(Unit, venue.unit_id)
    assert unit is not None
    data = {
        "name": f"改名{next(world.seq)}",
        "unit": unit.name,
        "type": "badminton",
        "crs": "wgs84",
        "lon": "119.4253",
        "lat": "32.1975",
        "capacity_units": "20",
        "slot_minutes": "60",
        "min_duration_minutes": "60",
        "max_duration_minutes": "240",
        "max_days_ahead": "30",
        "min_notice_minutes": "0",
        "hold_hours": "48",
        "cancel_cutoff_minutes": "120",
        "bookable_by": "members",
        "published": "y",
    }
    data.update({f"hours_{d}": "00:00-24:00" for d in range(7)})
    return data


def renamed(world: World, role: str, venue: Venue, data: Any) -> bool:
    return reload(world, venue).name == data["name"]


def new_venue_form(world: World, role: str, owner: str) -> dict[str, Any]:
    data = venue_form(world, role, world.venue_of(owner))
    data["name"] = f"新场地{next(world.seq)}"
    return data


def venue_named(world: World, role: str, owner: str, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(Venue.id).where(
                Venue.name == data.get("_name", data.get("name")),
                Venue.unit_id == world.units[owner].id,
            )
        )
    )


def import_file(world: World, role: str, owner: str) -> dict[str, Any]:
    name = f"导入场地{next(world.seq)}"
    csv = f"name,unit,type,lon,lat,hours\n{name},{world.units[owner].name},meeting_room,"
    csv += "119.4253,32.1975,Mon-Fri 09:00-17:00\n"
    return {"file": (io.BytesIO(csv.encode()), "venues.csv"), "_name": name}


def closure_form(world: World, role: str, venue: Venue) -> dict[str, Any]:
    day = (datetime.now(TZ) + timedelta(days=60 + next(world.seq))).date()
    return {"start_at": f"{day}T08:00", "end_at": f"{day}T12:00", "reason": "检修"}


def closure_gone(world: World, closure: Closure) -> bool:
    world.session.rollback()
    return not world.session.scalar(select(Closure.id).where(Closure.id == closure.id))


def closures_of(world: World, venue_id: int) -> int:
    world.session.rollback()
    return int(
        world.session.scalar(select(func.count(Closure.id)).where(Closure.venue_id == venue_id))
        or 0
    )


def booking_form(world: World, role: str, venue: Venue) -> dict[str, Any]:
    start, end = world.slot()
    data: dict[str, Any] = {
        "date": start.date().isoformat(),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "units": "1",
        "repeat": "",
        "policy": "all_or_nothing",
        "purpose": f"矩阵{next(world.seq)}",
    }
    actor = world.users.get(role)
    if actor is not None and not actor.is_booker:  # the group picker: one's own, else A
        group = world.groups["X" if actor.committee_id == world.other_committee.id else "A"]
        if actor.is_secretary:
            group = next(g for g in world.groups.values() if g.unit_id == actor.unit_id)
        data["group"] = str(group.id)
    return data


def booked(world: World, role: str, venue: Venue, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(Booking.id).where(
                Booking.venue_id == venue.id, Booking.purpose == data["purpose"]
            )
        )
    )


def phone_form(world: World, role: str, venue: Venue) -> dict[str, Any]:
    start, end = world.slot()
    return {
        "date": start.date().isoformat(),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "caller_name": "来电人",
        "caller_phone": "138 0000 0000",
        "group": "",
        "purpose": f"矩阵{next(world.seq)}",
    }


def status_is(*statuses: str) -> Check:
    def check(world: World, role: str, booking: Booking, data: Any) -> bool:
        return reload(world, booking).status in statuses

    return check


def series_cancelled(world: World, role: str, booking: Booking, data: Any) -> bool:
    world.session.rollback()
    world.session.expire_all()
    got = world.session.scalars(
        select(Booking.status).where(Booking.series_id == booking.series_id)
    ).all()
    return len(got) == 3 and set(got) == {"cancelled"}


def reschedule_form(world: World, role: str, booking: Booking) -> dict[str, Any]:
    start, end = world.slot()
    return {"date": start.date().isoformat(), "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


def moved(world: World, role: str, booking: Booking, data: Any) -> bool:
    b = reload(world, booking)
    return b.start_at.astimezone(TZ).strftime("%H:%M") == data["start"] and (
        b.start_at.astimezone(TZ).date().isoformat() == data["date"]
    )


def feed_made(target: str) -> Check:
    def check(world: World, role: str, owner: str, data: Any) -> bool:
        world.session.rollback()
        col = FeedToken.venue_id if target == "venue" else FeedToken.group_id
        obj_id = world.venue_of(owner).id if target == "venue" else world.groups[owner].id
        return bool(
            world.session.scalar(
                select(func.count(FeedToken.id)).where(
                    col == obj_id, FeedToken.created_by_id == world.users[role].id
                )
            )
        )

    return check


def revoked(world: World, role: str, token: Any, data: Any) -> bool:
    return reload(world, token).revoked_at is not None


def note_read(world: World, role: str, note: Notification, data: Any) -> bool:
    return reload(world, note).read_at is not None


def unit_secretary_is(world: World, role: str, unit: Unit, data: Any) -> bool:
    return reload(world, unit).secretary == data["secretary"]


def unit_form(world: World, role: str, unit: Unit) -> dict[str, Any]:
    return {"name": unit.name, "kind": unit.kind, "secretary": f"书记{next(world.seq)}"}


def second_group(w: World, user: User) -> Group:
    """A new group of the unit of ``user``'s group (a second one for the booker)."""
    group = w.session.get(Group, user.group_id)
    assert group is not None and group.unit is not None
    return w.make.group(group.unit.committee, group.unit, f"第二团体{next(w.seq)}")


def own_api_tokens(world: World, role: str) -> int:
    if role == "anon":
        return 0
    world.session.rollback()
    return int(
        world.session.scalar(
            select(func.count(ApiToken.id)).where(ApiToken.user_id == world.users[role].id)
        )
        or 0
    )


def group_named(world: World, role: str, owner: str, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(Group.id).where(
                Group.name == data["name"], Group.unit_id == world.units[owner].id
            )
        )
    )


def user_named(world: World, role: str, owner: str, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(User.id).where(
                User.username == data["username"], User.group_id == world.groups[owner].id
            )
        )
    )


def spare_session(world: World, role: str) -> int:
    """Another browser's session of the role's user (ending it touches no test client)."""
    if role == "anon":
        return 1
    world.session.rollback()
    user = world.session.get(User, world.users[role].id)
    login_sessions.open_session(world.session, user, utcnow(), user_agent="spare")
    world.session.commit()
    return int(world.session.scalar(select(func.max(LoginSession.id))) or 0)


def session_ended(world: World, session_id: int) -> bool:
    world.session.rollback()
    row = world.session.get(LoginSession, session_id)
    return row is not None and row.ended_at is not None


def audited(world: World, role: str, action: str) -> int:
    world.session.rollback()
    return int(
        world.session.scalar(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.action == action, AuditEntry.actor_id == world.users[role].id
            )
        )
        or 0
    )


def apply_form(world: World, role: str, _obj: Any) -> dict[str, Any]:
    return {
        "name": f"申请单位{next(world.seq)}",
        "kind": "school",
        "address": "南山路 2 号",
        "lon": "119.4253",
        "lat": "32.1975",
        "crs": "wgs84",
        "contact_name": "张老师",
        "phone": "0511-8888 0002",
    }


def applied(world: World, role: str, _obj: Any, data: Any) -> bool:
    committee_id = own_committee(world, role).id
    return bool(
        world.session.scalar(
            select(UnitApplication.id).where(
                UnitApplication.name == data["name"],
                UnitApplication.committee_id == committee_id,
            )
        )
    )


# Plans (活动清单) and pairings (结对挂钩): the staff see the committee's plans, the admin
# changes them; the lead unit's secretary (or the admin) marks a turn led.
SEE_PLAN = R(
    anon="login login login",
    booker_a="403 403 403",
    booker_b="403 403 403",
    sec_a="ok ok 404",
    sec_b="ok ok 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
EDIT_PLAN = {**SEE_PLAN, "sec_a": "403 403 404", "sec_b": "403 403 404"}
LEAD_TURN = {**SEE_PLAN, "sec_a": "ok 403 404", "sec_b": "403 ok 404"}


def first_turn(plan: Any) -> int:
    """The plan's first turn (a missing plan: its own made-up id)."""
    return plan.entries[0].id if hasattr(plan, "entries") else plan.id


def plan_form(world: World, role: str, _obj: Any) -> dict[str, Any]:
    return {"year": str(next(world.years)), "period": "month", "title": ""}


def plan_of_year(world: World, role: str, _obj: Any, data: Any) -> bool:
    committee_id = own_committee(world, role).id
    return bool(
        world.session.scalar(
            select(Plan.id).where(Plan.committee_id == committee_id, Plan.year == int(data["year"]))
        )
    )


def pairing_form(world: World, role: str, _obj: Any) -> dict[str, Any]:
    owner = "X" if own_committee(world, role).id == world.other_committee.id else "A"
    partner = world.make.unit(world.units[owner].committee, f"结对伙伴{next(world.seq)}")
    year = next(world.years)
    return {
        "unit_id": str(world.units[owner].id),
        "partner": f"u{partner.id}",
        "start_on": f"{year}-01-01",
        "end_on": f"{year}-01-31",
    }


def paired(world: World, role: str, _obj: Any, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(Pairing.id).where(
                Pairing.partner_unit_id == int(data["partner"][1:]),
                Pairing.unit_id == int(data["unit_id"]),
            )
        )
    )


def link_issued(world: World, role: str, user: User, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(PasswordLink.id).where(
                PasswordLink.user_id == user.id,
                PasswordLink.created_by_id == world.users[role].id,
            )
        )
    )


def activity_form(world: World, role: str, owner_or_activity: Any) -> dict[str, Any]:
    """The activity form: a new site activity led by the owner's unit, or ``activity``
    renamed."""
    if isinstance(owner_or_activity, str):
        unit_id, start = world.units[owner_or_activity].id, datetime.now(TZ) + timedelta(days=6)
        extra = {"place": "site", "publish": "y", "lead_unit_id": str(unit_id)}
    else:
        start = owner_or_activity.start_at.astimezone(TZ)
        extra = {"status": "open"}
    return {
        "title": f"矩阵活动{next(world.seq)}",
        "kind": "volunteer",
        "date": f"{start:%Y-%m-%d}",
        "start": f"{start:%H:%M}",
        "end": "23:59",
        "capacity": "20",
        "site_lon": "119.4253",
        "site_lat": "32.1975",
        "site_name": "公益林",
        **extra,
    }


def activity_titled(world: World, role: str, owner: str, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(Activity.id).where(
                Activity.title == data["title"], Activity.lead_unit_id == world.units[owner].id
            )
        )
    )


def signer_of(world: World, role: str) -> str:
    """Who a role signs up: a secretary its unit (""), anyone else a group of its own."""
    if role.startswith("sec"):
        return ""
    owner = {"booker_a": "A", "booker_b": "B", "admin": "A", "other_admin": "X"}.get(role, "A")
    return str(world.groups[owner].id)


def signed_up(world: World, role: str, activity: Activity, data: Any) -> bool:
    world.session.rollback()
    return bool(world.session.scalar(select(SignUp.id).where(SignUp.activity_id == activity.id)))


def attendance_noted(world: World, role: str, activity: Activity, data: Any) -> bool:
    world.session.rollback()
    return bool(
        world.session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == "activity.attendance", AuditEntry.object_id == activity.id
            )
        )
    )


# Outcomes per role for the objects of A, B and X.
# The venues are published: public, seen by everyone, another committee's staff included
# (issue 16: a logged-in user sees at least what a visitor sees); they may not change them.
SEE_VENUE = R(**{r: "ok ok ok" for r in ROLES})
USE_VENUE = {**SEE_VENUE, "anon": "login login login"}
# Booking another committee's venue: its "who may book" rule (members) refuses the group.
BOOK_VENUE = R(
    anon="login login login",
    booker_a="ok ok 422",
    booker_b="ok ok 422",
    sec_a="ok ok 422",
    sec_b="ok ok 422",
    admin="ok ok 422",
    other_admin="422 422 ok",
)
EDIT_VENUE = R(
    anon="login login login",
    booker_a="403 403 403",
    booker_b="403 403 403",
    sec_a="ok 403 403",
    sec_b="403 ok 403",
    admin="ok ok 403",
    other_admin="403 403 ok",
)
# A's booking is group A's at B's venue; B's is group B's at A's venue.
MANAGE_BOOKING = R(
    anon="login login login",
    booker_a="ok 404 404",
    booker_b="404 ok 404",
    sec_a="ok ok 404",
    sec_b="ok ok 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
RUN_BOOKING = R(
    anon="login login login",
    booker_a="403 404 404",
    booker_b="404 403 404",
    sec_a="403 ok 404",
    sec_b="ok 403 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
OWN_GROUP = R(
    anon="login login login",
    booker_a="ok 404 404",
    booker_b="404 ok 404",
    sec_a="ok 404 404",
    sec_b="404 ok 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
REGISTER_FOR_UNIT = R(
    anon="login login login",
    booker_a="403 403 403",
    booker_b="403 403 403",
    sec_a="ok 422 422",
    sec_b="422 ok 422",
    admin="ok ok 422",
    other_admin="422 422 ok",
)
ADMIN_UNIT = R(
    anon="login login login",
    booker_a="403 403 403",
    booker_b="403 403 403",
    sec_a="403 403 403",
    sec_b="403 403 403",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
# Groups and accounts: the admin those of its committee, a secretary its own unit's; a booker
# none at all (403 before any object is looked at).
MANAGE_GROUP = R(
    anon="login login login",
    booker_a="403 403 403",
    booker_b="403 403 403",
    sec_a="ok 404 404",
    sec_b="404 ok 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
# Activities: seen by the committee; managed by the admin and the lead unit's secretary.
SEE_ACTIVITY = R(
    anon="login login login",
    booker_a="ok ok 404",
    booker_b="ok ok 404",
    sec_a="ok ok 404",
    sec_b="ok ok 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
MANAGE_ACTIVITY = R(
    anon="login login login",
    booker_a="403 403 404",
    booker_b="403 403 404",
    sec_a="ok 403 404",
    sec_b="403 ok 404",
    admin="ok ok 404",
    other_admin="404 404 ok",
)
EDIT_ACTIVITY = {**MANAGE_ACTIVITY, "booker_a": "403 403 403", "booker_b": "403 403 403"}
# A phone booking: staff, at a venue of their own committee (a caller without a group).
PHONE_BOOK = R(
    anon="login login login",
    booker_a="403 403 403",
    booker_b="403 403 403",
    sec_a="ok ok 403",
    sec_b="ok ok 403",
    admin="ok ok 403",
    other_admin="403 403 ok",
)
EVERYONE = R(**{r: "ok" for r in ROLES})
SIGNED_IN = {**EVERYONE, "anon": LOGIN}
STAFF = {**SIGNED_IN, "booker_a": "403", "booker_b": "403"}
ADMINS = {**STAFF, "sec_a": "403", "sec_b": "403"}
# Listings: which owners' objects are shown (+) or not (-).
# A list names one committee: the user's own, a visitor's the first (?committee= for others).
LIST_VENUES = R(
    anon="+ + -",
    booker_a="+ + -",
    booker_b="+ + -",
    sec_a="+ + -",
    sec_b="+ + -",
    admin="+ + -",
    other_admin="- - +",
)
MAP_VENUES = LIST_VENUES  # the same venues as the list, for everyone
STAFF_LIST = R(
    anon=LOGIN,
    booker_a="403",
    booker_b="403",
    sec_a="+ - -",
    sec_b="- + -",
    admin="+ + -",
    other_admin="- - +",
)


def venue_url(path: str) -> Callable[[World, Any], str]:
    return lambda w, v: path.format(v=v.id)


def booking_url(path: str) -> Callable[[World, Any], str]:
    return lambda w, b: path.format(b=b.id)


def const(path: str) -> Callable[[World, Any], str]:
    return lambda w, _o: path


def ids_in(attr: str) -> Callable[[World, Any, str], Any]:
    """A listing shows object ``o`` when the page carries its data-…-id attribute."""
    return lambda w, o, body: f'{attr}="{o.id}"' in body


def name_in(w: World, o: Any, body: str) -> bool:
    if o.name in body:
        return True
    if body.startswith(("{", "[")):  # JSON may escape the name
        return o.name in json.dumps(json.loads(body), ensure_ascii=False)
    return False


CASES: list[Case] = [
    # -- venues
    Case(
        "/venues/",
        "GET",
        const("/venues/"),
        LIST_VENUES,
        "venue",
        True,
        shown=ids_in("data-venue-id"),
    ),
    Case(
        "/venues/export.<fmt>",
        "GET",
        const("/venues/export.csv"),
        LIST_VENUES,
        "venue",
        True,
        shown=name_in,
    ),
    Case("/venues/<int:venue_id>", "GET", venue_url("/venues/{v}"), SEE_VENUE, "venue"),
    Case("/venues/new", "GET", const("/venues/new"), {**STAFF}),
    Case(
        "/venues/new",
        "POST",
        const("/venues/new"),
        REGISTER_FOR_UNIT,
        "owner",
        data=lambda w, r, o: new_venue_form(w, r, o),
        check=venue_named,
    ),
    Case("/venues/<int:venue_id>/edit", "GET", venue_url("/venues/{v}/edit"), EDIT_VENUE, "venue"),
    Case(
        "/venues/<int:venue_id>/edit",
        "POST",
        venue_url("/venues/{v}/edit"),
        EDIT_VENUE,
        "venue",
        data=venue_form,
        check=renamed,
    ),
    Case(
        "/venues/<int:venue_id>/retire",
        "POST",
        venue_url("/venues/{v}/retire"),
        EDIT_VENUE,
        "venue",
        data=lambda w, r, v: {"retired": "1"},
        check=lambda w, r, v, d: reload(w, v).retired,
    ),
    Case(
        "/venues/<int:venue_id>/closures",
        "POST",
        venue_url("/venues/{v}/closures"),
        EDIT_VENUE,
        "venue",
        data=closure_form,
        check=lambda w, r, v, d: closures_of(w, v.id) == 1,
    ),
    Case(
        "/venues/<int:venue_id>/closures/<int:closure_id>/delete",
        "POST",
        lambda w, c: f"/venues/{c.venue_id}/closures/{c.id}/delete",
        EDIT_VENUE,
        "closure",
        data=lambda w, r, c: {},
        check=lambda w, r, c, d: closure_gone(w, c),
    ),
    Case("/import/venues", "GET", const("/import/venues"), {**STAFF}),
    Case(
        "/import/venues",
        "POST",
        const("/import/venues"),
        REGISTER_FOR_UNIT,
        "owner",
        data=lambda w, r, o: import_file(w, r, o),
        check=venue_named,
        files=True,
    ),
    # -- units
    Case(
        "/units/",
        "GET",
        const("/units/"),
        {**LIST_VENUES, "anon": LOGIN},
        "unit",
        True,
        shown=ids_in("data-unit-id"),
    ),
    Case("/units/new", "GET", const("/units/new"), {**ADMINS}),
    Case(
        "/units/new",
        "POST",
        const("/units/new"),
        {**ADMINS},
        None,
        data=lambda w, r, _o: {"name": f"新单位{next(w.seq)}", "kind": "soe"},
        check=lambda w, r, _o, d: bool(
            (w.session.rollback() or True)
            and w.session.scalar(
                select(Unit.id).where(
                    Unit.name == d["name"], Unit.committee_id == w.users[r].committee_id
                )
            )
        ),
    ),
    Case(
        "/units/<int:unit_id>/edit", "GET", lambda w, u: f"/units/{u.id}/edit", ADMIN_UNIT, "unit"
    ),
    Case(
        "/units/<int:unit_id>/edit",
        "POST",
        lambda w, u: f"/units/{u.id}/edit",
        ADMIN_UNIT,
        "unit",
        data=lambda w, r, u: unit_form(w, r, u),
        check=unit_secretary_is,
    ),
    Case(
        "/units/<int:unit_id>/status",
        "POST",
        lambda w, u: f"/units/{u.id}/status",
        {
            **ADMIN_UNIT,
            "booker_a": "403 403 404",
            "booker_b": "403 403 404",
            "sec_a": "403 403 404",
            "sec_b": "403 403 404",
        },
        "unit",
        data=lambda w, r, u: {"status": "suspended", "confirmed": "1"},
        check=lambda w, r, u, d: reload(w, u).status == "suspended",
    ),
    # -- youth groups
    Case(
        "/groups/",
        "GET",
        const("/groups/"),
        STAFF_LIST,
        "group",
        True,
        shown=ids_in("data-group-id"),
    ),
    Case("/groups/new", "GET", const("/groups/new"), {**STAFF}),
    Case(
        "/groups/new",
        "POST",
        const("/groups/new"),
        REGISTER_FOR_UNIT,
        "owner",
        data=lambda w, r, o: {"name": f"新团体{next(w.seq)}", "unit_id": str(w.units[o].id)},
        check=group_named,
    ),
    Case(
        "/groups/<int:group_id>/edit",
        "GET",
        lambda w, g: f"/groups/{g.id}/edit",
        MANAGE_GROUP,
        "group",
    ),
    Case(
        "/groups/<int:group_id>/edit",
        "POST",
        lambda w, g: f"/groups/{g.id}/edit",
        MANAGE_GROUP,
        "group",
        data=lambda w, r, g: {"name": f"改名团体{next(w.seq)}", "unit_id": str(g.unit_id)},
        check=lambda w, r, g, d: reload(w, g).name == d["name"],
    ),
    Case(
        "/groups/<int:group_id>/status",
        "POST",
        lambda w, g: f"/groups/{g.id}/status",
        MANAGE_GROUP,
        "group",
        data=lambda w, r, g: {"active": "0"},
        check=lambda w, r, g, d: not reload(w, g).active,
    ),
    # -- units' applications to join
    Case("/apply", "GET", const("/apply"), EVERYONE),
    Case("/apply", "POST", const("/apply"), EVERYONE, data=apply_form, check=applied),
    Case(
        "/units/applications",
        "GET",
        const("/units/applications"),
        {**STAFF_LIST, "sec_a": "403", "sec_b": "403"},
        "application",
        True,
        shown=ids_in("data-application-id"),
    ),
    Case(
        "/units/applications/<int:application_id>/admit",
        "POST",
        lambda w, a: f"/units/applications/{a.id}/admit",
        ADMIN_UNIT,
        "application",
        data=lambda w, r, a: {"username": f"admitted-{next(w.seq)}"},
        check=lambda w, r, a, d: reload(w, a).status == "admitted",
    ),
    Case(
        "/units/applications/<int:application_id>/decline",
        "POST",
        lambda w, a: f"/units/applications/{a.id}/decline",
        ADMIN_UNIT,
        "application",
        data=lambda w, r, a: {"reason": "不符合条件"},
        check=lambda w, r, a, d: reload(w, a).status == "declined",
    ),
    # -- the activity list (活动清单), rotation preferences, pairings (结对挂钩)
    Case("/plans/", "GET", const("/plans/"), STAFF),
    Case("/plans/", "POST", const("/plans/"), ADMINS, data=plan_form, check=plan_of_year),
    Case("/plans/<int:plan_id>", "GET", lambda w, p: f"/plans/{p.id}", SEE_PLAN, "plan"),
    Case(
        "/plans/<int:plan_id>/plan.<fmt>",
        "GET",
        lambda w, p: f"/plans/{p.id}/plan.xlsx",
        SEE_PLAN,
        "plan",
    ),
    Case(
        "/plans/<int:plan_id>/entries/<int:entry_id>",
        "POST",
        lambda w, p: f"/plans/{p.id}/entries/{first_turn(p)}",
        EDIT_PLAN,
        "plan",
        data=lambda w, r, p: {
            "period": "1",
            "unit_id": str(p.entries[0].unit_id),
            "kind": "salon",
            "title": "",
            "note": "",
        },
        check=lambda w, r, p, d: reload(w, p).entries[0].kind == "salon",
    ),
    Case(
        "/plans/<int:plan_id>/swap",
        "POST",
        lambda w, p: f"/plans/{p.id}/swap",
        EDIT_PLAN,
        "plan",
        data=lambda w, r, p: {
            "first": str(p.entries[0].id),
            "second": str(p.entries[1].id),
            "_before": audited(w, r, "plan.entry.swap") if r != "anon" else 0,
        },
        check=lambda w, r, p, d: audited(w, r, "plan.entry.swap") == d["_before"] + 1,
    ),
    Case(
        "/plans/<int:plan_id>/publish",
        "POST",
        lambda w, p: f"/plans/{p.id}/publish",
        EDIT_PLAN,
        "plan",
        data=lambda w, r, p: {},
        check=lambda w, r, p, d: reload(w, p).status == "published",
    ),
    Case(
        "/plans/<int:plan_id>/entries/<int:entry_id>/led",
        "POST",
        lambda w, p: f"/plans/{p.id}/entries/{first_turn(p)}/led",
        LEAD_TURN,
        "plan",
        data=lambda w, r, p: {"led_on": "2023-03-10"},
        check=lambda w, r, p, d: reload(w, p).entries[0].led_on is not None,
    ),
    Case("/plans/preferences", "GET", const("/plans/preferences"), STAFF),
    Case(
        "/plans/preferences",
        "POST",
        const("/plans/preferences"),
        STAFF,
        data=lambda w, r, _o: {
            "blackout_months": "1",
            "_before": audited(w, r, "plan.preferences") if r != "anon" else 0,
        },
        check=lambda w, r, _o, d: audited(w, r, "plan.preferences") == d["_before"] + 1,
    ),
    Case("/pairings/", "GET", const("/pairings/"), SIGNED_IN),
    Case("/pairings/", "POST", const("/pairings/"), ADMINS, data=pairing_form, check=paired),
    Case(
        "/pairings/<int:pairing_id>/end",
        "POST",
        lambda w, p: f"/pairings/{p.id}/end",
        ADMIN_UNIT,
        "pairing",
        data=lambda w, r, p: {"end_on": "2099-12-31"},
        check=lambda w, r, p, d: reload(w, p).end_on is not None,
    ),
    # -- accounts and set-password links
    Case(
        "/users/", "GET", const("/users/"), STAFF_LIST, "user", True, shown=ids_in("data-user-id")
    ),
    Case("/users/new", "GET", const("/users/new"), {**STAFF}),
    Case(
        "/users/new",
        "POST",
        const("/users/new"),
        REGISTER_FOR_UNIT,
        "owner",
        data=lambda w, r, o: {
            "username": f"new-booker-{next(w.seq)}",
            "role": "booker",
            "group_id": str(w.groups[o].id),
        },
        check=user_named,
    ),
    Case(
        "/users/<int:user_id>/link",
        "POST",
        lambda w, u: f"/users/{u.id}/link",
        MANAGE_GROUP,
        "user",
        data=lambda w, r, u: {},
        check=link_issued,
    ),
    Case(
        "/users/<int:user_id>/active",
        "POST",
        lambda w, u: f"/users/{u.id}/active",
        MANAGE_GROUP,
        "user",
        data=lambda w, r, u: {"active": "0"},
        check=lambda w, r, u, d: not reload(w, u).active,
    ),
    Case(
        "/users/<int:user_id>/groups",
        "GET",
        lambda w, u: f"/users/{u.id}/groups",
        MANAGE_GROUP,
        "user",
    ),
    Case(
        "/users/<int:user_id>/groups",
        "POST",
        lambda w, u: f"/users/{u.id}/groups",
        MANAGE_GROUP,
        "user",
        data=lambda w, r, u: {"group_id": [str(u.group_id), str(second_group(w, u).id)]},
        check=lambda w, r, u, d: len(reload(w, u).groups) == 2,
    ),
    Case("/password/<secret>", "GET", lambda w, k: f"/password/{k.secret}", SEE_VENUE, "link"),
    Case(
        "/password/<secret>",
        "POST",
        lambda w, k: f"/password/{k.secret}",
        SEE_VENUE,
        "link",
        data=lambda w, r, k: {
            "password": "a-new-secret-for-the-link",
            "confirm": "a-new-secret-for-the-link",
        },
        check=lambda w, r, k, d: reload(w, k).used_at is not None,
    ),
    # -- booking a venue, the owner's calendar, the map's free slots
    Case("/venues/<int:venue_id>/book", "GET", venue_url("/venues/{v}/book"), USE_VENUE, "venue"),
    Case(
        "/venues/<int:venue_id>/book",
        "POST",
        venue_url("/venues/{v}/book"),
        BOOK_VENUE,
        "venue",
        data=booking_form,
        check=booked,
    ),
    Case(
        "/venues/<int:venue_id>/calendar",
        "GET",
        venue_url("/venues/{v}/calendar"),
        {**EDIT_VENUE},
        "venue",
    ),
    Case(
        "/map/venues/<int:venue_id>/free-today",
        "GET",
        venue_url("/map/venues/{v}/free-today"),
        SEE_VENUE,
        "venue",
    ),
    # -- my bookings, the owner's queue and the actions on a booking
    Case(
        "/bookings/",
        "GET",
        const("/bookings/"),
        {**STAFF_LIST, "booker_a": "+ - -", "booker_b": "- + -"},
        "booking",
        True,
        shown=ids_in("data-booking-id"),
    ),
    # -- phone bookings (一个电话): staff only; a venue of another committee refused (403)
    Case("/bookings/phone", "GET", const("/bookings/phone"), {**STAFF}),
    Case(
        "/bookings/phone",
        "POST",
        venue_url("/bookings/phone?venue_id={v}"),
        PHONE_BOOK,
        "venue",
        data=phone_form,
        check=booked,
    ),
    Case(
        "/bookings/requests",
        "GET",
        const("/bookings/requests"),
        {**STAFF_LIST, "sec_a": "- + -", "sec_b": "+ - -"},
        "pending",
        True,
        shown=ids_in("data-booking-id"),
    ),
    Case(
        "/bookings/<int:booking_id>/cancel",
        "POST",
        booking_url("/bookings/{b}/cancel"),
        MANAGE_BOOKING,
        "booking",
        data=lambda w, r, b: {"reason": "矩阵", "scope": "one", "confirmed": "1"},
        check=status_is("cancelled"),
    ),
    Case(
        "/bookings/<int:booking_id>/cancel",
        "POST",
        booking_url("/bookings/{b}/cancel"),
        MANAGE_BOOKING,
        "series",
        data=lambda w, r, b: {"reason": "", "scope": "series", "confirmed": "1"},
        check=series_cancelled,
        label="series",
    ),
    Case(
        "/bookings/<int:booking_id>/reschedule",
        "GET",
        booking_url("/bookings/{b}/reschedule"),
        MANAGE_BOOKING,
        "booking",
    ),
    Case(
        "/bookings/<int:booking_id>/reschedule",
        "POST",
        booking_url("/bookings/{b}/reschedule"),
        MANAGE_BOOKING,
        "booking",
        data=reschedule_form,
        check=moved,
    ),
    Case(
        "/bookings/<int:booking_id>/confirm",
        "POST",
        booking_url("/bookings/{b}/confirm"),
        RUN_BOOKING,
        "pending",
        data=lambda w, r, b: {},
        check=status_is("confirmed"),
    ),
    Case(
        "/bookings/<int:booking_id>/decline",
        "POST",
        booking_url("/bookings/{b}/decline"),
        RUN_BOOKING,
        "pending",
        data=lambda w, r, b: {"reason": "检修"},
        check=status_is("declined"),
    ),
    Case(
        "/bookings/<int:booking_id>/check-in",
        "POST",
        booking_url("/bookings/{b}/check-in"),
        RUN_BOOKING,
        "underway",
        data=lambda w, r, b: {},
        check=status_is("completed"),
    ),
    Case(
        "/bookings/<int:booking_id>/check-in",
        "POST",
        booking_url("/bookings/{b}/check-in"),
        RUN_BOOKING,
        "underway",
        data=lambda w, r, b: {"no_show": "1"},
        check=status_is("no_show"),
        label="no-show",
    ),
    # -- notifications
    Case(
        "/notifications",
        "GET",
        const("/notifications"),
        {
            **STAFF_LIST,
            "booker_a": "+ - -",
            "booker_b": "- + -",
            "admin": "- - -",
            "other_admin": "- - -",
        },
        "note",
        True,
        shown=ids_in("data-notification-id"),
    ),
    Case(
        "/notifications/<int:notification_id>/read",
        "POST",
        lambda w, n: f"/notifications/{n.id}/read",
        OWN_GROUP | {"admin": "404 404 404", "other_admin": "404 404 404"},
        "note",
        data=lambda w, r, n: {},
        check=note_read,
    ),
    Case(
        "/notifications/read",
        "POST",
        const("/notifications/read"),
        {
            **STAFF_LIST,
            "booker_a": "+ - -",
            "booker_b": "- + -",
            "admin": "- - -",
            "other_admin": "- - -",
        },
        "note",
        True,
        data=lambda w, r, n: {},
        fresh_all=True,
        shown=lambda w, n, body: note_read(w, "", n, None),
    ),
    # -- calendar feeds
    Case("/feeds/", "GET", const("/feeds/"), SIGNED_IN),
    Case(
        "/feeds/",
        "POST",
        const("/feeds/"),
        OWN_GROUP,
        "owner",
        label="group",
        data=lambda w, r, o: {"target": f"group:{w.groups[o].id}"},
        check=feed_made("group"),
    ),
    Case(
        "/feeds/",
        "POST",
        const("/feeds/"),
        EDIT_VENUE,
        "owner",
        label="venue",
        data=lambda w, r, o: {"target": f"venue:{w.venue_of(o).id}"},
        check=feed_made("venue"),
    ),
    Case(
        "/feeds/<int:token_id>/revoke",
        "POST",
        lambda w, t: f"/feeds/{t.id}/revoke",
        OWN_GROUP | {"sec_a": "404 404 404", "sec_b": "404 404 404"},
        "feed",
        data=lambda w, r, t: {},
        check=revoked,
    ),
    Case(
        "/feeds/<token>.ics",
        "GET",
        lambda w, t: f"/feeds/{t.secret}.ics",
        R(**{r: "ok ok ok" for r in ROLES}),
        "feed",
    ),
    # -- activities and sign-ups
    Case(
        "/activities/",
        "GET",
        const("/activities/"),
        {**LIST_VENUES, "anon": LOGIN},
        "activity",
        True,
        shown=ids_in("data-activity-id"),
    ),
    Case(
        "/activities/<int:activity_id>",
        "GET",
        lambda w, a: f"/activities/{a.id}",
        SEE_ACTIVITY,
        "activity",
    ),
    Case("/activities/new", "GET", const("/activities/new"), {**STAFF}),
    Case(
        "/activities/new",
        "POST",
        const("/activities/new"),
        {**REGISTER_FOR_UNIT, "sec_a": "ok 403 403", "sec_b": "403 ok 403"},
        "owner",
        data=activity_form,
        check=activity_titled,
    ),
    Case(
        "/activities/<int:activity_id>/edit",
        "GET",
        lambda w, a: f"/activities/{a.id}/edit",
        EDIT_ACTIVITY,
        "activity",
    ),
    Case(
        "/activities/<int:activity_id>/edit",
        "POST",
        lambda w, a: f"/activities/{a.id}/edit",
        EDIT_ACTIVITY,
        "activity",
        data=activity_form,
        check=lambda w, r, a, d: reload(w, a).title == d["title"],
    ),
    Case(
        "/activities/<int:activity_id>/cancel",
        "POST",
        lambda w, a: f"/activities/{a.id}/cancel",
        MANAGE_ACTIVITY,
        "activity",
        data=lambda w, r, a: {"reason": "矩阵"},
        check=lambda w, r, a, d: reload(w, a).status == "cancelled",
    ),
    Case(
        "/activities/<int:activity_id>/signup",
        "POST",
        lambda w, a: f"/activities/{a.id}/signup",
        SEE_ACTIVITY,
        "activity",
        data=lambda w, r, a: {"headcount": "2", "group": signer_of(w, r)},
        check=signed_up,
    ),
    Case(
        "/activities/<int:activity_id>/signups/<int:signup_id>/withdraw",
        "POST",
        lambda w, s: f"/activities/{getattr(s, 'activity_id', s.id)}/signups/{s.id}/withdraw",
        OWN_GROUP,
        "signup",
        data=lambda w, r, s: {},
        check=lambda w, r, s, d: reload(w, s).state == "withdrawn",
    ),
    Case(
        "/activities/<int:activity_id>/attendance",
        "POST",
        lambda w, a: f"/activities/{a.id}/attendance",
        MANAGE_ACTIVITY,
        "started",
        data=lambda w, r, a: {},
        check=attendance_noted,
    ),
    Case(
        "/activities/<int:activity_id>/signups.<fmt>",
        "GET",
        lambda w, a: f"/activities/{a.id}/signups.xlsx",
        MANAGE_ACTIVITY,
        "activity",
    ),
    # -- account: one's details and password
    Case("/account/", "GET", const("/account/"), SIGNED_IN),
    Case(
        "/account/",
        "POST",
        const("/account/"),
        SIGNED_IN,
        data=lambda w, r, _o: {"display_name": f"名{next(w.seq)}", "phone": "123 456"},
        check=lambda w, r, _o, d: reload(w, w.users[r]).display_name == d["display_name"],
    ),
    Case(
        "/account/password",
        "POST",
        const("/account/password"),
        SIGNED_IN,
        data=lambda w, r, _o: {
            "current": PASSWORD,
            "new": PASSWORD,
            "_before": audited(w, r, "user.change_password") if r != "anon" else 0,
        },
        check=lambda w, r, _o, d: audited(w, r, "user.change_password") == d["_before"] + 1,
    ),
    Case(
        "/account/sessions/end",
        "POST",
        const("/account/sessions/end"),
        SIGNED_IN,
        data=lambda w, r, _o: {"session_id": str(spare_session(w, r))},
        check=lambda w, r, _o, d: session_ended(w, int(d["session_id"])),
    ),
    # -- account: API tokens
    Case("/account/tokens", "GET", const("/account/tokens"), SIGNED_IN),
    Case(
        "/account/tokens",
        "POST",
        const("/account/tokens"),
        SIGNED_IN,
        data=lambda w, r, _o: {"name": "矩阵", "scopes": ["read"], "_before": own_api_tokens(w, r)},
        check=lambda w, r, _o, d: own_api_tokens(w, r) == d["_before"] + 1,
    ),
    Case(
        "/account/tokens/<int:token_id>/revoke",
        "POST",
        lambda w, t: f"/account/tokens/{t.id}/revoke",
        R(
            anon="login login login",
            booker_a="ok 404 404",
            booker_b="404 ok 404",
            sec_a="404 404 404",
            sec_b="404 404 404",
            admin="404 404 404",
            other_admin="404 404 ok",
        ),
        "token",
        data=lambda w, r, t: {},
        check=revoked,
    ),
    # -- dashboard
    Case("/dashboard/", "GET", const("/dashboard/"), STAFF_LIST, "venue", True, shown=name_in),
    Case(
        "/dashboard/export/<name>.<fmt>",
        "GET",
        const("/dashboard/export/grouped.csv"),
        STAFF_LIST,
        "venue",
        True,
        shown=name_in,
    ),
    Case(
        "/dashboard/table/<name>",
        "GET",
        const("/dashboard/table/grouped"),
        STAFF_LIST,
        "venue",
        True,
        shown=name_in,
    ),
    Case("/dashboard/chart/<name>.<fmt>", "GET", const("/dashboard/chart/trend.svg"), STAFF),
    Case("/dashboard/print.<fmt>", "GET", const("/dashboard/print.png?paper=A4"), STAFF),
    # -- the dashboard's activity figures (issue 20): the admin the committee's, a secretary
    # its unit's as lead (the period: from today, wherever the year ends)
    Case("/dashboard/activities/", "GET", const("/dashboard/activities/"), STAFF),
    Case(
        "/dashboard/activities/export/<name>.<fmt>",
        "GET",
        lambda w, _o: (
            "/dashboard/activities/export/activities.csv?period=custom&start="
            f"{datetime.now(TZ).date()}&end={datetime.now(TZ).date() + timedelta(days=30)}"
        ),
        STAFF_LIST,
        "activity",
        True,
        shown=lambda w, o, body: o.title in body,
    ),
    Case(
        "/dashboard/activities/chart/<name>.<fmt>",
        "GET",
        const("/dashboard/activities/chart/fulfilment.svg"),
        STAFF,
    ),
    # -- audit log and settings (which entries each role sees: tests/test_audit_settings.py)
    Case("/audit/", "GET", const("/audit/"), STAFF),
    Case("/audit/export.<fmt>", "GET", const("/audit/export.xlsx"), STAFF),
    Case("/settings/", "GET", const("/settings/"), ADMINS),
    Case(
        "/settings/",
        "POST",
        const("/settings/"),
        ADMINS,
        data=settings_form,
        check=lambda w, r, _o, d: own_committee(w, r).print_title == d["print_title"],
    ),
    # -- the one map
    Case("/map", "GET", const("/map"), EVERYONE),
    Case("/map/embed", "GET", const("/map/embed"), EVERYONE),
    Case("/map/areas.geojson", "GET", const("/map/areas.geojson"), EVERYONE),
    Case(
        "/map/data.geojson",
        "GET",
        const("/map/data.geojson"),
        MAP_VENUES,
        "venue",
        True,
        shown=name_in,
    ),
    Case("/map/one-map.js", "GET", const("/map/one-map.js"), EVERYONE),
    Case(
        "/map/activities.json",
        "GET",
        const("/map/activities.json"),
        {**LIST_VENUES, "anon": "- - -"},
        "activity",
        True,
        shown=lambda w, o, body: o.title in body,
    ),
    Case(
        "/map/data.json", "GET", const("/map/data.json"), MAP_VENUES, "venue", True, shown=name_in
    ),
    Case(
        "/map/venues/<int:venue_id>/popup",
        "GET",
        venue_url("/map/venues/{v}/popup"),
        SEE_VENUE,
        "venue",
    ),
    Case(
        "/map/export.<fmt>",
        "GET",
        const("/map/export.csv"),
        MAP_VENUES,
        "venue",
        True,
        shown=name_in,
    ),
    # -- front page, health, API reference, log-in and log-out
    Case("/", "GET", const("/"), EVERYONE),
    Case("/healthz", "GET", const("/healthz"), EVERYONE),
    # The operator's: readiness for all; metrics to loopback clients (the test client is one;
    # the refusal of others: tests/test_ops_endpoints.py).
    Case("/readyz", "GET", const("/readyz"), EVERYONE),
    Case("/metrics", "GET", const("/metrics"), EVERYONE),
    Case("/api/v1/docs", "GET", const("/api/v1/docs"), EVERYONE),
    Case("/api/v1/openapi.json", "GET", const("/api/v1/openapi.json"), EVERYONE),
    Case("/login", "GET", const("/login"), EVERYONE),
    Case("/login", "POST", const("/login"), {**EVERYONE, "anon": "401"}),
    Case("/logout", "POST", const("/logout"), SIGNED_IN),
]


# ---------------------------------------------------------------- running the cells


def cells() -> list[tuple[Case, str, str | None]]:
    out: list[tuple[Case, str, str | None]] = []
    for case in CASES:
        for role in ROLES:
            if case.kind is None or case.listing:
                out.append((case, role, None))
            else:
                out.extend((case, role, owner) for owner in OWNERS)
    return out


CELLS = cells()


def expected(case: Case, role: str, owner: str | None) -> str:
    spec = case.expect[role]
    if owner is None:
        return spec
    return spec.split()[OWNERS.index(owner)]


def outcome(resp: Any) -> str:
    status = resp.status_code
    if status in (301, 302, 303) and "/login" in resp.headers.get("Location", ""):
        return LOGIN
    return OK if status in (200, 201, 302, 303) else str(status)


def send(client: Any, case: Case, url: str, data: dict[str, Any] | None, token: str | None) -> Any:
    if case.method == "GET":
        resp = client.get(url)
    else:
        form = {k: v for k, v in (data or {}).items() if not k.startswith("_")}
        if token is not None:
            form["csrf_token"] = token
        resp = client.post(
            url,
            data=form,
            content_type="multipart/form-data" if case.files else None,
        )
    resp.get_data()  # read before closing: a streamed export's body is gone once closed
    resp.close()
    forget_flashes(client)
    return resp


def run_login_cell(web: Clients, world: World, case: Case, role: str, want: str) -> None:
    """Log-in and log-out act on the session, so each cell gets a client of its own."""
    if case.rule == "/logout":
        client, token = web.new(role)
        got = outcome(send(client, case, "/logout", {}, token))
        assert got == want
        after = client.get("/account/tokens")
        assert outcome(after) == LOGIN  # logged out (or never in)
        return
    client = web.app.test_client()
    token = csrf_of(client.get("/login"))
    before = snapshot(world.engine)
    username = USERNAMES.get(role, "nobody")
    resp = send(client, case, "/login", {"username": username, "password": PASSWORD}, token)
    assert outcome(resp) == want
    signed_in = client.get("/account/tokens").status_code == 200
    assert signed_in == (want == OK)
    if want != OK:
        assert changed_tables(before, snapshot(world.engine)) == []


def run_listing_cell(web: Clients, world: World, case: Case, role: str, want: str) -> None:
    client, token = web.clients[role], web.tokens[role]
    objs = {
        o: world.fresh(case.kind, o) if case.fresh_all else world.obj(case.kind, o) for o in OWNERS
    }  # type: ignore[arg-type]
    data = case.data(world, role, None) if case.data else None
    before = snapshot(world.engine) if case.mutating else None
    resp = send(client, case, case.url(world, None), data, token)
    body = resp.get_data(as_text=True)
    if " " not in want:  # refused as a whole
        assert outcome(resp) == want, body[:2000]
        if before is not None:
            assert changed_tables(before, snapshot(world.engine)) == []
        return
    assert outcome(resp) == OK, body[:2000]
    assert case.shown is not None
    got = " ".join("+" if case.shown(world, objs[o], body) else "-" for o in OWNERS)
    assert got == want, f"{case.name} as {role}: shown {got}, expected {want}"
    if before is not None and "+" not in want:
        assert changed_tables(before, snapshot(world.engine)) == []


@pytest.mark.parametrize(
    "case, role, owner",
    CELLS,
    ids=[f"{c.name}|{r}" + (f"|{o}" if o else "") for c, r, o in CELLS],
)
def test_cell(web: Clients, world: World, case: Case, role: str, owner: str | None) -> None:
    want = expected(case, role, owner)
    if case.rule in ("/login", "/logout") and case.method == "POST":
        run_login_cell(web, world, case, role, want)
        return
    if case.listing:
        run_listing_cell(web, world, case, role, want)
        return
    client, token = web.clients[role], web.tokens[role]
    obj: Any = None
    if case.kind == "owner":
        obj = owner
    elif case.kind is not None:
        assert owner is not None
        succeeds = case.mutating and want == OK
        obj = world.fresh(case.kind, owner) if succeeds else world.obj(case.kind, owner)
    url = case.url(world, obj)
    data = case.data(world, role, obj) if case.data else None
    before = snapshot(world.engine) if case.mutating and want != OK else None
    resp = send(client, case, url, data, token)
    got = outcome(resp)
    assert got == want, (
        f"{case.name} as {role} on {owner}'s: {resp.status_code} "
        + (resp.get_data(as_text=True)[:1500])
    )
    if want == OK and case.mutating:
        assert case.check is not None
        assert case.check(world, role, obj, data), f"{case.name} as {role}: nothing changed"
    if before is not None:
        assert changed_tables(before, snapshot(world.engine)) == [], "a refused request wrote"


def test_every_route_is_in_the_matrix(web: Clients) -> None:
    """Every (rule, method) of the app is a case here, the JSON API (its own matrix) and the
    static assets aside: a new route fails this until it is added."""
    covered = {(c.rule, c.method) for c in CASES}
    missing = []
    for rule in web.app.url_map.iter_rules():
        if rule.rule in NOT_IN_MATRIX:
            continue
        if rule.rule.startswith(API_PREFIX) and rule.endpoint.startswith("api."):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (rule.rule, method) not in covered:
                missing.append(f"{method} {rule.rule}")
    assert missing == []
    stale = covered - {
        (r.rule, m) for r in web.app.url_map.iter_rules() for m in (r.methods or set())
    }
    assert stale == set()  # the matrix names no route that is gone


POSTS = [c for c in CASES if c.mutating]


@pytest.mark.parametrize("case", POSTS, ids=[c.name for c in POSTS])
def test_state_changing_forms_need_the_csrf_token(web: Clients, world: World, case: Case) -> None:
    """Posted without its token by a user who may do it: 400, and nothing changes."""
    role = next(r for r in ROLES if r != "anon" and {OK, "+"} & set(case.expect[r].split()))
    if case.rule == "/login":
        role = "anon"
    owner = "X" if role == "other_admin" else "A"
    if case.kind is not None and case.expect[role].split()[0] != OK and not case.listing:
        owner = OWNERS[case.expect[role].split().index(OK)]
    client = web.clients[role]
    obj: Any = owner if case.kind == "owner" else None
    if case.kind not in (None, "owner"):
        obj = world.fresh(case.kind, owner)
    data = case.data(world, role, obj) if case.data else {}
    if case.rule == "/login":
        data = {"username": "admin", "password": PASSWORD}
    before = snapshot(world.engine)
    resp = send(client, case, case.url(world, obj), data, None)
    assert resp.status_code == 400 and "缺少安全令牌" in resp.get_data(as_text=True)
    assert changed_tables(before, snapshot(world.engine)) == []


OBJECT_GETS_AND_POSTS = [c for c in CASES if c.kind not in (None, "owner") and not c.listing]


@pytest.mark.parametrize("case", OBJECT_GETS_AND_POSTS, ids=[c.name for c in OBJECT_GETS_AND_POSTS])
def test_ids_that_do_not_exist_are_404(web: Clients, world: World, case: Case) -> None:
    class Missing:
        id = 987654
        venue_id = world.venue_of("A").id
        secret = "ms_no-such-feed"

    data = case.data(world, "admin", world.obj(case.kind, "A")) if case.data else None  # type: ignore[arg-type]
    before = snapshot(world.engine)
    resp = send(web.clients["admin"], case, case.url(world, Missing()), data, web.tokens["admin"])
    assert resp.status_code == 404
    assert changed_tables(before, snapshot(world.engine)) == []


def test_a_closure_is_reached_only_through_its_own_venue(web: Clients, world: World) -> None:
    """B's closure addressed under A's venue (which A's secretary may edit): 404, kept."""
    closure = world.obj("closure", "B")
    venue_a = world.venue_of("A")
    before = snapshot(world.engine)
    resp = web.clients["sec_a"].post(
        f"/venues/{venue_a.id}/closures/{closure.id}/delete",
        data={"csrf_token": web.tokens["sec_a"]},
    )
    forget_flashes(web.clients["sec_a"])
    assert resp.status_code == 404
    assert changed_tables(before, snapshot(world.engine)) == []


# ---------------------------------------------------------------- the session cookie


def test_log_in_starts_a_fresh_session(web: Clients, world: World) -> None:
    """Session fixation: whatever a visitor's session held before logging in (a value an
    attacker planted, the pre-log-in CSRF token) is gone after it; the cookie changes."""
    client = web.app.test_client()
    token = csrf_of(client.get("/login"))
    with client.session_transaction() as sess:
        sess["planted"] = "by-an-attacker"
        before = dict(sess)
    cookie_before = client.get_cookie("session").value
    resp = client.post(
        "/login", data={"username": "sec-a", "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 302
    with client.session_transaction() as sess:
        after = dict(sess)
    assert "planted" not in after and after.get("_user_id") == str(world.users["sec_a"].id)
    assert after.get("csrf_token") != before.get("csrf_token")
    assert client.get_cookie("session").value != cookie_before
    # The token of the session before log-in no longer passes.
    stale = client.post("/units/new", data={"name": "x", "kind": "soe", "csrf_token": token})
    assert stale.status_code == 400


@pytest.mark.parametrize("https", ["1", ""])
def test_session_cookie_is_secure_behind_https(
    https: str,
    world: World,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HttpOnly and SameSite=Lax always (tests/test_security_headers.py); Secure when the
    site is served over HTTPS (MAPSERVICE_HTTPS=1), else browsers would drop it on http."""
    from mapservice import create_app

    monkeypatch.setenv("MAPSERVICE_HTTPS", https)
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "matrix-secret",
            "INSTANCE_PATH": tmp_path,
            "WTF_CSRF_ENABLED": False,
        }
    )
    try:
        client = app.test_client()
        resp = client.post("/login", data={"username": "admin", "password": PASSWORD})
        cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session="))
        flags = {p.strip().split("=")[0] for p in cookie.split(";")[1:]}
        assert {"HttpOnly", "SameSite"} <= flags and "SameSite=Lax" in cookie
        assert ("Secure" in flags) == (https == "1")
    finally:
        app.extensions["db_engine"].dispose()


# ---------------------------------------------------------------- forged form values


def post_refused(web: Clients, world: World, role: str, url: str, data: dict[str, Any]) -> int:
    """Post as ``role`` and return the status; the database must not change."""
    client = web.clients[role]
    before = snapshot(world.engine)
    resp = client.post(
        url,
        data={**data, "csrf_token": web.tokens[role]},
        content_type="multipart/form-data" if "file" in data else None,
    )
    resp.close()
    forget_flashes(client)
    assert changed_tables(before, snapshot(world.engine)) == []
    return int(resp.status_code)


def test_a_secretary_cannot_move_its_venue_to_another_unit(web: Clients, world: World) -> None:
    venue = world.venue_of("A")
    data = venue_form(world, "sec_a", venue)
    data["unit"] = world.units["B"].name  # not among the form's choices for A's secretary
    assert post_refused(web, world, "sec_a", f"/venues/{venue.id}/edit", data) == 422


def test_an_import_cannot_update_another_units_venue(web: Clients, world: World) -> None:
    """A row naming B's venue and unit B would update it: refused for A's secretary."""
    venue = world.venue_of("B")
    csv = f"name,unit,type,lon,lat,capacity_units\n{venue.name},{world.units['B'].name},"
    csv += "badminton,119.4253,32.1975,1\n"
    data = {"file": (io.BytesIO(csv.encode()), "venues.csv")}
    assert post_refused(web, world, "sec_a", "/import/venues", data) == 422


@pytest.mark.parametrize(
    "role, venue_owner, group_owner, status",
    [
        ("sec_a", "B", "B", 403),  # B's group at B's venue: not A's secretary's to book for
        ("admin", "A", "X", 404),  # a group of another committee
        ("other_admin", "X", "A", 404),
    ],
)
def test_booking_for_a_group_one_may_not_act_for(
    web: Clients, world: World, role: str, venue_owner: str, group_owner: str, status: int
) -> None:
    venue = world.venue_of(venue_owner)
    data = booking_form(world, role, venue)
    data["group"] = str(world.groups[group_owner].id)
    assert post_refused(web, world, role, f"/venues/{venue.id}/book", data) == status
