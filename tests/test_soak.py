"""Soak: 32 clients book, cancel and reschedule through the API of the production server
(gunicorn, two worker processes) for a bounded time, on each database.

Afterwards: 0 errors (every answer is one the API documents for that request: 201/409/422 for a
booking, 200/409/422 for a cancel or a reschedule; never a 5xx, never a dropped connection),
0 overlapping allocations, the database holds exactly what the answers said (every booking
answered 201 is there, with the status and times of its last successful change), and the audit
log accounts for every change: one ``booking.create`` per booking created, one
``booking.cancel`` per booking cancelled, one ``booking.reschedule`` per successful move, and
nothing else.

``make test`` runs it for ``--soak-seconds`` (default 15 s) per database; ``make soak`` for the
full five minutes.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mapservice.models import AuditEntry, Booking, BookingAllocation
from mapservice.operations.tokens import create_token
from tests.conftest import reload
from tests.test_crash import start_server, wait_for_workers

TZ = ZoneInfo("Asia/Shanghai")
CLIENTS = 32
DAYS = 10  # the window everyone competes for: dense enough to conflict often

OK = {"book": {201, 409, 422}, "cancel": {200, 409, 422}, "reschedule": {200, 409, 422}}


@dataclass
class Held:
    venue_id: int
    start: str
    end: str
    series_id: str | None
    status: str = "confirmed"
    moves: int = 0


@dataclass
class Tally:
    """One client's answers and what they said about the world."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    mine: dict[int, Held] = field(default_factory=dict)
    created: int = 0
    cancelled: int = 0
    moved: int = 0


