"""Issue 23, item 5: no input answers 500. Ids past 32 and 64 bits, dates at the calendar's
edges, numbers that are not numbers, text that is not text, JSON nested 50,000 levels deep —
thrown at every route's path parameters (each route, each value), at the query parameters the
pages and the API read and at every API body field (Hypothesis), as a visitor, a booker and
the committee admin (page and token). Each answer is below 500: a 404 or 422 with the usual
shape, or the page itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from mapservice.api.framework import ENDPOINTS
from mapservice.booking import engine as booking_engine
from mapservice.db import writer
from mapservice.models import User
from mapservice.operations import tokens
from tests.conftest import login, module_world

TZ = ZoneInfo("Asia/Shanghai")
# Per database, in `make test` (pages are the slow ones: a map or a dashboard each).
PAGE_EXAMPLES = 100
API_EXAMPLES = 200

EDGE_IDS = ["0", "-1", "2147483648", "9223372036854775808", "9" * 25, "²", "1e3", "%20"]
EDGE_VALUES = [
    *EDGE_IDS,
    "0001-01-01",
    "9999-12-31",
    "9999-12-30T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "2026-02-30",
    "2026-13-01T25:61",
    "nan",
    "inf",
    "-1e400",
    "1e400,1e400",
    "\x00",
    "'; select 1; --",
    "<script>x</script>",
    "a" * 3000,
    "1,2,,3,²",
    "",
]
#: The query parameters the pages read (a name no page reads is ignored, harmlessly).
QUERY_NAMES = sorted(
    {
        *("at by committee crs date download end group lang mine next paper period q").split(),
        *("retired scopes start status type unit venue week from to since until").split(),
        *("object_id object_type actor action page free_from free_to near radius").split(),
        *("capacity street kind types units open month fmt sort min_capacity").split(),
    }
)


@dataclass
class World:
    venue_id: int
    booking_id: int
    token: str


def build(session: Any, engine: Any, areas: Any) -> World:
    from tests.conftest import Factory

    make = Factory(session, areas)
    committee = make.committee()
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit, "移动团支部")
    admin = make.admin(committee, username="admin")
    make.booker(group, username="booker")
    make.secretary(unit, username="sec")
    venue = make.venue(unit, name="移动羽毛球馆", capacity_units=2)
    start = datetime.now(TZ).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=2)
    with Session(writer(engine), expire_on_commit=False) as w:
        booking = booking_engine.book(
            w, w.get(User, admin.id), venue.id, group.id, start, start + timedelta(hours=1)
        )
        w.commit()
    _tok, secret = tokens.create_token(session, admin, admin, ["read", "book", "manage"], "fuzz")
    session.commit()
    return World(venue.id, booking.id, secret)


class Clients:
    def __init__(self, app: Any, world: World) -> None:
        self.app = app
        self.by_role: dict[str, Any] = {"visitor": app.test_client()}
        for name in ("admin", "booker", "sec"):
            client = app.test_client()
            assert login(client, name).status_code == 302
            self.by_role[name] = client
        self.token_headers = {"Authorization": f"Bearer {world.token}"}


world, web = module_world(build, Clients, csrf=False)


def _routes(app: Any) -> list[tuple[str, str, list[str]]]:
    """(method, rule, its int parameters) for each route the app serves but static files."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static",) or rule.rule.startswith("/vendor"):
            continue
        ints = [name for name, conv in rule._converters.items() if "Integer" in type(conv).__name__]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, rule.rule, ints))
    return out


