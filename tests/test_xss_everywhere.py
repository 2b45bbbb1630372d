"""Stored XSS, everywhere: every payload in every user-editable text field is shown as text.

1. The fields are found from the code (``tests/xss_fields.py``: the forms, the routes' raw form
   reads, the API's request schemas, the import columns); each text field is free text (stored
   and shown), not free text (with the reason) or never shown (with the reason) — a new field in
   none of them fails here.
2. The world (``tests/xss_world.py``) holds every payload in every free-text attribute, written
   through the app's operations, the import page and real log-ins.
3. Every page reachable as each of anonymous, a booker, a unit secretary and the committee admin
   is fetched over HTTP: no payload appears unescaped in HTML or SVG, no link or form leads to
   ``javascript:``, no template evaluated one, every file is served as what it is with
   ``nosniff``; and every stored value is shown somewhere. Then headless Chromium, with the
   Content-Security-Policy removed (escaping alone must hold), loads one page of each kind the
   crawl found (every venue's and activity's page, every popup on the map): no payload runs.
4. Negative control: the same check over an app made with ``faults.NO_ESCAPE`` sees payloads run.

SQLite only: escaping is the templates' and serialisers' work on the text as stored, and both
databases store text as given (the same operations write it; nothing here reads it differently),
so a second run on PostgreSQL would repeat the same checks at twice the cost.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice import models
from tests import xss_fields
from tests.browser import chromium, live_server
from tests.conftest import PASSWORD, wiped_session
from tests.xss_fields import EVALUATED, FREE_TEXT, NEVER_SHOWN, NOT_FREE_TEXT, PAYLOADS
from tests.xss_world import USERNAMES, World, build

ROLES = ("admin", "secretary", "booker", "anon")  # files are fetched by the first that reaches them
#: Payloads that are markup: never in an HTML or SVG answer as they were typed.
MARKUP = [p for p in PAYLOADS if "<" in p]
#: The payloads that run in a text context when nothing escapes them (the negative control).
RUN_UNESCAPED = {1, 2, 4, 7}
TRAP = (
    "window.xss = function (n) {"
    " var t = window.top; (t.__xss = t.__xss || []).push([n, location.pathname]); };"
)
SKIP_PREFIXES = ("/static/", "/vendor/", "/tiles/", "/logout", "/map/one-map.js")
#: Charts drawn from numbers and the service's own words only (days, hours, venue types,
#: streets from the geodata): no user text to escape, and a second each to draw. The charts
#: that name venues, units or activities' streets are fetched.
NO_USER_TEXT = re.compile(
    r"/chart/(trend|heatmap|by_type|sharing|map_density|map_utilization|map_coverage"
    r"|fulfilment|participants|fill_rate)\.(svg|png)$"
)
BINARY = re.compile(r"\.(pdf|png|xlsx|zip)$")
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)


@pytest.fixture(scope="module")
def world(
    db_kind: str,
    engine: Engine,
    runzhou_areas: Any,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    if db_kind != "sqlite":
        pytest.skip("SQLite only: escaping does not depend on the database (module docstring)")
    from mapservice import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "xss-secret",
            "TESTING": True,
            "INSTANCE_PATH": tmp_path_factory.mktemp("xss"),
            "WTF_CSRF_ENABLED": False,
        }
    )
    try:
        with wiped_session(engine) as session:
            yield build(session, engine, runzhou_areas, app)
    finally:
        app.extensions["db_engine"].dispose()


# ---------------------------------------------------------------- 1. the fields


def test_every_text_field_is_classified() -> None:
    found = xss_fields.all_sources()
    text = {k for k, is_text in found.items() if is_text}
    lists = {"FREE_TEXT": FREE_TEXT, "NOT_FREE_TEXT": NOT_FREE_TEXT, "NEVER_SHOWN": NEVER_SHOWN}
    unlisted = sorted(k for k in text if not any(k in listed for listed in lists.values()))
    assert not unlisted, (
        "text fields in none of FREE_TEXT, NOT_FREE_TEXT, NEVER_SHOWN (tests/xss_fields.py):"
        f" {unlisted}"
    )
    for name, listed in lists.items():
        stale = sorted(k for k in listed if k not in found)
        assert not stale, f"{name} names fields that no longer exist: {stale}"
        typed = sorted(k for k in listed if k in found and not found[k])
        assert not typed, f"{name} names fields that are not text: {typed}"
    twice = sorted(set(FREE_TEXT) & set(NOT_FREE_TEXT) | set(FREE_TEXT) & set(NEVER_SHOWN))
    assert not twice, twice
    assert all(NOT_FREE_TEXT.values()) and all(NEVER_SHOWN.values())
    # The discovery itself can fail: each kind of source is found.
    kinds = {k.split(":", 1)[0] for k in text}
    assert kinds == {"form", "raw", "api", "import", "header"}, kinds
    assert "form:VenueForm.name" in text and "form:VenueForm.capacity_units" in found
    assert not found["form:VenueForm.capacity_units"]


def coverage_summary() -> str:
    """What the module covers, in the words ``docs/reliability.md`` states it (its XSS row)."""
    found = xss_fields.all_sources()
    text = [k for k, is_text in found.items() if is_text]
    pages = sum(len(p) for p in BROWSER_PAGES.values())
    return (
        f"{len(text)} text fields found among {len(found)} fields: {len(FREE_TEXT)} free text"
        f" (stored in {len(_targets())} attributes), {len(NOT_FREE_TEXT)} not free text and"
        f" {len(NEVER_SHOWN)} never shown, each with its reason; {len(PAYLOADS)} payloads in each"
        f" of the {len(_targets())} attributes; every page (one of each shape, each object's"
        f" own) crawled over HTTP as anonymous, booker, secretary and admin, every stored value"
        f" seen shown; {pages} pages in Chromium and every venue's popup on the map: 0 ran"
    )


def test_the_reliability_doc_states_what_is_covered() -> None:
    """The counts in ``docs/reliability.md`` are this module's, computed, not typed."""
    doc = (xss_fields.ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    summary = coverage_summary()
    assert summary in doc, f"docs/reliability.md's XSS row should say: {summary}"


def _targets() -> dict[str, list[str]]:
    """``Model.attribute`` → the free-text sources stored in it."""
    out: dict[str, list[str]] = {}
    for source, target in FREE_TEXT.items():
        out.setdefault(target, []).append(source)
    return out


def _stored(session: Session, target: str) -> list[str]:
    model, attr = target.split(".")
    column = getattr(getattr(models, model), attr)
    return [v for v in session.scalars(select(column)) if v]


# ---------------------------------------------------------------- 2. the world


def test_the_world_holds_every_payload_in_every_free_text_attribute(
    world: World, engine: Engine
) -> None:
    with Session(engine) as session:
        missing = [
            (target, i)
            for target in _targets()
            for i, payload in enumerate(PAYLOADS)
            if not any(payload in v for v in _stored(session, target))
        ]
    assert not missing, missing


# ---------------------------------------------------------------- 3. HTTP


@dataclass
class Visit:
    url: str
    status: int
    mimetype: str
    problems: list[str]


@dataclass
class Crawl:
    visits: list[Visit] = field(default_factory=list)
    #: everything shown, unescaped (HTML entities, JSON, iCalendar escapes undone)
    shown: list[str] = field(default_factory=list)


def _keep(href: str, base: str) -> str | None:
    if href.startswith(("mailto:", "tel:", "javascript:", "#", "data:")):
        return None
    parts = urlsplit(urljoin(base, href))
    if parts.netloc not in ("", "localhost") or parts.path.startswith(SKIP_PREFIXES):
        return None
    if BINARY.search(parts.path) or NO_USER_TEXT.search(parts.path):
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    return parts.path + (f"?{urlencode(sorted(query))}" if query else "")


HREF = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")


def _shown_text(body: str, mimetype: str) -> str:
    if mimetype in ("application/json", "application/geo+json"):
        try:
            return json.dumps(json.loads(body), ensure_ascii=False)
        except ValueError:
            return body
    if mimetype == "text/calendar":
        body = body.replace("\r\n ", "").replace("\n ", "")
        return re.sub(r"\\([,;\\nN])", lambda m: "\n" if m[1] in "nN" else m[1], body)
    if mimetype == "text/csv":  # and the JSON in its cells (the audit log's changes)
        return body + "\n" + body.replace('\\"', '"').replace('""', '"')
    if mimetype == "text/plain":
        return body
    return html.unescape(body)


def _problems(body: str, mimetype: str, headers: Any) -> list[str]:
    problems = []
    if EVALUATED in body:
        problems.append(f"a template evaluated a payload ({EVALUATED})")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("served without X-Content-Type-Options: nosniff")
    if mimetype in ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml"):
        for payload in MARKUP:
            if payload in body:
                at = body.index(payload)
                problems.append(f"unescaped {payload!r}: …{body[max(0, at - 80) : at + 40]!r}")
        for m in JS_URL.finditer(body):
            problems.append(f"a javascript: URL: {body[m.start() : m.end() + 30]!r}")
    return problems


def crawl(world: World, role: str, files: set[str]) -> Crawl:
    """Every page ``role`` reaches from the seeds, one of each shape (the path with its ids as
    N, the query's keys) beyond the seeds; a file (a path with an extension, or the API's) once
    across roles (``files``: those fetched already)."""
    client = world.clients[role]
    api_headers = {"Authorization": f"Bearer {world.tokens[role]}"} if role in world.tokens else {}
    seeds = ["/", "/map", "/map/embed", "/venues/", "/activities/", "/apply", "/login"]
    seeds += ["/map/data.json", "/map/data.geojson", "/map/activities.json", "/api/v1/venues"]
    seeds += ["/api/v1/activities", "/api/v1/openapi.json"]
    if role == "admin":  # the edit forms show what lists leave out (English names, e-mail)
        seeds += [f"/units/{u}/edit" for u in world.unit_ids]
        seeds += [f"/groups/{g}/edit" for g in world.group_ids]
    if role in ("anon", "admin"):  # each object's own pages: as the public, as its owner
        seeds += [f"/venues/{v}" for v in world.venue_ids]
        seeds += [f"/map/venues/{v}/popup" for v in world.venue_ids]
        seeds += [f"/activities/{a}" for a in world.activity_ids]
        seeds += [f"/api/v1/activities/{a}" for a in world.activity_ids]
        seeds += [f"/api/v1/venues/{v}" for v in world.venue_ids]
    if role != "anon":
        seeds += ["/api/v1/bookings?scope=all", "/api/v1/bookings", "/api/v1/groups"]
        seeds += ["/api/v1/applications", "/api/v1/plans", "/api/v1/pairings", "/api/v1/audit"]
        seeds += ["/venues/export.csv", "/venues/export.geojson", "/map/export.geojson"]
        seeds += ["/audit/export.csv", f"/feeds/{world.feed_secret}.ics", "/map/areas.geojson"]
    # Search terms are shown back on the lists: each payload as one.
    seeds += [f"/venues/?{urlencode({'q': p})}" for p in PAYLOADS]
    if role != "anon":
        seeds += [f"/groups/?{urlencode({'q': p})}" for p in PAYLOADS]
    queue = list(dict.fromkeys(seeds))
    seen: set[str] = set(queue)
    shapes: dict[tuple[str, tuple[str, ...]], int] = {}
    out = Crawl()
    while queue:
        url = queue.pop(0)
        parts = urlsplit(url)
        keys = tuple(sorted(k for k, _ in parse_qsl(parts.query)))
        shape = (re.sub(r"\d+", "N", parts.path), keys)
        shapes[shape] = shapes.get(shape, 0) + 1
        if url not in seeds and shapes[shape] > 1:
            continue
        if "." in parts.path.rsplit("/", 1)[-1] or parts.path.startswith("/api/"):
            if shape[0] in files and url not in seeds:
                continue
            files.add(shape[0])
        resp = client.get(url, headers=api_headers if url.startswith("/api/") else {})
        body = resp.get_data(as_text=True)
        problems = _problems(body, resp.mimetype, resp.headers)
        if resp.status_code >= 500:
            problems.append(f"server error {resp.status_code}")
        out.visits.append(Visit(url, resp.status_code, resp.mimetype, problems))
        if resp.status_code < 400:
            out.shown.append(_shown_text(body, resp.mimetype))
        links: list[str] = []
        if resp.status_code in (301, 302, 303) and resp.location:
            links = [resp.location]
        elif resp.mimetype == "text/html":
            links = [html.unescape(h) for h in HREF.findall(body)]
        for href in links:
            target = _keep(href, url)
            if target and target not in seen:
                seen.add(target)
                queue.append(target)
    return out


@pytest.fixture(scope="module")
def crawls(world: World) -> dict[str, Crawl]:
    files: set[str] = set()
    return {role: crawl(world, role, files) for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_no_answer_shows_a_payload_unescaped(crawls: dict[str, Crawl], role: str) -> None:
    visits = crawls[role]
    assert len(visits.visits) > 30, [v.url for v in visits.visits]
    problems = [f"{v.url} ({v.mimetype}): {p}" for v in visits.visits for p in v.problems]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


def test_every_stored_payload_is_shown_somewhere(world: World, engine: Engine, crawls: Any) -> None:
    """The crawl can fail: a value it never saw was never checked. Every free-text attribute's
    value holding each payload is shown, whole, on some page or file of some role."""
    shown = "\n".join(t for c in crawls.values() for t in c.shown)
    unseen = []
    with Session(engine) as session:
        for target in _targets():
            values = _stored(session, target)
            for i, payload in enumerate(PAYLOADS):
                if not any(payload in v and v in shown for v in values):
                    unseen.append((target, i))
    assert not unseen, unseen


def test_forms_answered_with_a_payload_show_it_escaped(world: World) -> None:
    """What a refused form shows back: the log-in page (its user name), the phone screen (the
    caller, the purpose, the times as typed)."""
    every = "|".join(PAYLOADS)
    resp = world.app.test_client().post("/login", data={"username": every, "password": "x"})
    body = resp.get_data(as_text=True)
    assert resp.status_code in (200, 401, 422), resp.status_code
    assert not _problems(body, resp.mimetype, resp.headers)
    assert every in html.unescape(body)  # shown back, as text
    resp = world.clients["secretary"].post(
        "/bookings/phone",
        data={
            "caller_name": every, "purpose": every, "caller_phone": "x", "date": every,
            "start": every, "end": every, "venue_id": every,
        },
    )  # fmt: skip
    assert resp.status_code == 422, resp.status_code
    body = resp.get_data(as_text=True)
    assert not _problems(body, resp.mimetype, resp.headers)
    assert every in html.unescape(body)


# ---------------------------------------------------------------- 3. Chromium


def without_csp(wsgi_app: Any) -> Any:
    """``wsgi_app`` answering without its Content-Security-Policy header."""

    def app(environ: Any, start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() != "content-security-policy"]
            return start_response(status, kept, *rest)

        return wsgi_app(environ, start)

    return app


def log_in(driver: Any, base: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "whoami"))


#: Loads the pages in iframes at once, each of which then reports what looks injected.
LOAD_FRAMES = """
var urls = arguments[0], done = arguments[arguments.length - 1], left = urls.length;
document.body.innerHTML = '';
urls.forEach(function (u) {
  var f = document.createElement('iframe');
  f.style.width = '1000px'; f.style.height = '700px';
  f.onload = function () { if (--left === 0) setTimeout(done, 600); };
  f.src = u; document.body.appendChild(f);
});
setTimeout(done, 25000);
"""
INSPECT = """
var found = [];
Array.from(document.querySelectorAll('iframe')).forEach(function (f) {
  var d = f.contentDocument; if (!d) { found.push('unreadable ' + f.src); return; }
  d.querySelectorAll('*').forEach(function (el) {
    Array.from(el.attributes).forEach(function (a) {
      var v = a.value.trim().toLowerCase();
      var url = /^(href|src|action|formaction|xlink:href)$/.test(a.name);
      if (url && v.indexOf('javascript:') === 0)
        found.push(f.src + ': javascript: URL in ' + el.tagName);
      if (a.name.indexOf('on') === 0 && a.value.indexOf('xss(') >= 0)
        found.push(f.src + ': injected handler on ' + el.tagName);
    });
  });
});
return [window.__xss || [], found];
"""


def run_pages(driver: Any, base: str, paths: list[str], batch: int = 8) -> tuple[list, list]:
    """Load ``paths`` (in batches of iframes): the payloads that ran, what looks injected."""
    ran: list[Any] = []
    injected: list[str] = []
    driver.get(base + "/healthz")
    for start in range(0, len(paths), batch):
        driver.execute_script("window.__xss = [];")
        urls = [base + p for p in paths[start : start + batch]]
        driver.execute_async_script(LOAD_FRAMES, urls)
        got, found = driver.execute_script(INSPECT)
        ran += got
        injected += found
    return ran, injected


#: The pages Chromium loads, by shape (ids as N), as each role: every page whose own scripts
#: handle the stored text (the maps and their popups, the pickers, the slot grids, the lists'
#: confirmations) and the activity pages and the dashboard. Each must have been reached by the
#: crawl, which checked the HTML of every page.
BROWSER_PAGES = {
    "admin": (
        "/map", "/map/embed", "/venues/N", "/venues/N/edit", "/venues/new", "/venues/N/book",
        "/venues/N/calendar", "/bookings/", "/groups/", "/units/", "/users/", "/activities/",
        "/activities/N", "/dashboard/", "/dashboard/activities/",
    ),
    "booker": ("/bookings/", "/venues/N/book", "/account/", "/account/tokens"),
}  # fmt: skip


def _pages(crawls: dict[str, Crawl], role: str) -> list[str]:
    """The first page of each of ``BROWSER_PAGES[role]`` the crawl reached as ``role``."""
    picked: dict[str, str] = {}
    for v in crawls[role].visits:
        path = urlsplit(v.url).path
        shape = re.sub(r"\d+", "N", path)
        if v.mimetype == "text/html" and v.status == 200 and shape in BROWSER_PAGES[role]:
            picked.setdefault(shape, v.url)
    missing = set(BROWSER_PAGES[role]) - set(picked)
    assert not missing, f"the crawl as {role} did not reach {sorted(missing)}"
    return list(picked.values())


@pytest.fixture(scope="module")
def pages(crawls: dict[str, Crawl]) -> dict[str, list[str]]:
    return {role: _pages(crawls, role) for role in BROWSER_PAGES}


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """One headless Chromium for the module, trapping ``xss(n)`` on every page and frame."""
    with chromium(1100, 800) as browser:
        browser.set_script_timeout(60)
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        yield browser


@pytest.mark.browser
@pytest.mark.sqlite_only  # see conftest.SQLITE_ONLY
def test_no_payload_runs_in_chromium_without_csp(
    world: World, pages: dict[str, list[str]], driver: Any
) -> None:
    with live_server(without_csp(world.app)) as base:
        ran: list[Any] = []
        injected: list[str] = []
        for role in ("admin", "booker"):
            log_in(driver, base, USERNAMES[role])
            got, found = run_pages(driver, base, pages[role])
            ran += got
            injected += found
        # Every venue's popup on the map, opened: its name shown as text.
        driver.get(base + "/map")
        shown = []
        for vid in world.venue_ids:
            driver.execute_script("MapService.oneMap.openVenue(arguments[0])", vid)
            selector = f".venue-popup[data-venue-id='{vid}'] .popup-name"
            WebDriverWait(driver, 20).until(
                lambda d, s=selector: d.find_elements(By.CSS_SELECTOR, s)
            )
            shown.append(
                driver.find_element(By.CSS_SELECTOR, selector).get_attribute("textContent")
            )
        ran += driver.execute_script("return window.__xss || []")
    assert not ran, f"payloads ran: {ran}"
    assert not injected, injected
    assert sorted(shown) == sorted(f"vn{i}{p}" for i, p in enumerate(PAYLOADS))


@pytest.mark.browser
@pytest.mark.sqlite_only  # see conftest.SQLITE_ONLY
def test_without_escaping_the_same_check_sees_payloads_run(
    world: World, database_url: str, tmp_path_factory: pytest.TempPathFactory, driver: Any
) -> None:
    """Negative control: an app made with the test-only switch ``NO_ESCAPE`` (templates not
    escaped), served the same way without its CSP, runs the payloads on the same pages."""
    from mapservice import create_app
    from mapservice.core import faults

    with faults.enabled(faults.NO_ESCAPE):
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "xss-secret",
                "TESTING": True,
                "INSTANCE_PATH": tmp_path_factory.mktemp("noescape"),
                "WTF_CSRF_ENABLED": False,
            }
        )
    try:
        with live_server(without_csp(app)) as base:
            log_in(driver, base, USERNAMES["admin"])
            ran, injected = run_pages(driver, base, ["/units/", "/groups/", "/activities/"])
    finally:
        app.extensions["db_engine"].dispose()
    numbers = {n for n, _path in ran}
    assert RUN_UNESCAPED <= numbers, (numbers, ran)
    assert injected
