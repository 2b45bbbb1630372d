"""Reports built in a process of their own (:mod:`mapservice.stats.isolated`) and gunicorn
workers that retire once they have grown too much (:mod:`mapservice.web.serving`), issue 22
#8: a real builder process on the test database, and real servers (``mapservice serve
--workers 2``) answering over HTTP."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import func, select

from mapservice.core.i18n import use_locale
from mapservice.models import Booking, venue_day_stale
from mapservice.stats import isolated
from mapservice.stats.frames import Scope
from mapservice.stats.periods import period_for
from mapservice.stats.report import build_report, without_booking_rows
from mapservice.web import serving
from tests.conftest import PASSWORD
from tests.pgcluster import free_port
from tests.test_crash import listens

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the builder forks")

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 4, 1, tzinfo=UTC)  # after the period: every figure counts all of it

# The builder is started by a process of its own, as gunicorn's master does (the test process
# has threads of its own: a fork from here could copy a lock one of them holds).
STARTER = """
import sys
from mapservice.stats import isolated
started = isolated.start(sys.argv[1])
print(*(started or ("none", "none")), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def builder(database_url: str, tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    """A report builder on the test database: its pid, socket and log."""
    log = tmp_path / "builder.log"
    with log.open("wb") as err:
        starter = subprocess.Popen(
            [sys.executable, "-c", STARTER, database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert starter.stdout is not None and starter.stdin is not None
    pid_text, path = starter.stdout.readline().decode().split()
    assert pid_text != "none", log.read_text()
    pid = int(pid_text)
    assert isolated.is_builder(pid)  # named so (ps, and gunicorn's workers told apart)
    assert not isolated.is_builder(starter.pid)
    yield pid, path, log
    starter.stdin.close()  # the starter exits; the builder leaves when it notices
    starter.wait(timeout=20)
    starter.stdout.close()
    deadline = time.time() + 10
    while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "the builder outlived the process that started it"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return status != "Z"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=TZ)


@pytest.fixture
def city(db, make):
    """Two units' courts, one unit's group booking both (completed, confirmed, cancelled)."""
    committee = make.committee()
    owner, other = make.unit(committee, "业主单位"), make.unit(committee, "兄弟单位")
    guest = make.group(committee, other)
    court = make.venue(owner, name="球场", type="badminton", hours="Mon-Sun 08:00-20:00")
    room = make.venue(other, name="会议室", type="meeting_room", hours="Mon-Fri 09:00-17:00")
    for venue, day, hours, status in [
        (court, 2, 6, "completed"),
        (court, 3, 3, "confirmed"),
        (court, 4, 2, "cancelled"),
        (room, 3, 4, "completed"),
    ]:
        db.add(
            Booking(
                venue_id=venue.id,
                group_id=guest.id,
                start_at=at(day, 9),
                end_at=at(day, 9) + timedelta(hours=hours),
                units=1,
                status=status,
                created_at=at(day, 9) - timedelta(days=2),
            )
        )
    db.commit()
    period = period_for("custom", date(2026, 3, 2), TZ, last_day=date(2026, 3, 8))
    return committee, period


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_report_built_by_the_builder_equals_the_one_built_here(db, city, builder, locale):
    """In the language of the request that asks for it (the builder was forked in the
    master's: a type's name in an English dashboard was Chinese)."""
    committee, period = city
    _pid, path, log = builder
    options = {"group_by": "unit", "now": NOW}
    job = isolated.Job(Scope(committee.id), period, options, locale)
    remote = isolated.build(path, job)
    assert remote is not None
    # The builder's child recounted the stale days the bookings logged, and committed.
    db.rollback()
    assert db.execute(select(func.count()).select_from(venue_day_stale)).scalar_one() == 0
    with use_locale(locale):
        here = without_booking_rows(build_report(db, Scope(committee.id), period, **options))
    names = set(remote.by_type["name"])
    assert names == (
        {"羽毛球场", "会议室"} if locale == "zh_CN" else {"Badminton court", "Meeting room"}
    )
    # 6 + 3 hours on the court, 4 in the room (the cancelled booking counts in no hour)
    assert remote.totals["booked_cap_hours"] == pytest.approx(13)
    assert remote.totals["bookings"] == 4 and remote.totals["cancelled"] == 1
    assert remote.totals == here.totals
    for name in ("grouped", "by_type", "by_unit", "sharing", "trend", "heat", "streets"):
        pd.testing.assert_frame_equal(getattr(remote, name), getattr(here, name), obj=name)
    pd.testing.assert_frame_equal(remote.venues, here.venues)
    assert remote.fig.bookings.empty and list(remote.fig.bookings.columns)  # rows let go of
    assert re.search(r"report built by builder child \d+ in [\d.]+ s, peak \d+ MB", _text(log))


def test_a_build_that_fails_is_raised_where_it_was_asked(city, builder):
    committee, period = city
    job = isolated.Job(Scope(committee.id), period, {"no_such_option": 1})
    with pytest.raises(isolated.BuildFailed, match="TypeError"):
        isolated.build(builder[1], job)


def test_with_no_builder_listening_the_caller_builds_itself(city, tmp_path):
    committee, period = city
    job = isolated.Job(Scope(committee.id), period, {"now": NOW})
    assert isolated.build(tmp_path / "nobody.sock", job) is None


def test_a_database_only_this_process_sees_gets_no_builder():
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        assert not isolated.shareable(url)
        assert isolated.start(url) is None
    assert isolated.shareable("sqlite:////srv/mapservice/instance/mapservice.db")
    assert isolated.shareable("postgresql+psycopg://u@db/mapservice")


def test_a_worker_retires_once_grown_beyond_the_allowance():
    assert serving.outgrown(165, 100, resident=266)
    assert not serving.outgrown(165, 100, resident=265)
    assert not serving.outgrown(165, 0, resident=900)  # 0: never
    assert not serving.outgrown(0, 100, resident=900)  # its size when forked unknown


# ------------------------------------------------------------------------- real servers


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


@pytest.fixture
def server(database_url: str, tmp_path: Path, request) -> Iterator[tuple[int, Path]]:
    """``mapservice serve --workers 2`` on the test database, with the growth allowance the
    test's ``growth`` marker gives (default: the server's own)."""
    marker = request.node.get_closest_marker("growth")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAPSERVICE_INSTANCE": str(tmp_path),
        "MAPSERVICE_SECRET_KEY": "report-builder",
    }
    if marker is not None:
        env["MAPSERVICE_MAX_WORKER_GROWTH_MB"] = str(marker.args[0])
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mapservice"), "serve", "--port", str(port)]
            + ["--threads", "4", "--workers", "2"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.time() + 60
        while not (listens(proc.pid, port) and "Booting worker" in _text(log)):
            assert time.time() < deadline and proc.poll() is None, _text(log)[-3000:]
            time.sleep(0.1)
        yield port, log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.getheader("Connection", "")


@pytest.mark.growth(1)
def test_workers_that_outgrow_their_allowance_are_replaced_and_no_request_is_lost(server):
    """An allowance of 1 MB: nearly every request finds its worker grown beyond it. Clients
    on keep-alive connections (reconnecting when told ``Connection: close``, as browsers and
    nginx do) get every answer; each worker that retires logs it, and its peak as it exits."""
    port, log = server
    done = threading.Event()

    def client(k: int) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        statuses = []
        i = 0
        while not done.is_set():
            status, connection = _get(conn, "/healthz" if i % 2 else f"/login?k={k}")
            statuses.append(status)
            i += 1
            if connection.lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()
        return statuses

    def seen() -> tuple[set[str], set[str], str]:
        text = _text(log)
        retired = set(re.findall(r"worker (\d+) retires: \d+ MB resident", text))
        exited = set(re.findall(r"worker (\d+) exits: peak \d+ MB resident", text))
        return retired, exited, text

    with ThreadPoolExecutor(6) as pool:
        parts = [pool.submit(client, k) for k in range(6)]
        deadline = time.time() + 60
        while time.time() < deadline and len(seen()[1]) < 4:
            time.sleep(0.2)
        done.set()
        statuses = [s for part in parts for s in part.result()]
    assert len(statuses) > 100 and set(statuses) == {200}
    deadline = time.time() + 20  # the last retiring worker exits once its connections close
    retired, exited, text = seen()
    while time.time() < deadline and not retired <= exited:
        time.sleep(0.2)
        retired, exited, text = seen()
    assert len(retired) >= 4, text[-3000:]
    assert retired <= exited, text[-3000:]
    assert "Traceback" not in text and "[ERROR]" not in text, text[-3000:]


def _opener(port: int, username: str) -> Any:
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = opener.open(f"{base}/login", timeout=60).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert token is not None
    body = {"csrf_token": token.group(1), "username": username, "password": PASSWORD}
    after = opener.open(f"{base}/login", data=urllib.parse.urlencode(body).encode(), timeout=60)
    assert "/login" not in after.geturl()
    return opener


@pytest.mark.growth(0)
def test_the_served_dashboard_is_built_by_the_builder_and_still_answers_without_it(
    db, make, city, server
):
    committee, _period = city
    admin = make.admin(committee)
    port, log = server
    opener = _opener(port, admin.username)
    week = "period=custom&start=2026-03-02&end=2026-03-08"
    page = opener.open(f"http://127.0.0.1:{port}/dashboard/?{week}", timeout=120).read()
    assert "球场".encode() in page and "会议室".encode() in page
    text = _text(log)
    assert re.search(r"report built by builder child \d+", text), text[-3000:]
    # In English, the types are named in English (the builder builds in the asker's language).
    english = opener.open(f"http://127.0.0.1:{port}/dashboard/?{week}&lang=en", timeout=120)
    body = english.read()
    assert b"Badminton court" in body and "羽毛球场".encode() not in body
    assert len(re.findall(r"report built by builder child", _text(log))) == 2
    # The builder killed: the next report is built by the worker itself, and still shown.
    found = re.search(r"report builder (\d+) listening", text)
    assert found is not None
    os.kill(int(found.group(1)), signal.SIGKILL)
    by_unit = opener.open(f"http://127.0.0.1:{port}/dashboard/?{week}&by=unit", timeout=120)
    assert by_unit.status == 200 and "业主单位".encode() in by_unit.read()
    assert "report builder unreachable" in _text(log)


def test_one_worker_at_a_time_retires_and_none_retires_while_another_warms_up(tmp_path):
    """A worker takes its turn to retire only when no other has it and keeps it until it
    exits; a worker warming up holds the turn when it is free (none starts to retire
    meanwhile) and never waits for it."""
    retiring, other, fresh = (serving.WorkerTurn(tmp_path) for _ in range(3))
    assert retiring.taken_now()
    assert not other.taken_now()  # the other worker does not retire meanwhile
    with fresh.held_if_free() as held:  # does not wait for the retiring one
        assert not held
    assert retiring._fd is not None
    os.close(retiring._fd)  # it exits: the system releases the lock
    with fresh.held_if_free() as held:
        assert held
        assert not other.taken_now()  # none starts to retire while it warms up
    assert other.taken_now()  # free again once warmed up


def test_a_worker_warms_up_what_its_searches_keep(app, city):
    from mapservice.booking import catalogue, heldmirror

    engine = app.extensions["db_engine"]
    catalogue.forget(engine)
    heldmirror.forget(engine)
    serving.warm_worker(app)
    session = app.extensions["db_sessionmaker"]()
    try:
        kept = catalogue.kept(session)
        assert kept is not None and kept.token == catalogue.token(session)
    finally:
        session.close()
    if engine.dialect.name == "postgresql":
        mirror = heldmirror._MIRRORS.get(catalogue.engine_key(engine))
        assert mirror is not None and mirror.ready
        heldmirror.forget(engine)


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


class _Worker:
    """What :func:`serving.request_hooks` read of a gunicorn worker."""

    def __init__(self, turn: serving.WorkerTurn, base_mb: float) -> None:
        self.pid, self.retiring, self.turn, self.base_mb = os.getpid(), False, turn, base_mb
        self.log = _Log()


def test_a_worker_retires_as_the_request_that_made_it_grow_ends(tmp_path):
    """The check runs after each request too (gunicorn's ``post_request``), not only as the
    next one arrives: a worker grown by the dashboard retires while the others serve."""
    hooks = serving.request_hooks(max_growth_mb=10)
    worker = _Worker(serving.WorkerTurn(tmp_path), base_mb=serving.resident_mb())
    hooks["post_request"](worker, None, {}, None)
    assert not worker.retiring and worker.log.lines == []
    worker.base_mb = serving.resident_mb() - 12  # grown by 12 MB since forked
    other = serving.WorkerTurn(tmp_path)
    assert other.taken_now()  # another worker retiring: this one waits its turn
    hooks["post_request"](worker, None, {}, None)
    assert not worker.retiring
    assert other._fd is not None
    os.close(other._fd)  # that one exits
    hooks["post_request"](worker, None, {}, None)
    assert worker.retiring and "retires" in worker.log.lines[0]
    req = type("Req", (), {"must_close": False})()
    hooks["pre_request"](worker, req)
    assert req.must_close  # what arrives next on its connections is answered and closed


@pytest.mark.growth(1)
def test_a_builder_that_died_is_started_again_before_the_next_worker(db, make, city, server):
    """The builder SIGKILLed (as the kernel's out-of-memory killer would): the master starts
    a new one, on the same socket, before it forks the next worker (here soon: every worker
    outgrows an allowance of 1 MB), and the dashboard is built by it again."""
    committee, _period = city
    admin = make.admin(committee)
    port, log = server
    found = re.search(r"report builder (\d+) listening", _text(log))
    assert found is not None
    first = int(found.group(1))
    os.kill(first, signal.SIGKILL)
    opener = _opener(port, admin.username)  # its requests make workers retire, and fork
    deadline = time.time() + 60
    while time.time() < deadline and not re.search(r"report builder \d+ started", _text(log)):
        opener.open(f"http://127.0.0.1:{port}/healthz", timeout=60).read()
        time.sleep(0.2)
    restarted = re.search(
        rf"report builder {first} had died: report builder (\d+) started", _text(log)
    )
    assert restarted is not None, _text(log)[-3000:]
    second = int(restarted.group(1))
    assert second != first and isolated.alive(second) and not isolated.alive(first)
    before = len(re.findall(r"report built by builder child", _text(log)))
    week = "period=custom&start=2026-03-02&end=2026-03-08"
    page = opener.open(f"http://127.0.0.1:{port}/dashboard/?{week}", timeout=120).read()
    assert "球场".encode() in page
    assert len(re.findall(r"report built by builder child", _text(log))) == before + 1
