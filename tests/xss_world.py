"""The XSS world: every free-text attribute of every kind of object (``tests/xss_fields.py``'s
``FREE_TEXT``) holds every payload, written through the app's own operations (the functions the
routes and the API call), the venues through the import file over HTTP and the User-Agent through
real log-ins.

Each stored value is ``<code><n><payload>`` — a code naming the attribute, the payload's index —
so a page showing it can be told apart from one showing another attribute's payload. An attribute
of a single object (the committee's names, the plan's title) holds all payloads at once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.booking import feeds
from mapservice.db import writer
from mapservice.models import User, Venue
from mapservice.operations import activities, applications, pairings, phone_bookings, plans, signups
from mapservice.operations import settings as settings_ops
from mapservice.operations.accounts import update_contact
from mapservice.operations.groups import save_group
from mapservice.operations.tokens import create_token
from mapservice.operations.units import save_unit
from mapservice.operations.users import create_user
from mapservice.operations.venues import add_closure
from tests.conftest import PASSWORD, RUNZHOU_POINT, Factory
from tests.xss_fields import PAYLOADS

TZ = ZoneInfo("Asia/Shanghai")
USERNAMES = {"booker": "booker", "secretary": "sec", "admin": "admin"}
ALL = "|".join(PAYLOADS)  # every payload in one value (≤ 200 characters)


def value(code: str, i: int) -> str:
    """The text attribute ``code`` of the ``i``-th object holds: payload ``i``."""
    return f"{code}{i}{PAYLOADS[i]}"


def email(code: str, i: int) -> str:
    """An e-mail address holding payload ``i`` (an address needs an @ and no spaces)."""
    return f"{code}{i}@{PAYLOADS[i]}"


@dataclass
class World:
    app: Any = None
    clients: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    venue_ids: list[int] = field(default_factory=list)
    unit_ids: list[int] = field(default_factory=list)
    group_ids: list[int] = field(default_factory=list)
    activity_ids: list[int] = field(default_factory=list)
    feed_secret: str = ""


def _at(days: int, hour: int) -> datetime:
    day = (datetime.now(TZ) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


def build(session: Session, engine: Engine, areas: Any, app: Any) -> World:
    """The world in the database ``app`` serves, and a logged-in client per role."""
    world = World(app=app)
    make = Factory(session, areas)
    n = len(PAYLOADS)
    committee = make.committee("runzhou", name="润州区青工委")
    home = make.unit(committee, "主办单位")
    admin = make.admin(committee, username=USERNAMES["admin"])
    sec = make.secretary(home, username=USERNAMES["secretary"])
    now = datetime.now(UTC)

    units, groups = [], []
    for i in range(n):
        unit = save_unit(
            session, admin, name=value("un", i), kind="soe", secretary=value("us", i),
            name_en=value("ue", i),
        )  # fmt: skip
        unit.status = "active"
        session.flush()
        units.append(unit)
        groups.append(
            save_group(
                session,
                admin,
                name=value("gn", i),
                unit_id=unit.id,
                contact_name=value("gc", i),
                contact_email=email("ge", i),
            )  # fmt: skip
        )
    session.commit()
    world.unit_ids = [u.id for u in units]
    world.group_ids = [g.id for g in groups]
    booker = create_user(
        session, admin, committee, username=USERNAMES["booker"], password=PASSWORD,
        role="booker", groups=groups,
    )  # fmt: skip
    for i in range(n):
        user = create_user(
            session, admin, committee, username=value("uu", i), password=PASSWORD,
            role="booker", group=groups[i],
        )  # fmt: skip
        update_contact(session, user, display_name=value("ud", i), phone="", email=email("um", i))
        create_token(session, None, booker, ["read"], name=value("tn", i))
    for role, user in (("booker", booker), ("secretary", sec), ("admin", admin)):
        _token, world.tokens[role] = create_token(
            session, None, user, ["read", "book", "manage"], name=role
        )
    _feed, world.feed_secret = feeds.create_token(session, booker, group_id=groups[0].id)
    session.commit()

    # The committee's names and print title: one committee, so every payload at once.
    current = settings_ops.Settings.of(committee)
    settings_ops.save_settings(
        session,
        admin,
        settings_ops.Settings(
            name="cn" + ALL,
            name_en="ce" + ALL,
            timezone=current.timezone,
            print_title="cp" + ALL,
            defaults=current.defaults,
        ),  # fmt: skip
    )
    session.commit()

    # Clients: a log-in each; the booker logs in once more per payload, as that User-Agent.
    world.clients["anon"] = app.test_client()
    for role, username in USERNAMES.items():
        client = app.test_client()
        resp = client.post("/login", data={"username": username, "password": PASSWORD})
        assert resp.status_code == 302, (role, resp.status_code)
        world.clients[role] = client
    for i in range(n):
        resp = app.test_client().post(
            "/login",
            data={"username": USERNAMES["booker"], "password": PASSWORD},
            headers={"User-Agent": value("ua", i)},
        )
        assert resp.status_code == 302, resp.status_code

    # The venues: one import file (the import's columns), through the page, as the secretary.
    out = io.StringIO()
    columns = ["name", "unit", "type", "lon", "lat", "address", "facilities", "hours"]
    columns += ["min_notice_minutes", "requires_approval"]
    writer_ = csv.DictWriter(out, columns)
    writer_.writeheader()
    for i in range(n):
        writer_.writerow(
            {
                "name": value("vn", i), "unit": home.name, "type": "badminton",
                "lon": RUNZHOU_POINT[0] + 0.002 * i, "lat": RUNZHOU_POINT[1],
                "address": value("va", i), "facilities": value("vf", i),
                "hours": "Mon-Sun 07:00-22:00", "min_notice_minutes": 0,
                "requires_approval": "yes",
            }
        )  # fmt: skip
    resp = world.clients["secretary"].post(
        "/import/venues",
        data={"file": (io.BytesIO(out.getvalue().encode()), "venues.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
    session.rollback()
    venues = list(session.scalars(select(Venue).where(Venue.unit_id == home.id)))
    assert sorted(v.name for v in venues) == sorted(value("vn", i) for i in range(n))
    venues.sort(key=lambda v: v.name[:3])
    world.venue_ids = [v.id for v in venues]

    sec = session.get(User, sec.id)
    for i, venue in enumerate(venues):
        add_closure(session, sec, venue.id, _at(20, 0), _at(21, 0), value("cr", i), now=now)
    session.commit()

    with Session(writer(engine), expire_on_commit=False) as w:
        w_sec, w_booker = w.get(User, sec.id), w.get(User, booker.id)
        w_admin = w.get(User, admin.id)
        for i, vid in enumerate(world.venue_ids):
            gid = groups[i].id
            book = booking_engine.book
            kept = book(w, w_booker, vid, gid, _at(2, 9), _at(2, 10), purpose=value("bp", i))
            booking_engine.confirm(w, w_sec, kept.id)
            book(w, w_booker, vid, gid, _at(2, 10), _at(2, 11), purpose=value("bq", i))
            declined = book(w, w_booker, vid, gid, _at(3, 9), _at(3, 10))
            booking_engine.decline(w, w_sec, declined.id, value("bd", i))
            cancelled = book(w, w_booker, vid, gid, _at(3, 11), _at(3, 12))
            booking_engine.cancel(w, w_booker, cancelled.id, reason=value("bc", i))
            phone_bookings.book_for_caller(
                w, w_sec,
                phone_bookings.PhoneRequest(
                    vid, _at(4, 9), _at(4, 10), caller_name=value("bn", i),
                    caller_phone="0511 8888", purpose=value("bf", i),
                ),
                now=now,
            )  # fmt: skip
            w.commit()
            open_ = activities.create_activity(
                w, w_sec, title=value("at", i), kind="sports", start=_at(6, 9 + i),
                end=_at(6, 10 + i), capacity=20, description=value("ad", i),
                site_lon=RUNZHOU_POINT[0] + 0.003 * i, site_lat=RUNZHOU_POINT[1] + 0.01,
                site_name=value("as", i), site_street=value("aw", i),
            )  # fmt: skip
            signups.sign_up(w, w_booker, open_.id, 1, group_id=gid, note=value("sn", i))
            gone = activities.create_activity(
                w, w_admin, title=value("ax", i), kind="volunteer", start=_at(7, 9 + i),
                end=_at(7, 10 + i), capacity=5, site_lon=RUNZHOU_POINT[0],
                site_lat=RUNZHOU_POINT[1], lead_unit_id=units[i].id,
            )  # fmt: skip
            activities.cancel_activity(w, w_admin, gone.id, value("ac", i))
            w.commit()
            world.activity_ids += [open_.id, gone.id]

    # Organisations applying: one pending, one declined (its reason kept) per payload.
    for i in range(n):
        for status in ("pending", "declined"):
            application = applications.submit_application(
                session, committee, name=value("on" if status == "pending" else "oo", i),
                kind="school", address=value("oa", i), lon="119.4253", lat="32.1975",
                crs="wgs84", contact_name=value("oc", i), phone="0511-8888 0003",
                email=email("oe", i), venues_plan=value("op", i),
                client_address=f"192.0.2.{2 * i + (status == 'declined') + 1}", now=now,
            )  # fmt: skip
            if status == "declined":
                applications.decline(session, admin, application.id, reason=value("or", i), now=now)
    session.commit()

    # The year's activity list (one plan: its title holds every payload), its turns' titles
    # and notes one payload each; pairings between the units, a note each.
    plan = plans.create_plan(session, admin, year=datetime.now(TZ).year + 1, title="pt" + ALL)
    session.flush()
    for i, entry in enumerate(plan.entries[:n]):
        plans.update_entry(
            session, admin, plan.id, entry.id, period=entry.period, unit_id=entry.unit_id,
            kind=entry.kind, title=value("et", i), note=value("en", i),
        )  # fmt: skip
    for i in range(n):
        pairings.create_pairing(
            session, admin, unit_id=units[i].id, partner_unit_id=units[(i + 1) % n].id,
            start_on=date(2026, 1, 1), note=value("pn", i),
        )  # fmt: skip
    session.commit()
    return world
