"""Crash safety: kill -9 the server in the middle of a booking load, several rounds, on each
database; and, separately, kill -9 one worker process of the multi-process server (gunicorn)
while the others go on serving. Afterwards every booking whose request got a success answer is
there, no series is half-written, and no unit is double-booked."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mapservice.core import faults
from mapservice.models import Booking, BookingAllocation
from mapservice.operations.tokens import create_token
from tests.conftest import reload

TZ = ZoneInfo("Asia/Shanghai")
ROUNDS = 3
WORKERS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port``: a free port can
    be taken by another program (the other database's suite runs at the same time) between
    ``free_port`` and the server binding it, and then /healthz answers from that program."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # 127.0.0.1, LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    try:
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # it exited
        return False


def start_server(
    database_url: str,
    tmp: Path,
    port: int | None = None,
    workers: int = 0,
    fault_names: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    threads: int = 8,
) -> tuple[subprocess.Popen[bytes], int]:
    """``mapservice serve`` on ``port`` (a free one if None, another free one if a program
    took it first); the server and its port once it answers. ``fault_names``: test-only
    switches (``mapservice.core.faults``) turned on in the server's process by code, since no
    setting can. ``env``: more settings. The server leads its own process group
    (``os.killpg`` ends it with its workers)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAPSERVICE_INSTANCE": str(tmp),
        "MAPSERVICE_SECRET_KEY": "crash",
        "MAPSERVICE_API_RATE_LIMIT": "1000000 per minute",
        **(env or {}),
    }
    command = [str(Path(sys.executable).parent / "mapservice")]
    if fault_names:
        command = [
            sys.executable,
            "-c",
            "import sys; from mapservice.core import faults;"
            " faults.enable(*sys.argv[1].split(',')); sys.argv[1:2] = [];"
            " from mapservice.cli import main; main()",
            ",".join(fault_names),
        ]
    for _attempt in range(3):
        at = port or free_port()
        with (tmp / "server.log").open("ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [
                    *command,
                    "serve",
                    "--port",
                    str(at),
                    "--threads",
                    str(threads),
                    "--workers",
                    str(workers),
                ],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{at}/healthz", timeout=1).read()
            except OSError:
                time.sleep(0.1)
                continue
            if listens(proc.pid, at):
                return proc, at
            break  # another program answers on that port
        proc.kill()
        proc.wait(timeout=10)
        if port is not None:
            break
    raise RuntimeError(f"server did not start (see {tmp / 'server.log'})")


def post(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the master's children but its report builder."""
    from mapservice.stats.isolated import is_builder

    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(p) for p in children if not is_builder(int(p))]


def wait_for_workers(master: int, n: int, avoid: frozenset[int] = frozenset()) -> list[int]:
    deadline = time.time() + 30
    while time.time() < deadline:
        pids = worker_pids(master)
        if len(pids) == n and not set(pids) & avoid:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"gunicorn has workers {worker_pids(master)}, expected {n} new ones")


class Load:
    """Booking threads against a server: each keeps the ids of the bookings it was answered
    201 for (and the series ids), until stopped or the server is gone."""

    def __init__(self, db: Any, make: Any) -> None:
        committee = make.committee(with_streets=False)
        unit = make.unit(committee, "移动公司")
        group = make.group(committee, unit, "移动团支部")
        self.venues = [
            make.venue(
                unit,
                name=f"场地{i}",
                capacity_units=2,
                hours="Mon-Sun 00:00-24:00",
                min_notice_minutes=0,
                max_days_ahead=120,
            )
            for i in range(3)
        ]
        booker = make.booker(group, username="booker")
        _t, self.token = create_token(db, None, booker, ["read", "book"])
        db.commit()
        self.base_day = (datetime.now(TZ) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        self.answered: list[int] = []
        self.series_ok: list[str] = []
        self.refused_connections = 0
        self.unexpected: Counter[int] = Counter()  # answers other than 201, 409, 422
        self.lock = threading.Lock()

    def start(self, port: int, seed: int, *, until_gone: bool = True) -> threading.Event:
        url = f"http://127.0.0.1:{port}/api/v1/bookings"
        stop = threading.Event()
        rng = random.Random(seed)

        def worker(seed: float) -> None:
            r = random.Random(seed)
            while not stop.is_set():
                start = self.base_day + timedelta(days=r.randrange(0, 20), hours=r.randrange(0, 23))
                body: dict[str, Any] = {
                    "venue_id": r.choice(self.venues).id,
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=1)).isoformat(),
                }
                if r.random() < 0.3:
                    body["repeat"] = {"freq": "weekly", "count": 3, "policy": "all_or_nothing"}
                try:
                    status, data = post(url, self.token, body)
                except (OSError, http.client.HTTPException):
                    # Refused, reset, or cut off mid-answer (IncompleteRead): the request's
                    # outcome is unknown to the client, so it is not counted as answered.
                    if until_gone:
                        return  # the server is gone
                    with self.lock:  # a request in flight on the killed worker
                        self.refused_connections += 1
                    continue
                if status not in (201, 409, 422):
                    with self.lock:
                        self.unexpected[status] += 1
                if status == 201:
                    with self.lock:
                        self.answered.extend(b["id"] for b in data["bookings"])
                        if data["series_id"]:
                            self.series_ok.append(data["series_id"])

        self.threads = [
            threading.Thread(target=worker, args=(rng.random(),)) for _ in range(WORKERS)
        ]
        for t in self.threads:
            t.start()
        self.stop = stop
        return stop

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def lost(self, db: Any) -> list[int]:
        """The answered bookings the database does not hold."""
        reload(db)
        stored = set(db.scalars(select(Booking.id)))
        return [i for i in self.answered if i not in stored]

    def check(self, db: Any) -> tuple[int, int]:
        """Every answered booking stored, no half-written series, no unit double-booked."""
        missing = self.lost(db)
        assert missing == [], f"{len(missing)} answered bookings lost"
        stored = {b.id: b for b in db.scalars(select(Booking))}
        # No series half-written: an all-or-nothing series has all three occurrences or none.
        per_series = Counter(b.series_id for b in stored.values() if b.series_id)
        assert all(n == 3 for n in per_series.values()), per_series
        assert set(self.series_ok) <= set(per_series)
        # No unit double-booked, and every booking holds its units.
        spans: dict[tuple[int, int], list[tuple[datetime, datetime]]] = {}
        for v, n, s, e in db.execute(
            select(
                BookingAllocation.venue_id,
                BookingAllocation.unit_no,
                BookingAllocation.start_at,
                BookingAllocation.end_at,
            )
        ):
            spans.setdefault((v, n), []).append((s, e))
        for intervals in spans.values():
            intervals.sort()
            assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:], strict=False))
        held = Counter(a.booking_id for a in db.scalars(select(BookingAllocation)))
        assert all(held[b.id] == b.units for b in stored.values())
        return len(stored), len(per_series)