def _fill(rule: str, values: dict[str, str]) -> str:
    """The rule with each ``<conv:name>`` replaced (non-integer ones by a harmless word)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(2)
        return values.get(name, "x1")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", one, rule)


def _ask(client: Any, method: str, path: str, **kw: Any) -> Any:
    return client.open(path, method=method, **kw)


def test_every_route_with_every_edge_id(web: Clients, world: World) -> None:
    """Each route, each integer path parameter set to each edge value (the others to a real
    id): nothing answers 500, as the admin and as a visitor."""
    failures = []
    routes = _routes(web.app)
    assert len(routes) > 100
    for method, rule, ints in routes:
        if not ints:
            continue
        for edge in EDGE_IDS:
            for target in ints:
                values = {name: str(world.venue_id) for name in ints} | {target: edge}
                path = _fill(rule, values)
                for role in ("admin", "visitor"):
                    headers = web.token_headers if rule.startswith("/api/") else {}
                    resp = _ask(web.by_role[role], method, path, headers=headers)
                    if resp.status_code >= 500:
                        failures.append((role, method, path, resp.status_code))
    assert failures == []


@settings(
    max_examples=PAGE_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_pages_with_edge_query_parameters(web: Clients, world: World, data: Any) -> None:
    routes = [(m, r, i) for m, r, i in _routes(web.app) if m == "GET" and not r.startswith("/api/")]
    method, rule, ints = data.draw(st.sampled_from(routes), label="route")
    path = _fill(rule, {name: str(world.venue_id) for name in ints})
    query = data.draw(
        st.dictionaries(
            st.sampled_from(QUERY_NAMES),
            st.sampled_from(EDGE_VALUES) | st.text(max_size=12),
            min_size=1,
            max_size=4,
        ),
        label="query",
    )
    role = data.draw(st.sampled_from(["admin", "booker", "sec", "visitor"]), label="role")
    resp = _ask(web.by_role[role], method, path, query_string=query)
    assert resp.status_code < 500, (role, path, query, resp.get_data(as_text=True)[:300])


def _body_fields(model: Any) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()] if model else []


@settings(
    max_examples=API_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_api_with_edge_queries_and_bodies(web: Clients, world: World, data: Any) -> None:
    endpoint = data.draw(st.sampled_from(ENDPOINTS), label="endpoint")
    path = "/api/v1" + re.sub(r"\{(\w+)\}", str(world.venue_id), endpoint.path)
    edge = st.sampled_from(EDGE_VALUES) | st.integers() | st.floats() | st.none()
    query = {}
    if endpoint.query is not None:
        query = data.draw(
            st.dictionaries(
                st.sampled_from(_body_fields(endpoint.query)), st.sampled_from(EDGE_VALUES)
            ),
            label="query",
        )
    kw: dict[str, Any] = {"query_string": query, "headers": web.token_headers}
    if endpoint.body is not None:
        fields = _body_fields(endpoint.body) or ["x"]
        kw["json"] = data.draw(
            st.dictionaries(st.sampled_from(fields), edge | st.lists(edge, max_size=3)),
            label="body",
        )
    resp = _ask(web.by_role["visitor"], endpoint.method.upper(), path, **kw)
    assert resp.status_code < 500, (path, kw, resp.get_data(as_text=True)[:300])


def test_json_nested_fifty_thousand_levels_deep(web: Clients) -> None:
    deep = "[" * 50000 + "]" * 50000
    for endpoint in ENDPOINTS:
        if endpoint.body is None:
            continue
        path = "/api/v1" + re.sub(r"\{(\w+)\}", "1", endpoint.path)
        resp = _ask(
            web.by_role["visitor"],
            endpoint.method.upper(),
            path,
            data=deep,
            content_type="application/json",
            headers=web.token_headers,
        )
        assert resp.status_code == 400, (path, resp.status_code)
        assert resp.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "path",
    [
        "/venues/9999999999999999999999999",
        "/venues/?unit=9999999999999999999999999",
        "/venues/{venue}?week=9999-12-31",
        "/dashboard/?period=week&at=0001-01-01",
        "/map/data.json?free_from=9999-12-30T00:00:00Z",
    ],
)
def test_the_reported_inputs(web: Clients, world: World, path: str) -> None:
    """The five inputs of the issue, each answered without a 500."""
    resp = web.by_role["admin"].get(path.format(venue=world.venue_id))
    assert resp.status_code in (200, 404, 422), resp.status_code