class Client:
    def __init__(self, port: int, token: str, venues: list[int], base: datetime, seed: int):
        self.port, self.token, self.venues, self.base = port, token, venues, base
        self.rnd = random.Random(seed)
        self.tally = Tally()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, kind: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        t0 = time.perf_counter()
        try:
            self.conn.request("POST", path, body=json.dumps(body), headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.tally.errors.append(f"{kind} {path}: {exc!r}")
            return -1, None
        self.tally.latencies.append(time.perf_counter() - t0)
        self.tally.answers[(kind, resp.status)] += 1
        if resp.status not in OK[kind]:
            self.tally.errors.append(f"{kind} {path}: {resp.status} {raw[:300]!r}")
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            self.tally.errors.append(f"{kind} {path}: not JSON: {raw[:200]!r}")
            return resp.status, None

    def slot(self) -> tuple[str, str]:
        start = self.base + timedelta(
            days=self.rnd.randrange(DAYS), hours=self.rnd.randrange(8, 22)
        )
        hours = self.rnd.choice((1, 1, 2))
        return start.isoformat(), (start + timedelta(hours=hours)).isoformat()

    def live(self) -> list[int]:
        return [i for i, h in self.tally.mine.items() if h.status == "confirmed"]

    def book(self) -> None:
        start, end = self.slot()
        body: dict[str, Any] = {
            "venue_id": self.rnd.choice(self.venues),
            "start": start,
            "end": end,
            "units": self.rnd.choice((1, 1, 1, 2)),
            "purpose": "soak",
        }
        if self.rnd.random() < 0.2:
            body["repeat"] = {
                "freq": self.rnd.choice(("daily", "weekly")),
                "count": self.rnd.choice((2, 3)),
                "policy": self.rnd.choice(("all_or_nothing", "skip_conflicts")),
            }
        status, data = self.call("book", "/api/v1/bookings", body)
        if status == 201:
            for b in data["bookings"]:
                self.tally.mine[b["id"]] = Held(
                    b["venue_id"], b["start"], b["end"], data.get("series_id")
                )
                self.tally.created += 1

    def cancel(self) -> None:
        live = self.live()
        if not live:
            return self.book()
        bid = self.rnd.choice(live)
        scope = (
            "one"
            if self.tally.mine[bid].series_id is None
            else self.rnd.choice(("one", "following", "series"))
        )
        status, data = self.call(
            "cancel", f"/api/v1/bookings/{bid}/cancel", {"scope": scope, "reason": "soak"}
        )
        if status == 200:
            for b in data["bookings"]:
                held = self.tally.mine[b["id"]]
                if held.status != "cancelled":
                    held.status = "cancelled"
                    self.tally.cancelled += 1
        return None

    def reschedule(self) -> None:
        live = self.live()
        if not live:
            return self.book()
        bid = self.rnd.choice(live)
        start, end = self.slot()
        status, data = self.call(
            "reschedule", f"/api/v1/bookings/{bid}/reschedule", {"start": start, "end": end}
        )
        if status == 200:
            held = self.tally.mine[bid]
            held.start, held.end = data["start"], data["end"]
            held.moves += 1
            self.tally.moved += 1
        return None

    def run(self, deadline: float) -> None:
        actions = (self.book, self.cancel, self.reschedule)
        try:
            while time.perf_counter() < deadline:
                self.rnd.choices(actions, (0.5, 0.25, 0.25))[0]()
        except Exception as exc:  # a broken answer is an error, not a hung thread
            self.tally.errors.append(f"client crashed: {exc!r}")
        finally:
            self.conn.close()


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--soak-seconds"))


def test_soak_mixed_booking_cancelling_rescheduling(
    db, make, database_url, tmp_path, soak_seconds, db_kind
):
    committee = make.committee(with_streets=False)
    units = [make.unit(committee, name) for name in ("移动公司", "邮政公司")]
    venues = [
        make.venue(
            units[i % 2],
            name=f"球场{i}",
            capacity_units=1 + i % 3,
            hours="Mon-Sun 00:00-24:00",
            min_notice_minutes=0,
            max_days_ahead=120,
        ).id
        for i in range(6)
    ]
    groups = [make.group(committee, units[i % 2], f"团支部{i}") for i in range(8)]
    tokens = []
    for i in range(CLIENTS):
        booker = make.booker(groups[i % len(groups)], username=f"booker{i}")
        tokens.append(create_token(db, None, booker, ["read", "book"])[1])
    db.commit()
    audit_before = db.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
    base = (datetime.now(TZ) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    server, port = start_server(database_url, tmp_path, workers=2)
    try:
        wait_for_workers(server.pid, 2)
        clients = [Client(port, tokens[i], venues, base, seed=i) for i in range(CLIENTS)]
        deadline = time.perf_counter() + soak_seconds
        threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=soak_seconds + 120)
        wall = time.perf_counter() - t0
        assert not any(t.is_alive() for t in threads), "a client hung"
        assert server.poll() is None, "the server died"
    finally:
        server.terminate()
        server.wait(timeout=20)

    tallies = [c.tally for c in clients]
    errors = [e for t in tallies for e in t.errors]
    answers: Counter[tuple[str, int]] = sum((t.answers for t in tallies), Counter())
    requests = sum(answers.values())
    assert errors == [], f"{len(errors)} errors, first: {errors[:5]}"
    # The load really mixed the three kinds, with successes and refusals.
    assert answers[("book", 201)] and answers[("book", 409)], answers
    assert answers[("cancel", 200)] and answers[("reschedule", 200)], answers

    reload(db)
    mine = {bid: h for t in tallies for bid, h in t.mine.items()}
    stored = {b.id: b for b in db.scalars(select(Booking).where(Booking.venue_id.in_(venues)))}
    assert set(stored) == set(mine), (
        f"{len(set(mine) - set(stored))} answered bookings missing,"
        f" {len(set(stored) - set(mine))} never answered"
    )
    wrong = [
        bid
        for bid, h in mine.items()
        if stored[bid].status != h.status
        or stored[bid].start_at != datetime.fromisoformat(h.start)
        or stored[bid].end_at != datetime.fromisoformat(h.end)
    ]
    assert wrong == [], f"{len(wrong)} bookings differ from their last answer, e.g. {wrong[:3]}"

    # No unit held twice at any instant (live bookings' allocations), and each live booking
    # holds its units; cancelled ones hold none.
    spans: dict[tuple[int, int], list[tuple[datetime, datetime]]] = {}
    held_by: Counter[int] = Counter()
    for v, n, s, e, bid in db.execute(
        select(
            BookingAllocation.venue_id,
            BookingAllocation.unit_no,
            BookingAllocation.start_at,
            BookingAllocation.end_at,
            BookingAllocation.booking_id,
        ).where(BookingAllocation.venue_id.in_(venues))
    ):
        spans.setdefault((v, n), []).append((s, e))
        held_by[bid] += 1
    overlaps = 0
    for intervals in spans.values():
        intervals.sort()
        overlaps += sum(1 for a, b in zip(intervals, intervals[1:], strict=False) if b[0] < a[1])
    assert overlaps == 0
    assert all(
        held_by[bid] == (b.units if b.status == "confirmed" else 0) for bid, b in stored.items()
    )

    # The audit log: exactly one entry per change answered, nothing for refusals.
    audit = Counter(
        (action, oid)
        for action, oid in db.execute(
            select(AuditEntry.action, AuditEntry.object_id).where(AuditEntry.id > audit_before)
        )
    )
    expected: Counter[tuple[str, int]] = Counter()
    for bid, h in mine.items():
        expected[("booking.create", bid)] += 1
        if h.status == "cancelled":
            expected[("booking.cancel", bid)] += 1
        if h.moves:
            expected[("booking.reschedule", bid)] += h.moves
    assert audit == expected, (audit - expected, expected - audit)

    lat = sorted(x for t in tallies for x in t.latencies)
    p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
    summary = {
        "database": db_kind,
        "seconds": round(wall, 1),
        "clients": CLIENTS,
        "requests": requests,
        "per_s": round(requests / wall, 1),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "answers": {f"{k} {s}": n for (k, s), n in sorted(answers.items())},
        "bookings_created": sum(t.created for t in tallies),
        "cancelled": sum(t.cancelled for t in tallies),
        "rescheduled": sum(t.moved for t in tallies),
        "audit_entries": sum(audit.values()),
        "errors": len(errors),
        "overlaps": overlaps,
    }
    print(f"soak: {json.dumps(summary, ensure_ascii=False)}", file=sys.stderr)
