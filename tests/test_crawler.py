"""The crawler (issue 16): on a world holding every kind of object — single, series, pending,
declined, expired, cancelled, checked-in, no-show and proxy bookings; a closure over a booking;
an active, a suspended and an applied unit; retired and unpublished venues; a venue of another
committee; calendar feeds and notices — every page reachable from the menus, and every link on
those pages, is visited as each role (anonymous, booker, unit secretary, committee admin, another
committee's admin), in Chinese and in English, through real HTTP.

Every page must answer without a server error, every link a page shows must lead somewhere
(no 404 behind a link), a Chinese page must show no English words outside the data (names,
addresses, user names the world put there), an English page no Chinese outside the data, and
no page may show a message id, a template placeholder or a format string left unfilled.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.booking import feeds
from mapservice.db import writer
from mapservice.models import Closure, Committee, Group, Unit, User, Venue
from mapservice.models.committees import Area
from mapservice.operations import activities, applications, pairings, plans, signups
from mapservice.operations.accounts import issue_link
from tests.conftest import PASSWORD, Factory, empty_database

TZ = ZoneInfo("Asia/Shanghai")
ROLES = ("anon", "booker", "secretary", "admin", "other_admin")
USERNAMES = {
    "booker": "qingnian",
    "secretary": "shuji",
    "admin": "guanliyuan",
    "other_admin": "waihui",
}
LANGS = ("zh_CN", "en")
#: Words a Chinese page may show in Latin letters: names of formats, standards and products,
#: and units of measure, which Chinese software writes the same way.
LATIN_ALLOWED = {
    "api", "csv", "xlsx", "xls", "geojson", "json", "pdf", "png", "svg", "ics", "icalendar",
    "url", "id", "wgs", "gcj", "bd", "osm", "openstreetmap", "amap", "tianditu", "leaflet",
    "km", "bearer", "authorization", "token", "http", "https", "a3", "a4", "utf", "excel",
    "wps", "mapservice", "get", "post", "patch", "v1", "tel", "min", "ok", "iframe", "openapi",
    "gps", "gbk", "utc", "delete",
}  # fmt: skip
#: Paths the crawler does not follow: static files (no text of ours), logging out (it would end
#: the session mid-crawl; it is a POST anyway).
SKIP_PREFIXES = ("/static/", "/vendor/", "/logout")
#: Of one path with the same query keys, at most this many variants (sort orders, pages…);
#: of a file (a chart, an export, the printed map), one: its options are tested where it is made.
VARIANTS_PER_SHAPE = 3
FILE = re.compile(r"\.(pdf|png|svg|xlsx|csv|geojson|json|ics|zip)$")
PLACEHOLDER_LEFT = re.compile(r"%\(\w+\)[sd]|\{\{|\}\}|\{%|%\}|\b_l?\(")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z]+)*")
CJK = re.compile(r"[\u3400-\u9fff]+")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """Names of everything the world holds (the data a page may show in any language)."""

    data: set[str] = field(default_factory=set)
    venue_ids: list[int] = field(default_factory=list)
    feed_secret: str = ""
    link_secret: str = ""

    def note(self, *texts: str | None) -> None:
        self.data.update(t for t in texts if t)


def _at(days: int, hour: int) -> datetime:
    day = (datetime.now(TZ) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


def build_world(session: Session, engine: Engine, areas: Any) -> World:
    make = Factory(session, areas)
    world = World()
    committee = make.committee("runzhou", name="润州区青工委")
    other = make.committee("qiqihar", with_streets=False, name="建华区青工委")
    unit_a = make.unit(committee, "甲单位")
    unit_b = make.unit(committee, "乙单位")
    suspended = make.unit(committee, "停用单位")
    applied = make.unit(committee, "申请单位")
    unit_x = make.unit(other, "外会单位")
    group_a = make.group(committee, unit_a, "甲团支部")
    group_b = make.group(committee, unit_b, "乙团支部")
    lone = make.group(committee, None, "青年志愿者协会")
    group_x = make.group(other, unit_x, "外会团支部")
    users = {
        "booker": make.booker(group_a, username=USERNAMES["booker"], display_name="小青"),
        "secretary": make.secretary(unit_a, username=USERNAMES["secretary"], display_name="书记"),
        "admin": make.admin(committee, username=USERNAMES["admin"], display_name="管理员"),
        "other_admin": make.admin(other, username=USERNAMES["other_admin"], display_name="外会"),
        "booker_b": make.booker(group_b, username="yituan", display_name="小乙"),
        "booker_x": make.booker(group_x, username="waituan", display_name="小外"),
    }
    always = {"hours": "Mon-Sun 07:00-22:00", "min_notice_minutes": 0, "capacity_units": 3}
    v_a = make.venue(
        unit_a, name="甲羽毛球馆", address="润州区和平路1号", phone="0511-1234567",
        bookable_by="public", **always,
    )  # fmt: skip
    v_approval = make.venue(
        unit_a, name="甲会议室", type="meeting_room", requires_approval=True, **always
    )
    v_b = make.venue(unit_b, name="乙健身房", type="gym", **always)
    v_suspended = make.venue(suspended, name="停用单位活动室", type="meeting_room", **always)
    v_applied = make.venue(applied, name="申请单位阅览室", type="reading_room", **always)
    v_retired = make.venue(unit_a, name="甲旧球场", **always)
    v_hidden = make.venue(unit_a, name="甲未发布场地", published=False, **always)
    v_x = make.venue(unit_x, name="外会青年之家", type="youth_home", **always)
    world.venue_ids = [
        v.id for v in (v_a, v_approval, v_b, v_suspended, v_applied, v_retired, v_hidden, v_x)
    ]

    with Session(writer(engine), expire_on_commit=False) as w:

        def actor(role: str) -> User:
            user = w.get(User, users[role].id)
            assert user is not None
            return user

        book = booking_engine.book
        # a single booking of A's group at B's venue, and a weekly series there
        book(w, actor("booker"), v_b.id, group_a.id, _at(2, 9), _at(2, 10), purpose="训练")
        booking_engine.book_series(
            w, actor("booker"), v_b.id, group_a.id, _at(3, 19), _at(3, 21), freq="weekly", count=3
        )
        # B's group asks for A's meeting room: one stays pending, one is declined
        pending = book(w, actor("booker_b"), v_approval.id, group_b.id, _at(4, 14), _at(4, 16))
        declined = book(w, actor("booker_b"), v_approval.id, group_b.id, _at(5, 14), _at(5, 16))
        booking_engine.decline(w, actor("secretary"), declined.id, "当天另有安排")
        # a request whose hold ran out
        expiring = book(w, actor("booker_b"), v_approval.id, group_b.id, _at(6, 9), _at(6, 10))
        expiring.hold_expires_at = datetime.now(UTC) - timedelta(minutes=1)
        w.flush()
        booking_engine.expire_holds(w, venue_id=v_approval.id)
        # a cancelled one, a proxy booking the secretary took by phone for the lone group
        cancelled = book(w, actor("booker"), v_b.id, group_a.id, _at(7, 9), _at(7, 10))
        booking_engine.cancel(w, actor("booker"), cancelled.id, reason="改期")
        book(w, actor("secretary"), v_a.id, lone.id, _at(3, 8), _at(3, 9), purpose="电话预约")
        # past bookings: one checked in, one no-show
        then = datetime.now(UTC) - timedelta(days=3)
        done = book(w, actor("booker_b"), v_a.id, group_b.id, _at(-2, 9), _at(-2, 10), now=then)
        missed = book(w, actor("booker_b"), v_a.id, group_b.id, _at(-2, 11), _at(-2, 12), now=then)
        booking_engine.check_in(w, actor("secretary"), done.id)
        booking_engine.check_in(w, actor("secretary"), missed.id, no_show=True)
        # bookings at the venues that stop being open below, and at the other committee's
        book(w, actor("booker_b"), v_suspended.id, group_b.id, _at(8, 9), _at(8, 10))
        book(w, actor("booker_b"), v_retired.id, group_b.id, _at(9, 9), _at(9, 10))
        book(w, actor("booker_x"), v_x.id, group_x.id, _at(2, 10), _at(2, 11))
        # a booking the closure below will lie over
        over = book(w, actor("booker"), v_a.id, group_a.id, _at(10, 10), _at(10, 11))
        # activities: a tournament at A's court with confirmed and waitlisted sign-ups, a tree
        # planting on a drawn plot, a cancelled reading club
        match = activities.create_activity(
            w, actor("secretary"), title="羽毛球友谊赛", kind="sports", start=_at(11, 14),
            end=_at(11, 16), capacity=5, venue_id=v_a.id, description="三人一队",
        )  # fmt: skip
        signups.sign_up(w, actor("booker"), match.id, 3, note="举手")
        signups.sign_up(w, actor("booker_b"), match.id, 2)
        signups.sign_up(w, actor("secretary"), match.id, 4)
        plot = {"type": "Polygon", "coordinates": [[[119.45, 32.19], [119.46, 32.19],
                [119.46, 32.2], [119.45, 32.19]]]}  # fmt: skip
        activities.create_activity(
            w, actor("admin"), title="青年公益林植树", kind="volunteer", start=_at(12, 9),
            end=_at(12, 12), capacity=100, lead_unit_id=unit_b.id, site_area=plot,
            site_name="朝阳社区公益林", site_street="南山街道",
        )  # fmt: skip
        club = activities.create_activity(
            w, actor("secretary"), title="青年读书会", kind="reading_club", start=_at(13, 19),
            end=_at(13, 21), capacity=20, site_lon=119.43, site_lat=32.2, site_name="社区书屋",
        )  # fmt: skip
        activities.cancel_activity(w, actor("secretary"), club.id, "场地调整")
        w.commit()
        assert pending.status == "pending"
    session.add(Closure(venue_id=v_a.id, start_at=over.start_at, end_at=over.end_at, reason="检修"))
    session.add(Closure(venue_id=v_b.id, start_at=_at(20, 0), end_at=_at(21, 0), reason="比赛"))
    for unit, status in ((suspended, "suspended"), (applied, "applied")):
        unit.status = status
    venue = session.get(Venue, v_retired.id)
    assert venue is not None
    venue.retired = True
    _token, world.feed_secret = feeds.create_token(session, users["booker"], group_id=group_a.id)
    # A suspended group with a contact, and a new booker of it whose set-password link is open
    # (the crawl visits the link's page; only posting it would spend it).
    team = make.group(committee, unit_a, "甲青年突击队")
    team.contact_name, team.contact_phone, team.active = "突击队长", "0511-8888", False
    newcomer = make.booker(team, username="xinren", display_name="新人")
    world.link_secret = issue_link(session, None, newcomer, datetime.now(UTC))
    # Organisations' applications to join: one pending, one declined (its reason shown).
    for name, reason in (("润州实验学校", ""), ("某某律师事务所", "不在本区")):
        application = applications.submit_application(
            session, committee, name=name, kind="school", address="润州区学府路3号",
            lon="119.4253", lat="32.1975", crs="wgs84", contact_name="赵老师",
            phone="0511-8888 0003", email="zhao@example.com", venues_plan="报告厅一间",
            client_address="192.0.2.7", now=datetime.now(UTC),
        )  # fmt: skip
        world.note(name, application.address, application.contact_name, application.phone)
        world.note(application.email, application.venues_plan, reason)
        if reason:
            applications.decline(
                session, users["admin"], application.id, reason=reason, now=datetime.now(UTC)
            )
    # The year's activity list (drafted from the admitted units) and pairings (issue 20).
    plan = plans.create_plan(session, users["admin"], year=datetime.now(TZ).year)
    plans.mark_led(session, users["admin"], plan.id, plan.entries[0].id, date.today())
    world.note(plan.title)
    street = session.scalars(
        select(Area).where(Area.committee_id == committee.id, Area.level == "street")
    ).first()
    assert street is not None
    for partner in ({"partner_unit_id": unit_b.id}, {"partner_area_id": street.id}):
        pairings.create_pairing(
            session, users["admin"], unit_id=unit_a.id, start_on=date(2023, 2, 21), **partner
        )
    session.commit()

    for model in (Committee, Unit, Group, Venue):
        for obj in session.scalars(select(model)):
            world.note(obj.name, getattr(obj, "address", None), getattr(obj, "phone", None))
            world.note(getattr(obj, "contact_name", None), getattr(obj, "contact_phone", None))
    for user in session.scalars(select(User)):
        world.note(user.username, user.display_name)
    for area in session.scalars(select(Area)):
        world.note(area.name)
    world.note("训练", "当天另有安排", "改期", "电话预约", "检修", "比赛")
    world.note("羽毛球友谊赛", "三人一队", "举手", "青年公益林植树", "朝阳社区公益林", "南山街道")
    world.note("青年读书会", "社区书屋", "场地调整")
    return world


@pytest.fixture(scope="module")
def world(engine: Engine, runzhou_areas: Any) -> Iterator[World]:
    session = Session(engine, expire_on_commit=False)
    try:
        yield build_world(session, engine, runzhou_areas)
    finally:
        session.rollback()
        session.close()
        empty_database(engine)


@pytest.fixture(scope="module")
def web_app(world: World, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mapservice import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "crawler-secret",
            "TESTING": True,
            "INSTANCE_PATH": tmp_path_factory.mktemp("crawler"),
            "WTF_CSRF_ENABLED": False,
        }
    )
    yield app
    app.extensions["db_engine"].dispose()


# ---------------------------------------------------------------- reading pages


class PageText(HTMLParser):
    """The text a person reads on a page in its language: text nodes and the attributes shown
    to people (titles, placeholders, labels, button values), outside scripts and styles, code
    (names a program reads: parameters, JSON, an embed snippet) and elements that declare a
    language of their own (the language switch); and the page's links."""

    SHOWN_ATTRS = ("title", "placeholder", "aria-label", "alt")
    SKIPPED = ("script", "style", "template", "code", "pre", "kbd", "samp", "textarea")
    VOID = ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.links: list[str] = []
        self._skip = 0
        self._open: list[tuple[str, bool]] = []  # open elements: does each start a skipped part?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag in self.VOID:
            if self._skip:
                return
        else:
            skipped = tag in self.SKIPPED or (tag != "html" and "lang" in a)
            self._open.append((tag, skipped))
            self._skip += skipped
        if self._skip:
            return
        for name in self.SHOWN_ATTRS:
            if a.get(name):
                self.texts.append(str(a[name]))
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.texts.append(str(a["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or all(name != tag for name, _ in self._open):
            return
        while self._open:  # elements left open inside it (<li>, <p>) end with it
            name, skipped = self._open.pop()
            self._skip -= skipped
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data)


def without_data(text: str, data: list[str]) -> str:
    for item in data:  # longest first: a name inside a longer name goes with it
        text = text.replace(item, " ")
    return text


def language_problems(texts: list[str], lang: str, data: list[str]) -> list[str]:
    problems = []
    for raw in texts:
        text = without_data(raw, data)
        if PLACEHOLDER_LEFT.search(text):
            problems.append(f"unfilled placeholder: {raw.strip()[:120]!r}")
        if lang == "zh_CN":
            words = [w for w in LATIN_WORD.findall(text) if w.lower() not in LATIN_ALLOWED]
            words = [w for w in words if len(w) > 1 and not re.fullmatch(r"[A-Z]?\d+\w*", w)]
            if words:
                problems.append(f"English {words} in {raw.strip()[:120]!r}")
        elif CJK.search(text):
            problems.append(f"Chinese {CJK.findall(text)} in {raw.strip()[:120]!r}")
    return problems


# ---------------------------------------------------------------- crawling


@dataclass
class Visit:
    url: str
    status: int
    referrer: str
    problems: list[str]
    seconds: float = 0.0
    #: a refused link its page no longer offers when fetched again: it carried the time of day
    #: (e.g. the phone page's "next whole hour") and the clock crossed the hour mid-crawl.
    stale: bool = False
    #: False for a file this crawl found but left to another crawl (:class:`FileLedger`);
    #: status 0, never counted as reached.
    fetched: bool = True


class FileLedger:
    """Which crawl fetches which file (a chart, an export, a PDF: seconds each, most of the
    crawl's time) when every role is crawled in both languages, Chinese first for all roles,
    then English: in Chinese, the first role to meet a file fetches it, the others leave it;
    in English, a role fetches each file it has not fetched yet (so every role still fetches
    every file it is offered: its scope's queries), and the first role's file again when no
    other role will (so every file is still drawn in both languages: its labels). A file met
    by k roles is drawn k times instead of 2k. Checked by
    :func:`test_files_are_fetched_by_every_role_and_in_both_languages`."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}  # file path: the role that fetched it in Chinese
        self.left: set[str] = set()  # file paths some role left in Chinese

    def fetch(self, role: str, lang: str, path: str) -> bool:
        if lang == LANGS[0]:
            first = self.first.setdefault(path, role)
            if first != role:
                self.left.add(path)
            return first == role  # (its other variants: at most one a crawl, as before)
        return self.first.get(path) != role or path not in self.left


def _keep(href: str, base: str) -> str | None:
    """The link as a local path + query to visit, or None for what the crawler leaves."""
    if href.startswith(("mailto:", "tel:", "javascript:", "#", "data:")):
        return None
    parts = urlsplit(urljoin(base, href))
    if parts.netloc not in ("", "localhost") or parts.path.startswith(SKIP_PREFIXES):
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    if len(query) != len(parse_qsl(parts.query, keep_blank_values=True)):
        return None  # the language switch: crawled as the other language's run
    return parts.path + (f"?{urlencode(sorted(query))}" if query else "")


def crawl(
    app: Any, role: str, lang: str, world: World, files: FileLedger | None = None
) -> list[Visit]:
    """Every page reachable from the seeds as ``role`` in ``lang``; with ``files`` (every
    role is crawled in both languages), the files that ledger gives this crawl."""
    client = app.test_client()
    client.set_cookie("lang", lang)
    if role != "anon":
        resp = client.post("/login", data={"username": USERNAMES[role], "password": PASSWORD})
        assert resp.status_code == 302, f"{role} could not log in"
    data = sorted(world.data, key=len, reverse=True)
    seeds = ["/", "/map", "/venues/", "/login", "/api/v1/docs", f"/feeds/{world.feed_secret}.ics"]
    seeds.append(f"/password/{world.link_secret}")
    seeds += [f"/venues/{vid}" for vid in world.venue_ids]
    seeds += [f"/map/venues/{vid}/popup" for vid in world.venue_ids]
    # A dashboard table's own page (linked from the dashboard when a table is longer than
    # the dashboard shows: the world's are not), sorted and not.
    seeds += ["/dashboard/table/grouped", "/dashboard/table/heatmap?desc=1&sort=h18"]
    queue: list[tuple[str, str]] = [(s, "(start)") for s in seeds]
    seen: set[str] = set()
    shapes: dict[tuple[str, tuple[str, ...]], int] = {}
    visits: list[Visit] = []
    while queue:
        url, referrer = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        parts = urlsplit(url)
        is_file = bool(FILE.search(parts.path))
        if is_file and files is not None and not files.fetch(role, lang, parts.path):
            visits.append(Visit(url, 0, referrer, [], fetched=False))
            continue
        keys = () if is_file else tuple(sorted(k for k, _ in parse_qsl(parts.query)))
        shape = (parts.path, keys)
        shapes[shape] = shapes.get(shape, 0) + 1
        if shapes[shape] > (1 if is_file else VARIANTS_PER_SHAPE):
            continue
        began = time.perf_counter()
        resp = client.get(url)
        took = time.perf_counter() - began
        problems: list[str] = []
        if resp.status_code >= 500:
            problems.append(resp.get_data(as_text=True)[:300])
        if resp.status_code in (301, 302, 303) and resp.location:
            target = _keep(resp.location, url)
            if target:
                queue.append((target, url))
        elif resp.mimetype == "text/html" and resp.status_code < 500:
            page = PageText()
            page.feed(resp.get_data(as_text=True))
            problems += language_problems(page.texts, lang, data)
            for href in page.links:
                target = _keep(href, url)
                if target and target not in seen:
                    queue.append((target, url))
        stale = (
            resp.status_code in BROKEN
            and referrer != "(start)"
            and not _still_offered(client, referrer, url)
        )
        visits.append(Visit(url, resp.status_code, referrer, problems, took, stale))
    return visits


BROKEN = (404, 405, 400, 422)


def _still_offered(client: Any, referrer: str, url: str) -> bool:
    """Whether the page ``referrer``, fetched again now, still links to ``url``."""
    page = PageText()
    page.feed(client.get(referrer).get_data(as_text=True))
    return any(_keep(href, referrer) == url for href in page.links)


#: On PostgreSQL each role is crawled in one language, both languages among them: what a page
#: says in a language does not depend on the database (the SQLite run checks every role in
#: both), while a query only PostgreSQL refuses fails in any language.
ONE_LANGUAGE_EACH = [
    ("anon", "en"),
    ("booker", "zh_CN"),
    ("secretary", "zh_CN"),
    ("admin", "en"),
    ("other_admin", "zh_CN"),
]


def cases(config: pytest.Config) -> list[tuple[str, str]]:
    if config.getoption("--db") == "postgresql" and not os.environ.get("MAPSERVICE_TEST_ALL"):
        return ONE_LANGUAGE_EACH
    return [(role, lang) for lang in LANGS for role in ROLES]  # Chinese first: FileLedger


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"role", "lang"} <= set(metafunc.fixturenames):
        metafunc.parametrize(("role", "lang"), cases(metafunc.config))


class Crawls(Mapping[tuple[str, str], list[Visit]]):
    """The crawls of a run, each made when a test first asks for it (its time counted in that
    test, within its timeout: the ten crawls in one fixture took over pytest's 600 s on a
    loaded machine), in the order of :func:`cases`, which the tests follow."""

    def __init__(self, app: Any, world: World, crawled: list[tuple[str, str]]) -> None:
        self.app, self.world, self.crawled = app, world, crawled
        self.files = FileLedger() if len(crawled) == len(ROLES) * len(LANGS) else None
        self.done: dict[tuple[str, str], list[Visit]] = {}

    def __getitem__(self, case: tuple[str, str]) -> list[Visit]:
        if case not in self.crawled:
            raise KeyError(case)
        if case not in self.done:
            role, lang = case
            self.done[case] = crawl(self.app, role, lang, self.world, self.files)
        return self.done[case]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.crawled)

    def __len__(self) -> int:
        return len(self.crawled)


@pytest.fixture(scope="module")
def crawls(web_app: Any, world: World, request: pytest.FixtureRequest) -> Crawls:
    return Crawls(web_app, world, cases(request.config))


def test_no_page_fails(crawls: Crawls, role: str, lang: str) -> None:
    visits = crawls[(role, lang)]
    assert len(visits) > 15, [v.url for v in visits]
    errors = [f"{v.status} {v.url} (from {v.referrer})" for v in visits if v.status >= 500]
    assert not errors, "server errors:\n" + "\n".join(errors)


def test_no_link_leads_nowhere(crawls: Crawls, role: str, lang: str) -> None:
    broken = [
        f"{v.status} {v.url} (from {v.referrer})"
        for v in crawls[(role, lang)]
        if v.status in BROKEN and v.referrer != "(start)" and not v.stale
    ]
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_every_page_speaks_its_language(crawls: Crawls, role: str, lang: str) -> None:
    problems = [f"{v.url}: {p}" for v in crawls[(role, lang)] for p in v.problems]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:80])


def test_the_crawl_reaches_every_kind_of_page(crawls: Crawls) -> None:
    """The crawl itself can fail: a world or a menu that leaves pages out would make the
    checks above pass by seeing less."""
    reached = {urlsplit(v.url).path for visits in crawls.values() for v in visits if v.fetched}
    for path in ("/map", "/venues/", "/bookings/", "/bookings/requests", "/dashboard",
                 "/units/", "/venues/new", "/import/venues", "/notifications", "/feeds/",
                 "/account/tokens", "/account/", "/groups/", "/groups/new", "/users/",
                 "/users/new", "/password/", "/audit", "/settings", "/apply",
                 "/units/applications", "/plans/", "/plans/preferences",
                 "/pairings/", "/activities/"):  # fmt: skip
        assert any(p.rstrip("/") == path.rstrip("/") or p.startswith(path) for p in reached), path
    secretary = {urlsplit(v.url).path for v in crawls[("secretary", "zh_CN")] if v.fetched}
    assert any(re.fullmatch(r"/bookings/\d+/reschedule", p) for p in secretary)
    assert any(re.fullmatch(r"/groups/\d+/edit", p) for p in secretary)
    assert any(re.fullmatch(r"/activities/\d+/edit", p) for p in secretary)
    anonymous = {urlsplit(v.url).path for v in crawls[("anon", "en")] if v.fetched}
    admin = {urlsplit(v.url).path for v in crawls[("admin", "en")] if v.fetched}
    assert "/apply" in anonymous and "/units/applications" in admin
    assert "/dashboard/table/grouped" in admin and "/dashboard/table/heatmap" in admin
    assert any(re.fullmatch(r"/plans/\d+", p) for p in secretary)
    assert any(re.fullmatch(r"/plans/\d+/plan\.(xlsx|pdf)", p) for p in admin)
    # The phone booking screen (issue 19 item 6), from the menu, as a secretary and the admin.
    assert "/bookings/phone" in secretary and "/bookings/phone" in admin


def test_files_are_fetched_by_every_role_and_in_both_languages(
    crawls: Crawls,
) -> None:
    """What :class:`FileLedger` promises: a file a crawl left out was fetched by the same
    role in the other language, and every file fetched at all was fetched in both languages."""
    fetched = {
        case: {p for v in visits if v.fetched and FILE.search(p := urlsplit(v.url).path)}
        for case, visits in crawls.items()
    }
    for (role, lang), visits in crawls.items():
        other = LANGS[1 - LANGS.index(lang)]
        for v in visits:
            if not v.fetched:
                assert urlsplit(v.url).path in fetched[(role, other)], (role, lang, v.url)
    langs_of: dict[str, set[str]] = {}
    for (_role, lang), paths in fetched.items():
        for path in paths:
            langs_of.setdefault(path, set()).add(lang)
    if any(not v.fetched for visits in crawls.values() for v in visits):
        # (a run that crawls each role in one language only fetches every file it meets)
        one_language = sorted(path for path, langs in langs_of.items() if len(langs) < 2)
        assert not one_language, f"files drawn in one language only: {one_language}"
