"""The booking engine against a brute-force oracle (Hypothesis stateful testing).

Random sequences of book / cancel / reschedule / book_series (both policies) / confirm /
decline at two small venues (one requiring approval), at a fixed ``now``. The oracle keeps, for
every capacity unit, one cell per minute naming the booking that holds it, and assigns each
accepted request the lowest-numbered units free for its whole time: exactly what the engine
promises. Engine and oracle must agree on every answer (accepted or refused, why, which units,
which status) and, after every step, on the whole state in the database.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import engine as booking_engine
from mapservice.core.errors import BookingConflict, DomainError, RuleViolation
from mapservice.db import writer
from mapservice.models import AuditEntry, Booking, BookingAllocation, Notification, User

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=TZ)  # a Tuesday morning; fixed: holds never expire
BASE = datetime(2026, 12, 1, 0, 0, tzinfo=TZ)  # minute 0 of the oracle's arrays
HORIZON_DAYS = 45  # series (3 weeks) plus the alternatives' search (8 days) fit well inside
OPEN, CLOSE = 8, 22
ACTIVE = ("pending", "confirmed")

#: The sequences run: ``--stateful-examples`` (make test: 30, make stress: 200).
SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    database=None,  # no example database written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def at(day: int, hour: int) -> datetime:
    """Local time on 2026-12-(day) (December has 31 days; the series stay inside it)."""
    return datetime(2026, 12, 1, hour, tzinfo=TZ) + timedelta(days=day - 1)


def minute(instant: datetime) -> int:
    return int((instant - BASE).total_seconds() // 60)


# ---------------------------------------------------------------- the oracle


@dataclass
class OBooking:
    venue: str
    group: str
    start: datetime
    end: datetime
    units: int
    status: str
    series: str | None
    unit_nos: list[int]


class Oracle:
    """Per venue, per unit, per minute: 0 when free, else the id of the booking holding it."""

    def __init__(self, capacities: dict[str, int]) -> None:
        self.capacities = capacities
        self.cells = {
            (v, u): [0] * (HORIZON_DAYS * 1440)
            for v, cap in capacities.items()
            for u in range(1, cap + 1)
        }
        self.bookings: dict[int, OBooking] = {}

    def free(self, venue: str, start: datetime, end: datetime, exclude: int = 0) -> list[int]:
        """Units free for the whole of ``[start, end)``, lowest first (``exclude``'s own cells
        count as free: a booking may move onto itself)."""
        a, b = minute(start), minute(end)
        assert 0 <= a < b <= HORIZON_DAYS * 1440, (start, end)
        return [
            u
            for u in range(1, self.capacities[venue] + 1)
            if all(c == 0 or c == exclude for c in self.cells[(venue, u)][a:b])
        ]

    def hold(self, bid: int, venue: str, units: list[int], start: datetime, end: datetime) -> None:
        a, b = minute(start), minute(end)
        for u in units:
            row = self.cells[(venue, u)]
            assert all(c == 0 or c == bid for c in row[a:b])
            row[a:b] = [bid] * (b - a)

    def release(self, bid: int) -> None:
        ob = self.bookings[bid]
        a, b = minute(ob.start), minute(ob.end)
        for u in ob.unit_nos:
            row = self.cells[(ob.venue, u)]
            assert all(c == bid for c in row[a:b])
            row[a:b] = [0] * (b - a)
        ob.unit_nos = []

    def judge(
        self, venue: str, start: datetime, end: datetime, units: int, exclude: int = 0
    ) -> tuple[str, list[int]]:
        """("rule", []) | ("conflict", []) | ("ok", unit numbers) for a rule-valid window."""
        if not 1 <= units <= self.capacities[venue]:
            return "rule", []
        free = self.free(venue, start, end, exclude)
        if len(free) < units:
            return "conflict", []
        return "ok", free[:units]

    def allocations(self) -> set[tuple[int, str, int, datetime, datetime]]:
        return {
            (bid, ob.venue, u, ob.start, ob.end)
            for bid, ob in self.bookings.items()
            for u in ob.unit_nos
        }


# ---------------------------------------------------------------- the world


def build_world(make: Any) -> dict[str, Any]:
    """Two badminton venues of one unit: a court (3 units, confirmed at once) and an indoor
    hall (2 units, requests pending until the owner decides). Groups: the owner's own, and
    two of another unit, each with a booker; the owner's secretary also books by proxy."""
    committee = make.committee(with_streets=False)
    owner = make.unit(committee, "体育中心")
    other = make.unit(committee, "邮政公司")
    g_own = make.group(committee, owner, "中心团支部")
    g_a = make.group(committee, other, "邮政一支部")
    g_b = make.group(committee, other, "邮政二支部")
    common = {
        "hours": f"Mon-Sun {OPEN:02d}:00-{CLOSE:02d}:00",
        "slot_minutes": 60,
        "min_duration_minutes": 60,
        "max_duration_minutes": 180,
        "max_days_ahead": 30,
        "min_notice_minutes": 60,
    }
    court = make.venue(owner, name="羽毛球场", capacity_units=3, **common)
    hall = make.venue(
        owner,
        name="室内羽毛球馆",
        capacity_units=2,
        requires_approval=True,
        lon=119.43,
        lat=32.20,
        **common,
    )
    return {
        "venues": {"court": court.id, "hall": hall.id},
        "capacities": {"court": 3, "hall": 2},
        "approval": {"court": False, "hall": True},
        "groups": {"own": g_own.id, "a": g_a.id, "b": g_b.id},
        "users": {
            "sec": make.secretary(owner, username="sec").id,
            "a": make.booker(g_a, username="booker-a").id,
            "b": make.booker(g_b, username="booker-b").id,
        },
    }


