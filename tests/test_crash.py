"""Crash safety: kill -9 the server in the middle of a booking load, several rounds, on each
database. Afterwards every booking whose request got a success answer is there, no series is
half-written, and no unit is double-booked."""

from __future__ import annotations

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


def start_server(database_url: str, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAPSERVICE_INSTANCE": str(tmp),
        "MAPSERVICE_SECRET_KEY": "crash",
        "MAPSERVICE_API_RATE_LIMIT": "1000000 per minute",
    }
    exe = str(Path(sys.executable).parent / "mapservice")
    with (tmp / "server.log").open("ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [exe, "serve", "--port", str(port), "--threads", "8"], env=env, stdout=log, stderr=log
        )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


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


def test_kill_9_mid_load_loses_nothing_answered(db, make, database_url, tmp_path):
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    group = make.group(committee, unit, "移动团支部")
    venues = [
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
    _t, token = create_token(db, None, booker, ["read", "book"])
    db.commit()
    base_day = (datetime.now(TZ) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    answered: list[int] = []  # booking ids whose request got 201
    series_ok: list[str] = []
    rng = random.Random(7)
    lock = threading.Lock()
    for round_no in range(ROUNDS):
        port = free_port()
        server = start_server(database_url, tmp_path, port)
        url = f"http://127.0.0.1:{port}/api/v1/bookings"
        stop = threading.Event()

        def worker(seed: float, stop: threading.Event = stop, url: str = url) -> None:
            r = random.Random(seed)
            while not stop.is_set():
                start = base_day + timedelta(days=r.randrange(0, 20), hours=r.randrange(0, 23))
                body: dict[str, Any] = {
                    "venue_id": r.choice(venues).id,
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=1)).isoformat(),
                }
                if r.random() < 0.3:
                    body["repeat"] = {"freq": "weekly", "count": 3, "policy": "all_or_nothing"}
                try:
                    status, data = post(url, token, body)
                except OSError:
                    return  # the server is gone
                if status == 201:
                    with lock:
                        answered.extend(b["id"] for b in data["bookings"])
                        if data["series_id"]:
                            series_ok.append(data["series_id"])

        threads = [threading.Thread(target=worker, args=(rng.random(),)) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        time.sleep(1.5 + rng.random())
        os.kill(server.pid, signal.SIGKILL)  # mid-load, no warning
        server.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        assert answered, f"round {round_no}: no booking was answered before the kill"
    # Restart once more and read through the server: it comes back and serves.
    port = free_port()
    server = start_server(database_url, tmp_path, port)
    try:
        status = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/venues", timeout=5).status
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    reload(db)
    stored = {b.id: b for b in db.scalars(select(Booking))}
    missing = [i for i in answered if i not in stored]
    assert missing == [], f"{len(missing)} answered bookings lost"
    # No series half-written: an all-or-nothing series has all three occurrences or none.
    per_series = Counter(b.series_id for b in stored.values() if b.series_id)
    assert all(n == 3 for n in per_series.values()), per_series
    assert set(series_ok) <= set(per_series)
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
    print(
        f"crash rounds {ROUNDS}: answered {len(answered)}, stored {len(stored)},"
        f" series {len(per_series)}",
        file=sys.stderr,
    )
