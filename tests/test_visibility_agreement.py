"""Issue 17: every surface agrees on who sees a venue and who may book it.

A world with two committees: in committee C an active unit A (an open venue, an unpublished
one and a retired one), an active unit B, a suspended unit S and an applied unit P (a published
venue each); in committee X one unit and its admin. For each role × venue, every surface that
shows a venue — the map's data and export, the venue list and its export, the detail page, the
map popup, the booking form, the API list, detail and availability — shows it or answers 404,
and every way to book — ``booking.engine.book``, ``POST /api/v1/bookings``, the web booking form
— books or refuses in the same way. Venue feeds are made by those who run the venue.

The expectation comes from the one table below (``VENUES``), not from the policy's code.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.booking import engine as booking_engine
from mapservice.booking import feeds
from mapservice.core.errors import DomainError, NotAllowed, NotFound, RuleViolation
from mapservice.db import writer
from mapservice.models import ApiToken, Booking, Group, Unit, User, Venue
from mapservice.operations.tokens import create_token
from mapservice.stats.frames import load_map_venues
from tests.conftest import PASSWORD, Factory, module_world

TZ = ZoneInfo("Asia/Shanghai")

# ---------------------------------------------------------------- the one table

ALL = "everyone"
STAFF = "staff"  # the committee's admin and the venue's unit secretary
ROLES = ("anon", "booker", "sec_own", "sec_other", "admin", "other_admin")


@dataclass(frozen=True)
class Expect:
    unit: str  # the venue's unit: A (active), S (suspended), P (applied)
    seen_by: str  # ALL or STAFF: who sees it (else 404 everywhere)
    listed: bool  # on the map, the lists and the API list (a retired venue only by link)
    bookable: bool  # open for booking (else its staff are told why; others get 404)


VENUES = {
    "open": Expect("A", ALL, True, True),
    "suspended": Expect("S", STAFF, True, False),
    "applied": Expect("P", STAFF, True, False),
    "unpublished": Expect("A", STAFF, True, False),
    "retired": Expect("A", STAFF, False, False),
}


def sees(role: str, kind: str) -> bool:
    e = VENUES[kind]
    return e.seen_by == ALL or role in ("sec_own", "admin")


def runs(role: str) -> bool:
    return role in ("sec_own", "admin")


def booking_outcome(role: str, kind: str) -> str:
    """ok | login | not_found | closed | group_refused (another committee's admin books for
    its own committee's groups, which a venue open to member units refuses)"""
    if role == "anon":
        return "login"
    if not sees(role, kind):
        return "not_found"
    if not VENUES[kind].bookable:
        return "closed"
    return "group_refused" if role == "other_admin" else "ok"


# ---------------------------------------------------------------- the world


# Bookings made before the venue stopped being open: name -> (venue, group, made by).
HELD = {
    "b_at_suspended": ("suspended", "B", "booker"),
    "b_at_retired": ("retired", "B", "booker"),
    "b_at_unpublished": ("unpublished", "B", "booker"),
    "b_by_sec_a": ("open", "B", "sec-a"),  # taken by unit A's secretary for group B (a call)
    "s_at_suspended": ("suspended", "S", "sec-s"),
}
# "My bookings" of each user among HELD: the group's own wherever they are, those one took.
MINE = {
    "booker": {"b_at_suspended", "b_at_retired", "b_at_unpublished", "b_by_sec_a"},
    "sec-b": {"b_at_suspended", "b_at_retired", "b_at_unpublished", "b_by_sec_a"},
    "sec-a": {"b_by_sec_a"},
    "sec-s": {"s_at_suspended"},
    "sec-p": set(),
    "admin": set(HELD),
    "other-admin": set(),
}


class World:
    def __init__(self, session: Session, engine: Engine, areas: Any) -> None:
        make = Factory(session, areas)
        self.session = session
        self.committee = make.committee("runzhou")
        self.other = make.committee("other", with_streets=False)
        units = {
            "A": make.unit(self.committee, "甲单位"),
            "B": make.unit(self.committee, "乙单位"),
            "S": make.unit(self.committee, "暂停单位"),
            "P": make.unit(self.committee, "申请单位"),
            "X": make.unit(self.other, "外会单位"),
        }
        self.groups = {k: make.group(u.committee, u, f"{k}团支部") for k, u in units.items()}
        self.secretaries = {
            k: make.secretary(units[k], username=f"sec-{k.lower()}") for k in "ABSP"
        }
        self.users = {
            "booker": make.booker(self.groups["B"], username="booker"),
            "sec_other": self.secretaries["B"],
            "admin": make.admin(self.committee, username="admin"),
            "other_admin": make.admin(self.other, username="other-admin"),
        }
        self.venues_x = make.venue(units["X"], name="外会场地")
        self.venues: dict[str, Venue] = {}
        for kind, e in VENUES.items():
            self.venues[kind] = make.venue(
                units[e.unit],
                name=f"{kind}场地",
                capacity_units=50,
                hours="Mon-Sun 00:00-24:00",
                min_notice_minutes=0,
                max_days_ahead=365,
            )
        # Bookings made while every venue was open (see HELD), kept when it stopped being.
        self.held: dict[str, int] = {}
        for name, (venue, group, by) in HELD.items():
            self.held[name] = self._book(engine, by, venue, group, len(self.held))
        for kind in VENUES:
            self.venues[kind].published = kind != "unpublished"
        self.venues["retired"].retired = True
        units["S"].status = "suspended"
        units["P"].status = "applied"
        session.commit()
        self.slots = itertools.count(0)
        self.first_slot = datetime.combine(
            datetime.now(TZ).date() + timedelta(days=3), time(8), tzinfo=TZ
        )

    def _book(self, engine: Engine, by: str, venue: str, group: str, n: int) -> int:
        day = (datetime.now(TZ) + timedelta(days=60)).date()
        start = datetime(day.year, day.month, day.day, 8 + n, tzinfo=TZ)
        self.session.commit()
        with Session(writer(engine), expire_on_commit=False) as session:
            actor = session.scalars(select(User).where(User.username == by)).one()
            booking = booking_engine.book(
                session,
                actor,
                self.venues[venue].id,
                self.groups[group].id,
                start,
                start + timedelta(hours=1),
            )
            session.commit()
            return booking.id

    def user(self, role: str, kind: str) -> User | None:
        if role == "anon":
            return None
        if role == "sec_own":
            return self.secretaries[VENUES[kind].unit]
        return self.users[role]

    def group_for(self, role: str, kind: str) -> Group:
        unit = {"booker": "B", "sec_other": "B", "admin": "A", "other_admin": "X"}.get(
            role, VENUES[kind].unit
        )
        return self.groups[unit]

    def slot(self) -> tuple[datetime, datetime]:
        """A new hour: twelve a day from 08:00, from three days ahead on."""
        n = next(self.slots)
        start = self.first_slot + timedelta(days=n // 12, hours=n % 12)
        return start, start + timedelta(hours=1)


class Clients:
    """A logged-in web client and an API token per user."""

    def __init__(self, app: Any, world: World) -> None:
        self.app = app
        self.web: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}
        users = {u.username: u for u in (*world.users.values(), *world.secretaries.values())}
        for username, user in users.items():
            _token, self.tokens[username] = create_token(
                world.session, None, user, ["book", "read"]
            )
        world.session.commit()
        for username in users:
            client = app.test_client()
            resp = client.post("/login", data={"username": username, "password": PASSWORD})
            assert resp.status_code == 302, resp.get_data(as_text=True)
            self.web[username] = client
        self.anon = app.test_client()

    def client(self, user: User | None) -> Any:
        return self.anon if user is None else self.web[user.username]

    def headers(self, user: User | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.tokens[user.username]}"}


world, web = module_world(World, Clients, csrf=False)


# ---------------------------------------------------------------- what each surface says


def map_ids(web: Clients, user: User | None) -> set[int]:
    body = web.client(user).get("/map/data.json?committee=runzhou").get_json()
    return set(itertools.accumulate(body["id"]))


def export_names(resp: Any) -> set[str]:
    assert resp.status_code == 200, resp.status_code
    text = resp.get_data(as_text=True).lstrip("\ufeff")
    return {row[0] for row in csv.reader(io.StringIO(text))}


def api_list_ids(web: Clients, user: User | None) -> set[int]:
    resp = web.anon.get("/api/v1/venues?per_page=100", headers=web.headers(user))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {f["properties"]["id"] for f in resp.get_json()["features"]}


def page_status(client: Any, url: str, **kw: Any) -> int:
    return int(client.get(url, **kw).status_code)


CASES = [(role, kind) for role in ROLES for kind in VENUES]


@pytest.mark.parametrize("role,kind", CASES, ids=[f"{r}-{k}" for r, k in CASES])
def test_every_surface_shows_the_venue_or_404(web: Clients, world: World, role: str, kind: str):
    user = world.user(role, kind)
    venue = world.venues[kind]
    seen = sees(role, kind)
    listed = seen and VENUES[kind].listed
    client = web.client(user)
    found = {
        "map": venue.id in map_ids(web, user),
        "map export": venue.name in export_names(client.get("/map/export.csv?committee=runzhou")),
        "list": venue.name in client.get("/venues/?committee=runzhou").get_data(as_text=True),
        "list export": venue.name
        in export_names(client.get("/venues/export.csv?committee=runzhou")),
        "api list": venue.id in api_list_ids(web, user),
    }
    assert found == dict.fromkeys(found, listed), found
    with_retired = client.get("/venues/?committee=runzhou&retired=1").get_data(as_text=True)
    assert (venue.name in with_retired) == seen, "list with retired ones"
    day = datetime.now(TZ).replace(microsecond=0) + timedelta(days=3)
    window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    statuses = {
        "detail": page_status(client, f"/venues/{venue.id}"),
        "popup": page_status(client, f"/map/venues/{venue.id}/popup"),
        "free today": page_status(client, f"/map/venues/{venue.id}/free-today"),
        "api detail": page_status(
            web.anon, f"/api/v1/venues/{venue.id}", headers=web.headers(user)
        ),
        "api availability": page_status(
            web.anon,
            f"/api/v1/venues/{venue.id}/availability",
            query_string=window,
            headers=web.headers(user),
        ),
    }
    if VENUES[kind].listed:  # the popup belongs to the map: a retired venue has none
        expected = dict.fromkeys(statuses, 200 if seen else 404)
    else:
        expected = {**dict.fromkeys(statuses, 200 if seen else 404), "popup": 404}
    assert statuses == expected
    if user is not None:
        form = client.get(f"/venues/{venue.id}/book")
        assert form.status_code == (200 if seen else 404)
        # Its staff are told a venue is not open for booking before they try.
        closed_notice = 'id="book-closed"' in form.get_data(as_text=True)
        assert closed_notice == (seen and not VENUES[kind].bookable)


def _engine_book(world: World, engine: Engine, user: User | None, kind: str) -> str:
    start, end = world.slot()
    group = world.group_for("anon" if user is None else _role_of(world, user, kind), kind)
    session = Session(writer(engine), expire_on_commit=False)
    try:
        actor = session.get(User, user.id) if user is not None else None
        booking_engine.book(session, actor, world.venues[kind].id, group.id, start, end)
        session.commit()
        return "ok"
    except RuleViolation as exc:
        session.rollback()
        codes = [v.code for v in exc.violations]
        return {"venue_inactive": "closed", "not_allowed": "group_refused"}.get(codes[0], repr(exc))
    except NotFound:
        session.rollback()
        return "not_found"
    except NotAllowed as exc:
        session.rollback()
        return "login" if exc.code == "login_required" else f"not_allowed:{exc.code}"
    except DomainError as exc:
        session.rollback()
        return repr(exc)
    finally:
        session.close()


def _role_of(world: World, user: User, kind: str) -> str:
    for role in ROLES:
        if world.user(role, kind) is user:
            return role
    raise AssertionError(user)


def _api_book(web: Clients, world: World, role: str, kind: str) -> str:
    user = world.user(role, kind)
    start, end = world.slot()
    resp = web.anon.post(
        "/api/v1/bookings",
        json={
            "venue_id": world.venues[kind].id,
            "group_id": world.group_for(role, kind).id,
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
        headers=web.headers(user),
    )
    body = resp.get_json() or {}
    code = body.get("error", {}).get("code")
    if resp.status_code == 201:
        return "ok"
    if resp.status_code == 401:
        return "login"
    if resp.status_code == 404 and code == "venue_not_found":
        return "not_found"
    if resp.status_code == 422 and code == "venue_inactive":
        return "closed"
    if resp.status_code == 422 and code == "not_allowed":
        return "group_refused"
    return f"{resp.status_code}:{body}"


def _web_book(web: Clients, world: World, role: str, kind: str) -> str:
    user = world.user(role, kind)
    start, end = world.slot()
    data = {
        "date": start.date().isoformat(),
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
        "units": "1",
    }
    if role not in ("anon", "booker"):
        data["group"] = str(world.group_for(role, kind).id)
    resp = web.client(user).post(f"/venues/{world.venues[kind].id}/book", data=data)
    if resp.status_code == 303:
        return "ok"
    if resp.status_code == 302 and "/login" in resp.headers["Location"]:
        return "login"
    if resp.status_code == 404:
        return "not_found"
    errors = re.search(r'id="book-errors".*?</div>', resp.get_data(as_text=True), re.S)
    said = errors.group(0) if errors and resp.status_code == 422 else ""
    if "该场地暂不开放预约" in said:
        return "closed"
    if "不能预约该场地" in said:
        return "group_refused"
    return f"{resp.status_code}"


@pytest.mark.parametrize("role,kind", CASES, ids=[f"{r}-{k}" for r, k in CASES])
def test_every_way_to_book_agrees(
    web: Clients, world: World, engine: Engine, role: str, kind: str
) -> None:
    user = world.user(role, kind)
    expected = booking_outcome(role, kind)
    got = {
        "engine": _engine_book(world, engine, user, kind),
        "api": _api_book(web, world, role, kind),
        "web": _web_book(web, world, role, kind),
    }
    assert got == dict.fromkeys(got, expected)


@pytest.mark.parametrize("role,kind", CASES, ids=[f"{r}-{k}" for r, k in CASES])
def test_venue_feeds_are_made_by_those_who_run_the_venue(
    world: World, engine: Engine, role: str, kind: str
) -> None:
    user = world.user(role, kind)
    session = Session(engine, expire_on_commit=False)
    try:
        actor = session.get(User, user.id) if user is not None else None
        try:
            feeds.create_token(session, actor, venue_id=world.venues[kind].id)
            got = "ok"
        except NotFound:
            got = "not_found"
        except NotAllowed:
            got = "not_allowed"
        want = (
            "not_allowed"
            if user is None
            else "ok"
            if runs(role)
            else ("not_allowed" if sees(role, kind) else "not_found")
        )
        assert got == want
    finally:
        session.rollback()
        session.close()


@pytest.mark.parametrize("username", sorted(MINE))
def test_my_bookings_are_one_list_on_the_web_and_the_api(
    web: Clients, world: World, username: str
) -> None:
    page = web.web[username].get("/bookings/").get_data(as_text=True)
    on_page = {int(x) for x in re.findall(r'data-booking-id="(\d+)"', page)}
    resp = web.anon.get(
        "/api/v1/bookings", headers={"Authorization": f"Bearer {web.tokens[username]}"}
    )
    assert resp.status_code == 200
    by_api = {b["id"] for b in resp.get_json()["bookings"]}
    assert on_page == by_api
    held = {name for name, booking_id in world.held.items() if booking_id in on_page}
    assert held == MINE[username]


def test_a_group_keeps_its_bookings_at_a_venue_no_longer_open_in_its_feed(
    world: World, engine: Engine
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        booker = session.scalars(select(User).where(User.username == "booker")).one()
        token, _secret = feeds.create_token(session, booker, group_id=world.groups["B"].id)
        ics = feeds.calendar_bytes(session, token, datetime.now(TZ)).decode()
        session.rollback()
    uids = set(re.findall(r"UID:booking-(\d+)@", ics))
    assert {world.held[n] for n in MINE["booker"]} <= {int(u) for u in uids}


def test_each_predicate_agrees_with_its_sql_condition(world: World, engine: Engine) -> None:
    """The policy's two forms of each rule — ``can_*`` on a loaded object, ``*_by`` as the
    condition of a query — pick the same objects, for every user of the world."""
    with Session(engine) as session:
        users: list[User | None] = [None, *session.scalars(select(User))]
        venues = list(session.scalars(select(Venue)))
        units = list(session.scalars(select(Unit)))
        groups = list(session.scalars(select(Group)))
        bookings = list(session.scalars(select(Booking)))
        tokens = list(session.scalars(select(ApiToken)))
        elsewhere = world.venues_x  # a venue nobody of committee C runs

        def ids(model: Any, cond: Any, *joins: Any) -> set[int]:
            stmt = select(model.id)
            for target, on in joins:
                stmt = stmt.join(target, on)
            return set(session.scalars(stmt.where(cond)))

        for user in users:
            p = policy
            pairs: list[tuple[str, list[Any], Any, set[int]]] = [
                ("see venue", venues, p.can_see_venue, ids(Venue, p.venues_seen_by(user))),
                ("run venue", venues, p.can_run_venue, ids(Venue, p.venues_run_by(user))),
                ("edit venue", venues, p.can_edit_venue, ids(Venue, p.venues_edited_by(user))),
                ("book venue", venues, p.can_book_venue, ids(Venue, p.venues_bookable_by(user))),
                ("see unit", units, p.can_see_unit, ids(Unit, p.units_seen_by(user))),
                ("manage unit", units, p.can_manage_unit, ids(Unit, p.units_managed_by(user))),
            ]
            if user is not None:
                pairs += [
                    (
                        "manage booking",
                        bookings,
                        policy.can_manage_booking,
                        ids(
                            Booking,
                            policy.bookings_managed_by(user),
                            (Venue, Venue.id == Booking.venue_id),
                            (Group, Group.id == Booking.group_id),
                        ),
                    ),
                    (
                        "act for group",
                        groups,
                        lambda u, g: policy.can_act_for_group(u, g, elsewhere),
                        ids(Group, policy.groups_acted_for_by(user)),
                    ),
                ]
            for what, objects, predicate, by_sql in pairs:
                by_predicate = {o.id for o in objects if predicate(user, o)}
                assert by_predicate == by_sql, (what, user and user.username)
        usable = ids(ApiToken, policy.tokens_usable(), (User, User.id == ApiToken.user_id))
        assert {t.id for t in tokens if policy.can_use_token(t)} == usable


def test_the_printed_map_shows_the_public_venues_whoever_prints_it(
    world: World, engine: Engine
) -> None:
    """Any logged-in user may print the committee's map: it holds what everyone sees."""
    with Session(engine) as session:
        printed = {v.name for v in load_map_venues(session, world.committee.id)}
    assert printed == {world.venues[k].name for k, e in VENUES.items() if e.seen_by == ALL}