# who books: (user, group); the secretary runs both venues (exempt, never pending)
BOOKERS = {
    "a": ("a", "a"),
    "b": ("b", "b"),
    "own": ("sec", "own"),
    "proxy": ("sec", "b"),  # "一个电话": the owner books for a caller
}
# who may manage a booking of a group
MANAGERS = {"own": ["sec"], "a": ["a", "sec"], "b": ["b", "sec"]}

venues = st.sampled_from(["court", "hall"])
who = st.sampled_from(sorted(BOOKERS))
days = st.integers(2, 4)
hours = st.integers(9, 13)
lengths = st.integers(1, 3)
units_st = st.integers(1, 3)  # 3 on the hall (2 units) breaks the units rule
pick = st.integers(0, 10**6)

ANSWERS: Counter[str] = Counter()  # what happened, over all examples (reported by the test)


class BookingMachine(RuleBasedStateMachine):
    """Set ``world`` and ``db_engine`` on a subclass (see the test)."""

    world: dict[str, Any]
    db_engine: Engine

    def __init__(self) -> None:
        super().__init__()
        w = self.world
        self.s = Session(writer(self.db_engine), expire_on_commit=False)
        vids = list(w["venues"].values())
        # A fresh state per example: the world stays, its bookings go.
        booking_ids = select(Booking.id).where(Booking.venue_id.in_(vids))
        self.s.execute(delete(Notification).where(Notification.booking_id.in_(booking_ids)))
        self.s.execute(delete(BookingAllocation).where(BookingAllocation.venue_id.in_(vids)))
        self.s.execute(delete(AuditEntry).where(AuditEntry.action.like("booking.%")))
        self.s.execute(delete(Booking).where(Booking.venue_id.in_(vids)))
        self.s.commit()
        self.users = {k: self.s.get(User, uid) for k, uid in w["users"].items()}
        self.s.commit()
        self.venue_of = {vid: name for name, vid in w["venues"].items()}
        self.oracle = Oracle(w["capacities"])

    def teardown(self) -> None:
        self.s.rollback()
        self.s.close()

    # ------------------------------------------------------------ helpers

    def status_for(self, venue: str, user: str) -> str:
        """New and moved requests at an approval venue wait for the owner, unless the owner
        enters them."""
        return "pending" if self.world["approval"][venue] and user != "sec" else "confirmed"

    def chosen(self, n: int, pending: bool = False) -> int:
        """A booking by index; with ``pending``, a pending one when there is one."""
        ids = sorted(self.oracle.bookings)
        waiting = [i for i in ids if self.oracle.bookings[i].status == "pending"]
        ids = waiting if pending and waiting else ids
        return ids[n % len(ids)]

    def manager(self, bid: int, n: int) -> str:
        options = MANAGERS[self.oracle.bookings[bid].group]
        return options[n % len(options)]

    def check_alternatives(
        self, exc: BookingConflict, venue: str, start, end, units, moving: int = 0
    ) -> None:
        """Every proposal must really be free (the oracle says so) and of the same length; for
        a move, the moving booking's own units count as free (it may move onto itself)."""
        alts = exc.resolve(self.s)  # after the rollback, as the edges do
        for s, e in alts.windows:
            ls, le = s.astimezone(TZ), e.astimezone(TZ)
            assert e - s == end - start and ls.date() == le.date()
            assert OPEN <= ls.hour and le.hour * 60 + le.minute <= CLOSE * 60 and s > NOW
            free = self.oracle.free(venue, s, e, exclude=moving)
            assert len(free) >= units, ("proposed busy window", s, e)
        for option in alts.venues:
            other = self.venue_of[option.venue_id]
            assert other != venue
            assert len(self.oracle.free(other, start, end)) >= units, ("proposed busy venue",)

    def outcome_kind(self, error: DomainError | None) -> str:
        if error is None:
            return "ok"
        if isinstance(error, BookingConflict):
            return "conflict"
        assert isinstance(error, RuleViolation), error
        return "rule"

    # ------------------------------------------------------------ rules

    @rule(venue=venues, who=who, day=days, hour=hours, length=lengths, units=units_st)
    def book(self, venue: str, who: str, day: int, hour: int, length: int, units: int) -> None:
        user, group = BOOKERS[who]
        start, end = at(day, hour), at(day, hour + length)
        expected, numbers = self.oracle.judge(venue, start, end, units)
        try:
            b = booking_engine.book(
                self.s,
                self.users[user],
                self.world["venues"][venue],
                self.world["groups"][group],
                start,
                end,
                units=units,
                now=NOW,
            )
            self.s.commit()
        except BookingConflict as exc:
            self.s.rollback()
            assert expected == "conflict", (expected, "engine: conflict")
            self.check_alternatives(exc, venue, start, end, units)
            ANSWERS["book conflict"] += 1
            return
        except RuleViolation as exc:
            self.s.rollback()
            assert expected == "rule", (expected, [v.code for v in exc.violations])
            assert [v.code for v in exc.violations] == ["units"]
            ANSWERS["book rule"] += 1
            return
        assert expected == "ok", (expected, "engine booked", b.unit_numbers)
        assert b.unit_numbers == numbers, (b.unit_numbers, numbers)
        status = self.status_for(venue, user)
        assert b.status == status
        ANSWERS[f"book {status}"] += 1
        self.oracle.bookings[b.id] = OBooking(venue, group, start, end, units, status, None, [])
        self.oracle.hold(b.id, venue, numbers, start, end)
        self.oracle.bookings[b.id].unit_nos = numbers

    @rule(
        venue=venues,
        who=who,
        day=days,
        hour=hours,
        length=lengths,
        units=st.integers(1, 2),
        freq=st.sampled_from(["daily", "weekly"]),
        count=st.integers(1, 3),
        policy=st.sampled_from(["all_or_nothing", "skip_conflicts"]),
    )
    def book_series(
        self,
        venue: str,
        who: str,
        day: int,
        hour: int,
        length: int,
        units: int,
        freq: str,
        count: int,
        policy: str,
    ) -> None:
        user, group = BOOKERS[who]
        step = 1 if freq == "daily" else 7
        windows = [
            (at(day + i * step, hour), at(day + i * step, hour + length)) for i in range(count)
        ]
        # The oracle books the occurrences one after the other, tentatively.
        planned: list[tuple[str, list[int]]] = []
        tentative: list[int] = []
        for i, (s, e) in enumerate(windows):
            kind, numbers = self.oracle.judge(venue, s, e, units)
            planned.append((kind, numbers))
            if kind == "ok":
                self.oracle.hold(-(i + 1), venue, numbers, s, e)
                tentative.append(i)
        for i in tentative:  # undo the tentative holds
            s, e = windows[i]
            a, b = minute(s), minute(e)
            for u in planned[i][1]:
                self.oracle.cells[(venue, u)][a:b] = [0] * (b - a)
        rejected = policy == "all_or_nothing" and any(k != "ok" for k, _n in planned)
        try:
            result = booking_engine.book_series(
                self.s,
                self.users[user],
                self.world["venues"][venue],
                self.world["groups"][group],
                windows[0][0],
                windows[0][1],
                freq=freq,
                count=count,
                policy=policy,
                units=units,
                now=NOW,
            )
            self.s.commit()
        except booking_engine.SeriesRejected as exc:
            self.s.rollback()
            assert rejected, ("engine rejected the series", planned)
            got = [(o.start, o.end, self.outcome_kind(o.error)) for o in exc.outcomes]
            assert got == [(s, e, k) for (s, e), (k, _n) in zip(windows, planned, strict=True)]
            assert all(o.booking is None for o in exc.outcomes)
            ANSWERS["series rejected"] += 1
            return
        assert not rejected, ("engine booked an all-or-nothing series the oracle refuses", planned)
        got = [(o.start, o.end, self.outcome_kind(o.error)) for o in result.outcomes]
        assert got == [(s, e, k) for (s, e), (k, _n) in zip(windows, planned, strict=True)]
        status = self.status_for(venue, user)
        ANSWERS[
            f"series {policy} "
            + ("partly" if rejected or any(k != "ok" for k, _n in planned) else "whole")
        ] += 1
        for o, (kind, numbers) in zip(result.outcomes, planned, strict=True):
            if kind != "ok":
                assert o.booking is None
                continue
            b = o.booking
            assert b is not None and b.unit_numbers == numbers, (b and b.unit_numbers, numbers)
            assert b.status == status and b.series_id == result.series_id
            self.oracle.bookings[b.id] = OBooking(
                venue, group, o.start, o.end, units, status, result.series_id, []
            )
            self.oracle.hold(b.id, venue, numbers, o.start, o.end)
            self.oracle.bookings[b.id].unit_nos = numbers

    @precondition(lambda self: self.oracle.bookings)
    @rule(
        n=pick,
        m=pick,
        scope=st.sampled_from(["one", "one", "following", "series"]),
    )
    def cancel(self, n: int, m: int, scope: str) -> None:
        bid = self.chosen(n)
        ob = self.oracle.bookings[bid]
        user = self.manager(bid, m)
        if scope == "one" or ob.series is None:
            targets = [bid]
        else:
            targets = sorted(
                (
                    i
                    for i, o in self.oracle.bookings.items()
                    if o.series == ob.series
                    and o.status in ACTIVE
                    and (scope == "series" or o.start >= ob.start)
                ),
                key=lambda i: self.oracle.bookings[i].start,
            )
        refused = any(self.oracle.bookings[i].status not in ACTIVE for i in targets)
        try:
            done = booking_engine.cancel(self.s, self.users[user], bid, scope=scope, now=NOW)
            self.s.commit()
        except RuleViolation as exc:
            self.s.rollback()
            assert refused, ("engine refused a cancel", [v.code for v in exc.violations])
            assert [v.code for v in exc.violations] == ["not_active"]
            ANSWERS["cancel refused"] += 1
            return
        assert not refused, "engine cancelled an inactive booking"
        ANSWERS[f"cancel {scope}"] += 1
        assert sorted(b.id for b in done) == sorted(targets)
        for i in targets:
            self.oracle.release(i)
            self.oracle.bookings[i].status = "cancelled"

    @precondition(lambda self: self.oracle.bookings)
    @rule(
        n=pick,
        m=pick,
        day=days,
        hour=hours,
        length=lengths,
        units=st.one_of(st.none(), units_st),
    )
    def reschedule(
        self, n: int, m: int, day: int, hour: int, length: int, units: int | None
    ) -> None:
        bid = self.chosen(n)
        ob = self.oracle.bookings[bid]
        user = self.manager(bid, m)
        start, end = at(day, hour), at(day, hour + length)
        want = units or ob.units
        if ob.status not in ACTIVE:
            expected, numbers = "inactive", []
        else:
            expected, numbers = self.oracle.judge(ob.venue, start, end, want, exclude=bid)
        try:
            b = booking_engine.reschedule(
                self.s, self.users[user], bid, start, end, units=units, now=NOW
            )
            self.s.commit()
        except BookingConflict as exc:
            self.s.rollback()
            assert expected == "conflict", (expected, "engine: conflict")
            self.check_alternatives(exc, ob.venue, start, end, want, moving=bid)
            ANSWERS["reschedule conflict"] += 1
            return
        except RuleViolation as exc:
            self.s.rollback()
            codes = [v.code for v in exc.violations]
            assert expected in ("rule", "inactive"), (expected, codes)
            assert codes == (["not_active"] if expected == "inactive" else ["units"]), codes
            ANSWERS[f"reschedule {expected}"] += 1
            return
        assert expected == "ok", (expected, "engine moved it", b.unit_numbers)
        assert b.unit_numbers == numbers, (b.unit_numbers, numbers)
        self.oracle.release(bid)
        ob.start, ob.end, ob.units = start, end, want
        if self.world["approval"][ob.venue] and user != "sec":
            ob.status = "pending"
        self.oracle.hold(bid, ob.venue, numbers, start, end)
        ob.unit_nos = numbers
        assert b.status == ob.status
        ANSWERS["reschedule ok"] += 1

    @precondition(lambda self: self.oracle.bookings)
    @rule(n=pick, pending=st.booleans())
    def confirm(self, n: int, pending: bool) -> None:
        bid = self.chosen(n, pending)
        ob = self.oracle.bookings[bid]
        try:
            b = booking_engine.confirm(self.s, self.users["sec"], bid, now=NOW)
            self.s.commit()
        except RuleViolation as exc:
            self.s.rollback()
            assert ob.status != "pending", [v.code for v in exc.violations]
            assert [v.code for v in exc.violations] == ["not_pending"]
            ANSWERS["confirm refused"] += 1
            return
        assert ob.status == "pending", ("engine confirmed a", ob.status, "booking")
        ANSWERS["confirm ok"] += 1
        assert b.status == "confirmed" and b.unit_numbers == ob.unit_nos
        ob.status = "confirmed"

    @precondition(lambda self: self.oracle.bookings)
    @rule(n=pick, pending=st.booleans())
    def decline(self, n: int, pending: bool) -> None:
        bid = self.chosen(n, pending)
        ob = self.oracle.bookings[bid]
        try:
            b = booking_engine.decline(self.s, self.users["sec"], bid, "场地另有安排", now=NOW)
            self.s.commit()
        except RuleViolation as exc:
            self.s.rollback()
            assert ob.status != "pending", [v.code for v in exc.violations]
            assert [v.code for v in exc.violations] == ["not_pending"]
            ANSWERS["decline refused"] += 1
            return
        assert ob.status == "pending", ("engine declined a", ob.status, "booking")
        ANSWERS["decline ok"] += 1
        assert b.status == "declined" and b.unit_numbers == []
        self.oracle.release(bid)
        ob.status = "declined"

    # ------------------------------------------------------------ the whole state

    @invariant()
    def database_equals_oracle(self) -> None:
        vids = list(self.world["venues"].values())
        rows = self.s.execute(
            select(
                BookingAllocation.booking_id,
                BookingAllocation.venue_id,
                BookingAllocation.unit_no,
                BookingAllocation.start_at,
                BookingAllocation.end_at,
            ).where(BookingAllocation.venue_id.in_(vids))
        ).all()
        in_db = {(bid, self.venue_of[vid], u, s, e) for bid, vid, u, s, e in rows}
        assert len(rows) == len(in_db)
        assert in_db == self.oracle.allocations(), (
            sorted(in_db - self.oracle.allocations()),
            sorted(self.oracle.allocations() - in_db),
        )
        statuses = dict(
            self.s.execute(
                select(Booking.id, Booking.status).where(Booking.venue_id.in_(vids))
            ).all()
        )
        assert statuses == {bid: ob.status for bid, ob in self.oracle.bookings.items()}
        self.s.rollback()  # SQLite: give the write lock back between steps


def test_engine_agrees_with_a_brute_force_oracle(
    make: Any, db: Session, engine: Engine, db_kind: str, request: Any
) -> None:
    world = build_world(make)
    db.rollback()
    machine = type("Machine", (BookingMachine,), {"world": world, "db_engine": engine})
    ANSWERS.clear()
    examples = int(request.config.getoption("--stateful-examples"))
    run_state_machine_as_test(machine, settings=settings(SETTINGS, max_examples=examples))
    line = f"[stateful {db_kind}] " + ", ".join(f"{k}: {v}" for k, v in sorted(ANSWERS.items()))
    print(line, file=sys.stderr)
    request.node.user_properties.append(("answers", dict(ANSWERS)))
    # Not vacuous: the runs reached the answers that matter.
    for answer in (
        "book confirmed",
        "book pending",
        "book conflict",
        "reschedule ok",
        "confirm ok",
    ):
        assert ANSWERS[answer] > 0, line
