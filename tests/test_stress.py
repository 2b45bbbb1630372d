"""Stress: tens of thousands of overlapping booking attempts, checked from the database alone.

``make stress`` runs this module with ``--stress-attempts 20000`` on each database: half the
attempts from 16 threads, half from 16 spawned processes, at venues of capacity 1 and 3, as
single bookings and weekly series (skipping conflicts, or all or nothing), each attempt as
the API makes it (who asks read first, the engine's two steps). Then, read back from the
database only (:func:`tests.test_booking_concurrency.check_database`): no instant over a
venue's capacity, no unit assigned twice at once, every booking holding exactly its units,
no false refusal (a refused occurrence whose units are free in the final state), no error.
The summary, with the date, replaces this database's block of ``docs/reliability.md``.

In ``make test`` the threads' run fires a few hundred attempts and writes nothing.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.core.errors import BookingConflict, RuleViolation
from mapservice.db import writer
from tests.test_booking_concurrency import (
    CLOSE,
    NOW,
    OPEN,
    TZ,
    Attempt,
    actor_apart,
    attempt_as_api,
    build_world,
    fire_and_check,
    report,
    run_processes,
    run_threads,
)

CAPACITIES = (1, 3, 1, 3)
DAYS = tuple(range(2, 8))  # Wednesday 2 to Monday 7 December 2026; series go a week on

SERIES_SHARE = 0.25
SMOKE_ATTEMPTS = 400
DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


@dataclass(frozen=True)
class Request:
    """One request: a single booking (``policy`` empty) or a weekly series, as its
    occurrences (one :class:`Attempt` each, checked one by one)."""

    occurrences: tuple[Attempt, ...]
    policy: str = ""


def make_requests(world: dict[str, Any], n: int, seed: int, first_idx: int) -> list[Request]:
    """Requests adding up to at least ``n`` occurrences: aligned 1–2 h windows inside opening
    hours, 1–2 units (never more than the venue has), a quarter weekly series of 2 or 3."""
    rng = random.Random(seed)
    out: list[Request] = []
    idx, total = first_idx, 0
    while total < n:
        venue_id, cap = rng.choice(world["venues"])
        booker_id, group_id = rng.choice(world["actors"])
        actor_id = world["secretary"] if rng.random() < 0.125 else booker_id
        hours = rng.choice((1, 2))
        start = datetime(
            2026, 12, rng.choice(DAYS), rng.randrange(OPEN, CLOSE - hours + 1), tzinfo=TZ
        )
        units = rng.randint(1, min(2, cap))
        series = rng.random() < SERIES_SHARE
        count = rng.choice((2, 3)) if series else 1
        occ = []
        for k in range(count):
            s = start + timedelta(weeks=k)
            occ.append(
                Attempt(
                    idx, venue_id, cap, actor_id, group_id, s, s + timedelta(hours=hours), units
                )
            )
            idx += 1
        policy = rng.choice(("skip_conflicts", "all_or_nothing")) if series else ""
        out.append(Request(tuple(occ), policy))
        total += count
    return out


def stress_once(eng: Engine, r: Request) -> list[tuple[int, str, int | None]]:
    """One request as the API makes it; a result per occurrence: ``ok`` (with its booking),
    ``conflict``, ``rule:…``, ``error:…``, or ``rolled_back`` (bookable, but its
    all-or-nothing series was refused)."""
    if not r.policy:
        return [attempt_as_api(eng, r.occurrences[0])]
    a = r.occurrences[0]
    with Session(writer(eng), expire_on_commit=False) as session:
        actor = actor_apart(session, a.actor_id)
        try:
            result = booking_engine.book_series(
                session,
                actor,
                a.venue_id,
                a.group_id,
                a.start,
                a.end,
                freq="weekly",
                count=len(r.occurrences),
                policy=r.policy,
                units=a.units,
                now=NOW,
            )
            session.commit()
            outcomes = result.outcomes
        except booking_engine.SeriesRejected as exc:
            session.rollback()
            outcomes = exc.outcomes
        except Exception as exc:  # reported and failed by the test, never swallowed
            session.rollback()
            return [(o.idx, f"error:{type(exc).__name__}: {exc}", None) for o in r.occurrences]
    if len(outcomes) != len(r.occurrences):
        return [(o.idx, f"error:{len(outcomes)} outcomes", None) for o in r.occurrences]
    out: list[tuple[int, str, int | None]] = []
    for o, got in zip(r.occurrences, outcomes, strict=True):
        if got.booking is not None:
            out.append((o.idx, "ok", got.booking.id))
        elif isinstance(got.error, BookingConflict):
            out.append((o.idx, "conflict", None))
        elif isinstance(got.error, RuleViolation):
            out.append((o.idx, "rule:" + ",".join(v.code for v in got.error.violations), None))
        elif got.error is None:
            out.append((o.idx, "rolled_back", None))
        else:
            out.append((o.idx, f"error:{got.error!r}", None))
    return out


def test_stress(make: Any, db: Session, database_url: str, db_kind: str, request: Any) -> None:
    asked = int(request.config.getoption("--stress-attempts"))
    n = asked or SMOKE_ATTEMPTS
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    # make test's smoke run: threads only (spawning 16 processes costs minutes on 2 cores, and
    # tests/test_booking_concurrency.py already races processes); make stress runs both.
    runs = (("threads", run_threads), ("processes", run_processes))
    for i, (kind, run) in enumerate(runs if asked else runs[:1]):
        world = build_world(make, f"s{kind[0]}", CAPACITIES, slug=f"stress-{kind}")
        db.rollback()
        requests = make_requests(world, n // 2, seed=20261203 + i, first_idx=i * 10 * n)
        attempts = [a for r in requests for a in r.occurrences]
        figures, results, wall = fire_and_check(
            db, world, attempts, run, database_url, requests, stress_once
        )
        figures["series_requests"] = sum(1 for r in requests if r.policy)
        figures["rolled_back"] = sum(1 for r in results if r[1] == "rolled_back")
        lines.append(report(request, f"stress {db_kind} {kind}", figures, wall))
        rows.append({"kind": kind, "wall": wall, **figures})
    if asked:
        write_doc(db_kind, rows)
    for line, f in zip(lines, rows, strict=True):
        detail = f["_detail"]
        assert f["errors"] == 0, f"{line}\n{detail['errors']}"
        assert f["rule_violations"] == 0, f"{line}\n{detail['rules']}"
        assert detail["db_ids_match"], f"{line}: the database holds other bookings than accepted"
        assert f["capacity_excess"] == 0 and f["unit_overlaps"] == 0, line
        assert f["bad_bookings"] == 0, f"{line}\n{detail['bad_bookings']}"
        assert f["false_refusals"] == 0, f"{line}\n{detail['false_refusals']}"
        assert f["accepted"] + f["refused"] + f["rolled_back"] == f["attempts"], line
        assert f["accepted"] > 0 and f["refused"] > 0, f"{line}: the load did not contend"
    assert sum(f["attempts"] for f in rows) >= (n if asked else n // 2)


# ---------------------------------------------------------------- docs/reliability.md


def write_doc(db_kind: str, rows: list[dict[str, Any]]) -> None:
    """Replace this database's generated block of docs/reliability.md with the run's figures."""
    begin, end = f"<!-- stress:{db_kind}:begin -->", f"<!-- stress:{db_kind}:end -->"
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[db_kind]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=DOC.parent
    ).stdout.strip()
    load = (
        " ".join(Path("/proc/loadavg").read_text().split()[:3])
        if Path("/proc/loadavg").exists()
        else "?"
    )
    block = [
        begin,
        f"**{label}**, `make stress` of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        f" (commit {commit or '?'}, {os.cpu_count()} CPUs, load {load} at the end;"
        " generated by `tests/test_stress.py`):",
        "",
        "| workers | attempts (series requests) | accepted | refused"
        " | rolled back with their series | over capacity | unit double-assignments"
        " | bookings not holding their units"
        " | false refusals | errors | wall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in rows:
        block.append(
            f"| 16 {f['kind']} | {f['attempts']:,} ({f['series_requests']:,}) | {f['accepted']:,}"
            f" | {f['refused']:,} | {f['rolled_back']:,} | {f['capacity_excess']}"
            f" | {f['unit_overlaps']}"
            f" | {f['bad_bookings']} | {f['false_refusals']} | {f['errors'] + f['rule_violations']}"
            f" | {f['wall']:.0f} s |"
        )
    block.append(end)
    text = DOC.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pattern.search(text) is None:
        raise AssertionError(f"{DOC} has no {begin} … {end} block")
    DOC.write_text(pattern.sub(lambda _m: "\n".join(block), text, count=1))
    print(f"written: {DOC}", file=sys.stderr)
