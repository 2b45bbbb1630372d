"""Issue 21, proven with real parts: the shipped nginx site (deploy/nginx/mapservice.conf,
adapted to loopback ports and a certificate made here; TLS kept) in front of two app
instances (``mapservice serve --workers 2`` each) on the test PostgreSQL cluster, and two
``mapservice worker`` processes at once.

Through nginx, over HTTPS: a booking race (2,016 overlapping attempts from 32 clients at a
venue of capacity 1 and one of capacity 3) ends with no slot over capacity and no refusal while
a unit was free; the log-in throttle counts the client's own address (nginx's
X-Forwarded-For), not nginx's, and a client cannot forge it; killing one instance (SIGKILL,
with its workers) mid-load loses no acknowledged booking, nginx sends the rest to the other
instance and no booking is made twice. PostgreSQL only (SQLite is the one-machine set-up).

``start_city(…, env=…)`` takes more settings for both instances (e.g. a Redis URL).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.db import make_sessionmaker
from mapservice.models import (
    AuditEntry,
    Booking,
    BookingAllocation,
    JobRun,
    LoginAttempt,
    Notification,
)
from mapservice.operations.tokens import create_token
from tests.conftest import PASSWORD, Factory, wiped_session
from tests.nginx import Nginx, client_context, start_nginx
from tests.test_crash import start_server, wait_for_workers

TZ = ZoneInfo("Asia/Shanghai")
CLIENTS = 32
RACE_ATTEMPTS = 63  # per client: 2,016 in all
KILL_ATTEMPTS = 15  # per client, the instance killed a third of the way through
SLOTS = 168  # one-hour slots per venue in the race: about 6 attempts at each
CLIENT_A, CLIENT_B = "127.0.0.2", "127.0.0.3"  # loopback addresses the clients connect from
CLIENT_C, CLIENT_D = "127.0.0.4", "127.0.0.5"  # anonymous API callers (the rate limit's test)
API_LIMIT = 120  # per minute, per token or client address


# ------------------------------------------------------------------ the city


@dataclass
class City:
    nginx: Nginx
    instances: list[Any]  # subprocess.Popen of each `mapservice serve`
    ports: list[int]
    database_url: str
    folder: Path

    @property
    def cert(self) -> Path:
        return self.nginx.folder / "cert.pem"

    def connect(self, source: str = "127.0.0.1") -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1",
            self.nginx.port,
            context=client_context(self.cert),
            timeout=60,
            source_address=(source, 0),
        )

    def errors(self) -> str:
        """The end of nginx's error log (why it answered 502, say)."""
        return (self.nginx.folder / "error.log").read_text(errors="replace")[-3000:]

    def kill(self, n: int) -> None:
        """SIGKILL instance ``n``: the gunicorn master and its workers at once."""
        os.killpg(self.instances[n].pid, signal.SIGKILL)
        self.instances[n].wait(timeout=10)

    def stop(self) -> None:
        self.nginx.stop()
        for proc in self.instances:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGQUIT)
        for proc in self.instances:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # Seen twice on PostgreSQL in clean-clone runs: an instance still stopping
                # after 20 s (to be found); killed and reaped, not left running.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def start_city(database_url: str, folder: Path, env: dict[str, str] | None = None) -> City:
    """Two instances (``mapservice serve --workers 2``), started side by side, behind nginx.
    ``env``: more settings for both (the defaults: behind one proxy, over HTTPS)."""
    settings = {
        "MAPSERVICE_TRUSTED_PROXIES": "1",
        "MAPSERVICE_HTTPS": "1",
        "MAPSERVICE_SECRET_KEY": "city-secret",  # one key: a session works on either
        **(env or {}),
    }
    started: list[tuple[Any, int] | BaseException] = [RuntimeError("not started")] * 2

    def start(n: int) -> None:
        try:
            place = folder / f"instance{n}"
            place.mkdir(parents=True, exist_ok=True)
            started[n] = start_server(database_url, place, workers=2, env=settings)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            started[n] = exc

    threads = [threading.Thread(target=start, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    servers = [s for s in started if not isinstance(s, BaseException)]
    if len(servers) < 2:
        for proc, _port in servers:
            os.killpg(proc.pid, signal.SIGKILL)
        raise next(s for s in started if isinstance(s, BaseException))
    ports = [port for _proc, port in servers]
    try:
        for proc, _port in servers:
            wait_for_workers(proc.pid, 2)
        nginx = start_nginx(ports)
    except BaseException:
        for proc, _port in servers:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    nginx.keep = folder
    return City(nginx, [proc for proc, _port in servers], ports, database_url, folder)


@pytest.fixture(scope="module")
def world(engine: Engine, runzhou_areas: Any, db_kind: str) -> Iterator[dict[str, Any]]:
    if db_kind != "postgresql":
        pytest.skip("the city runs on PostgreSQL (SQLite is the one-machine set-up)")
    with wiped_session(engine) as session:
        make = Factory(session, runzhou_areas)
        committee = make.committee(with_streets=False)
        unit = make.unit(committee, "移动公司")
        day = {"hours": "Mon-Sun 00:00-24:00", "min_notice_minutes": 0, "max_days_ahead": 60}
        w: dict[str, Any] = {
            "single": make.venue(unit, name="单场", capacity_units=1, **day),
            "triple": make.venue(unit, name="三场", capacity_units=3, **day),
            "spare": make.venue(unit, name="备用", capacity_units=2, **day),
            "hall": make.venue(unit, name="礼堂", requires_approval=True, hold_hours=1, **day),
            "secretary": make.secretary(unit, username="city-sec"),
        }
        groups = [make.group(committee, unit, f"团支部{i}") for i in range(CLIENTS)]
        w["groups"] = groups
        w["bookers"] = [make.booker(g, username=f"city-booker{i}") for i, g in enumerate(groups)]
        w["tokens"] = [create_token(session, None, b, ["read", "book"])[1] for b in w["bookers"]]
        session.commit()
        yield w


@pytest.fixture(scope="module")
def city(
    world: dict[str, Any],
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: Any,
) -> Iterator[City]:
    # One Redis for both instances: the API limit is counted once for the whole city. A token
    # sends fewer than 100 requests in this module, so only the limit's own test reaches it.
    made = start_city(
        database_url,
        tmp_path_factory.mktemp("city"),
        env={
            "MAPSERVICE_REDIS_URL": redis_server.url,
            "MAPSERVICE_API_RATE_LIMIT": f"{API_LIMIT} per minute",
        },
    )
    try:
        yield made
    finally:
        made.stop()


# ------------------------------------------------------------------ load through nginx


@dataclass
class Answers:
    """A client's answers: (venue, start) -> [status…], the ids answered 201 by purpose."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_slot: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def book_through(
    city: City, token: str, targets: list[tuple[int, str, str, str]], answers: Answers
) -> None:
    """POST each (venue, start, end, purpose) through nginx on one kept-alive connection."""
    conn = city.connect()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for venue, start, end, purpose in targets:
        body = {"venue_id": venue, "start": start, "end": end, "purpose": purpose}
        try:
            conn.request("POST", "/api/v1/bookings", body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            answers.errors.append(f"{purpose}: {exc!r}")
            conn.close()
            conn = city.connect()
            continue
        answers.statuses[resp.status] += 1
        answers.by_slot.setdefault((venue, start), []).append(resp.status)
        if resp.status == 201:
            answers.created[purpose] = json.loads(raw)["bookings"][0]["id"]
        elif resp.status not in (409, 502):
            answers.errors.append(f"{purpose}: {resp.status} {raw[:200]!r}")
    conn.close()


def _base(days: int) -> dt.datetime:
    return (dt.datetime.now(TZ) + dt.timedelta(days=days)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )


def _stored(engine: Engine, venues: list[int]) -> list[Booking]:
    with Session(engine) as s:
        return list(s.scalars(select(Booking).where(Booking.venue_id.in_(venues))))


def _max_units_at_once(engine: Engine, venue: int) -> int:
    """The most units of ``venue`` held at one instant (from the allocations)."""
    with Session(engine) as s:
        spans = s.execute(
            select(BookingAllocation.start_at, BookingAllocation.end_at).where(
                BookingAllocation.venue_id == venue
            )
        ).all()
    edges = sorted([(a, 1) for a, _b in spans] + [(b, -1) for _a, b in spans])
    held = top = 0
    for _t, d in edges:
        held += d
        top = max(top, held)
    return top


def test_booking_race_through_nginx(city: City, world: dict[str, Any], engine: Engine) -> None:
    import random

    venues = {world["single"].id: 1, world["triple"].id: 3}
    base = _base(3)
    work: list[list[tuple[int, str, str, str]]] = []
    for c in range(CLIENTS):
        rnd = random.Random(c)
        mine = []
        for a in range(RACE_ATTEMPTS):
            venue = rnd.choice(list(venues))
            start = base + dt.timedelta(hours=rnd.randrange(SLOTS))
            end = start + dt.timedelta(hours=1)
            mine.append((venue, start.isoformat(), end.isoformat(), f"race-{c}-{a}"))
        work.append(mine)
    answers = [Answers() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=book_through, args=(city, world["tokens"][c], work[c], answers[c]))
        for c in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a client hung"
    errors = [e for a in answers for e in a.errors]
    statuses = sum((a.statuses for a in answers), Counter())
    assert errors == [] and set(statuses) <= {201, 409}, (statuses, errors[:5], city.errors())
    assert sum(statuses.values()) == CLIENTS * RACE_ATTEMPTS >= 2000
    assert statuses[201] and statuses[409]

    stored = _stored(engine, list(venues))
    created = {p: i for a in answers for p, i in a.created.items()}
    assert {b.id for b in stored} == set(created.values())  # every 201, and nothing else
    per_slot = Counter((b.venue_id, b.start_at) for b in stored)
    slots: dict[tuple[int, str], list[int]] = {}
    for a in answers:
        for key, got in a.by_slot.items():
            slots.setdefault(key, []).extend(got)
    over, false_refusals = [], []
    for (venue, start), got in slots.items():
        held = per_slot[(venue, dt.datetime.fromisoformat(start))]
        if held > venues[venue]:
            over.append((venue, start, held))
        if 409 in got and held < venues[venue]:  # refused while a unit stayed free
            false_refusals.append((venue, start, held))
        assert held == got.count(201)
    assert over == [] and false_refusals == []
    assert all(_max_units_at_once(engine, v) <= cap for v, cap in venues.items())


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found, "no CSRF token on the log-in page"
    return found.group(1)


class Browser:
    """One user's HTTPS connection through nginx from a loopback address, with its cookie."""

    def __init__(self, city: City, source: str) -> None:
        self.conn = city.connect(source)
        self.cookie = ""
        self.origin = f"https://127.0.0.1:{city.nginx.port}"

    def call(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> Any:
        sent = dict(headers)
        if self.cookie:
            sent["Cookie"] = self.cookie
        body = None
        if form is not None:  # over HTTPS the CSRF check wants the page's own origin
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            sent.setdefault("Referer", self.origin + path)
        self.conn.request(method, path, body=body, headers=sent)
        resp = self.conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        for header in resp.headers.get_all("Set-Cookie") or []:
            self.cookie = header.split(";", 1)[0]
        return resp, text

    def log_in(self, username: str, password: str, **headers: str) -> int:
        _resp, page = self.call("GET", "/login")
        form = {"username": username, "password": password, "csrf_token": _csrf(page)}
        resp, _text = self.call("POST", "/login", form, **headers)
        return int(resp.status)


def test_login_throttle_counts_the_clients_address_not_nginxs(
    city: City, world: dict[str, Any], engine: Engine
) -> None:
    a, b = Browser(city, CLIENT_A), Browser(city, CLIENT_B)
    try:
        for i in range(10):  # ten different names: the per-address limit, no account slowed
            assert a.log_in(f"nobody{i}", "wrong-password-xyz") == 401
        assert a.log_in("city-sec", PASSWORD) == 429
        # Claiming B's address in its own X-Forwarded-For does not help A (nginx appends).
        assert a.log_in("city-sec", PASSWORD, **{"X-Forwarded-For": CLIENT_B}) == 429
        assert b.log_in("city-sec", PASSWORD) == 302  # B is not throttled
        resp, _page = b.call("GET", "/bookings/")
        assert resp.status == 200  # the session works through either instance
    finally:
        a.conn.close()
        b.conn.close()
    with Session(engine) as s:
        addresses = Counter(s.scalars(select(LoginAttempt.address)))
    assert addresses == {CLIENT_A: 10, CLIENT_B: 1}, addresses


def test_api_rate_limit_counts_across_both_instances_by_the_clients_address(
    city: City, world: dict[str, Any]
) -> None:
    """Anonymous calls from one address, spread by nginx over both instances (4 workers), reach
    429 after exactly the limit (counted in the one Redis), not 2× or 4× it; another address,
    even one the first claims in X-Forwarded-For, has its own budget."""
    c, d = city.connect(CLIENT_C), city.connect(CLIENT_D)

    def get(conn: Any, **headers: str) -> int:
        conn.request("GET", "/api/v1/venues", headers=headers)
        resp = conn.getresponse()
        resp.read()
        return int(resp.status)

    try:
        answers = Counter(get(c, **{"X-Forwarded-For": CLIENT_D}) for _ in range(API_LIMIT + 60))
        assert answers == {200: API_LIMIT, 429: 60}, answers
        assert get(d) == 200  # D's budget is untouched by C's claim to be D
    finally:
        c.close()
        d.close()


def test_killing_an_instance_mid_load_loses_no_acknowledged_booking(
    city: City, world: dict[str, Any], engine: Engine
) -> None:
    venue = world["spare"].id
    base = _base(10)
    answers = [Answers() for _ in range(CLIENTS)]
    work = [
        [
            (
                venue,
                (base + dt.timedelta(hours=(c * KILL_ATTEMPTS + a) % 240)).isoformat(),
                (base + dt.timedelta(hours=(c * KILL_ATTEMPTS + a) % 240 + 1)).isoformat(),
                f"kill-{c}-{a}",
            )
            for a in range(KILL_ATTEMPTS)
        ]
        for c in range(CLIENTS)
    ]
    threads = [
        threading.Thread(target=book_through, args=(city, world["tokens"][c], work[c], answers[c]))
        for c in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while sum(sum(a.statuses.values()) for a in answers) < CLIENTS * KILL_ATTEMPTS // 3:
        assert time.time() < deadline, "the load did not start"
        time.sleep(0.02)
    city.kill(0)
    killed_at = sum(sum(a.statuses.values()) for a in answers)
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a client hung"
    statuses = sum((a.statuses for a in answers), Counter())
    errors = [e for a in answers for e in a.errors]
    assert errors == [], errors[:5]
    # Only the requests the dying instance had in hand fail (one per client at most).
    assert statuses[502] <= CLIENTS, statuses
    assert statuses[201] >= CLIENTS * KILL_ATTEMPTS - killed_at - CLIENTS, statuses

    created = {p: i for a in answers for p, i in a.created.items()}
    stored = _stored(engine, [venue])
    assert set(created.values()) <= {b.id for b in stored}  # every 201 is there
    # Nothing was sent twice: one booking per attempt at most (each has its own purpose).
    purposes = Counter(b.purpose for b in stored)
    assert max(purposes.values()) == 1
    # … and what is stored beyond the 201s is what a 502 may have done (committed, answer lost).
    assert len(stored) - len(created) <= statuses[502]
    assert _max_units_at_once(engine, venue) <= 2
    # nginx went on to the other instance: after the kill every request reached it, and some
    # found the dead one refusing first.
    dead, alive = (f"127.0.0.1:{p}" for p in city.ports)
    booked = [r for r in city.nginx.access() if r["uri"] == "/api/v1/bookings"]
    tail = booked[-CLIENTS * 4 :]
    assert all(r["upstream"].split(", ")[-1] == alive for r in tail), tail[:3]
    assert all(r["status"] in ("201", "409") for r in tail)
    assert any(r["upstream"] == f"{dead}, {alive}" for r in booked) or statuses[502], booked[-3:]


def _book_at(
    engine: Engine, w: dict[str, Any], venue: str, start: dt.datetime, made: dt.datetime
) -> int:
    with make_sessionmaker(engine, write=True)() as s:
        booker, group = w["bookers"][0], w["groups"][0]
        end = start + dt.timedelta(hours=1)
        b = booking_engine.book(s, booker, w[venue].id, group.id, start, end, now=made)
        s.commit()
        return int(b.id)


def test_two_worker_processes_expire_each_hold_and_remind_once(
    world: dict[str, Any], engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Two ``mapservice worker --once`` started together: each job runs in one of them; the
    venue's unit gets one digest of the requests still waiting."""
    import sys

    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    earlier = now - dt.timedelta(hours=3)  # their holds (1 h) ran out two hours ago
    holds = [
        _book_at(engine, world, "hall", now + dt.timedelta(hours=5 + i), earlier) for i in range(4)
    ]
    soon = [
        _book_at(engine, world, "spare", now + dt.timedelta(hours=2 + i), now) for i in range(3)
    ]
    waiting = [
        _book_at(engine, world, "hall", now + dt.timedelta(hours=8 + i), now) for i in range(2)
    ]
    with Session(engine) as s:  # the nightly backup is not due: taken a minute ago
        s.add(JobRun(name="backup", holder="earlier", started_at=now, outcome="ok"))
        s.commit()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAPSERVICE_INSTANCE": str(tmp_path),
        "MAPSERVICE_SECRET_KEY": "city-secret",
        "MAPSERVICE_BACKUP_DIR": str(tmp_path / "backups"),
        "MAPSERVICE_DIGEST_HOURS": "0-24",  # whatever the hour the test runs at
        "MAPSERVICE_PUBLIC_URL": "https://city.example.org",
    }
    exe = str(Path(sys.executable).parent / "mapservice")
    workers = [
        subprocess.Popen(
            [exe, "worker", "--once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    with Session(engine) as s:
        statuses = set(s.scalars(select(Booking.status).where(Booking.id.in_(holds))))
        expired = Counter(
            s.scalars(select(Notification.booking_id).where(Notification.kind == "expired"))
        )
        audited = Counter(
            s.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "booking.expire"))
        )
        reminded = Counter(
            s.scalars(select(Notification.booking_id).where(Notification.kind == "reminder"))
        )
        runs = Counter(s.scalars(select(JobRun.name).where(JobRun.outcome == "ok")))
        pending = set(s.scalars(select(Booking.id).where(Booking.status == "pending")))
        digests = [
            json.loads(p)
            for p in s.scalars(
                select(Notification.params).where(Notification.kind == "request_digest")
            )
        ]
    assert statuses == {"declined"} and pending == set(waiting)
    assert [(sorted(d["ids"]), d["url"]) for d in digests] == [
        (waiting, "https://city.example.org/bookings/requests")
    ], (digests, outputs)
    assert expired == dict.fromkeys(holds, 1), (expired, outputs)
    assert audited == dict.fromkeys(holds, 1)
    assert reminded == dict.fromkeys(soon, 1), (reminded, outputs)
    assert runs["expire_holds"] == runs["send_reminders"] == runs["digest_requests"] == 1, (
        runs,
        outputs,
    )