def test_kill_9_mid_load_loses_nothing_answered(db, make, database_url, tmp_path):
    load = Load(db, make)
    rng = random.Random(7)
    for round_no in range(ROUNDS):
        server, port = start_server(database_url, tmp_path)
        load.start(port, round_no)
        time.sleep(1.5 + rng.random())
        os.kill(server.pid, signal.SIGKILL)  # mid-load, no warning
        server.wait(timeout=10)
        load.join()
        assert load.answered, f"round {round_no}: no booking was answered before the kill"
    # Restart once more and read through the server: it comes back and serves.
    server, port = start_server(database_url, tmp_path)
    try:
        status = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/venues", timeout=5).status
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    stored, series = load.check(db)
    print(
        f"crash rounds {ROUNDS}: answered {len(load.answered)}, stored {stored}, series {series}",
        file=sys.stderr,
    )


def test_kill_9_finds_a_lost_booking_when_the_server_answers_before_committing(
    db, make, database_url, tmp_path
):
    """Negative control: with the test-only switch ``ANSWER_BEFORE_COMMIT`` the server
    answers 201 and commits half a second later; a kill -9 mid-load then loses answered
    bookings, and the check above sees it."""
    load = Load(db, make)
    server, port = start_server(database_url, tmp_path, fault_names=(faults.ANSWER_BEFORE_COMMIT,))
    try:
        load.start(port, 5)
        deadline = time.time() + 20
        while not load.answered and time.time() < deadline:
            time.sleep(0.05)
        assert load.answered, "no booking was answered"
        time.sleep(0.1)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        load.join()
    lost = load.lost(db)
    assert lost, f"answered {len(load.answered)}, none lost: the kill -9 check cannot fail"
    print(f"control: answered {len(load.answered)}, lost {len(lost)}", file=sys.stderr)


def test_kill_9_one_worker_the_others_serve_on(db, make, database_url, tmp_path):
    """gunicorn with two workers: kill -9 one mid-load, three times. The master starts a new
    worker each time, the load goes on throughout (only the killed worker's requests in
    flight fail), and nothing answered is lost."""
    load = Load(db, make)
    server, port = start_server(database_url, tmp_path, workers=2)
    rng = random.Random(11)
    try:
        pids = wait_for_workers(server.pid, 2)
        load.start(port, 99, until_gone=False)
        for round_no in range(ROUNDS):
            time.sleep(1.0 + rng.random())
            before = len(load.answered)
            victim = pids[round_no % 2]
            os.kill(victim, signal.SIGKILL)
            pids = wait_for_workers(server.pid, 2, avoid=frozenset({victim}))
            time.sleep(1.0)
            assert len(load.answered) > before, f"round {round_no}: no booking after the kill"
        load.join()
        assert server.poll() is None, "the master died with its worker"
        assert load.unexpected == Counter(), load.unexpected
        status = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/venues", timeout=5).status
        assert status == 200
    finally:
        if hasattr(load, "stop"):
            load.stop.set()
        server.terminate()
        server.wait(timeout=20)
    stored, series = load.check(db)
    print(
        f"worker kills {ROUNDS}: answered {len(load.answered)}, stored {stored},"
        f" series {series}, requests cut off {load.refused_connections}",
        file=sys.stderr,
    )
