"""Issue 20's "Done when": 32 sign-ups at once at an activity with room for 10 people (mixed
headcounts), on both databases — the capacity never exceeded, the waitlist in arrival order,
withdrawals promoting first-come-first-served — and a naive check-then-insert that
oversubscribes under the same load (a function of this file, not a switch in the product).

"Arrival" is the order in which the activity's lock admitted the sign-ups: their ``seq``. The
decisions are checked by replaying the arrivals in that order through the pure rules
(:mod:`mapservice.core.activities`): any interleaving that let two writers decide on the same
sums would disagree with the replay.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.core import activities as rules
from mapservice.db import make_engine, writer
from mapservice.models import Activity, Notification, SignUp, User
from mapservice.operations import activities as ops
from mapservice.operations import signups as signup_ops
from tests.test_booking_concurrency import insert_retrying

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=TZ)
CAPACITY = 10
SIGNUPS = 32


def build(make: Any, db: Session, prefix: str) -> tuple[int, int, list[int], list[int]]:
    """An activity (a site, room for 10) and 32 groups; returns the activity, the admin who
    signs them up, the groups and their headcounts (1-3, fixed by a seed)."""
    committee = make.committee(slug=prefix, with_streets=False)
    lead = make.unit(committee, f"{prefix}牵头单位")
    admin = make.admin(committee, username=f"{prefix}admin")
    groups = [make.group(committee, lead, f"{prefix}团支部{i}").id for i in range(SIGNUPS)]
    activity = ops.create_activity(
        db,
        admin,
        title="青年公益林植树",
        lead_unit_id=lead.id,
        kind="volunteer",
        start=NOW + timedelta(days=9),
        end=NOW + timedelta(days=9, hours=3),
        capacity=CAPACITY,
        site_lon=119.45,
        site_lat=32.2,
        site_name="朝阳社区",
        now=NOW,
    )
    db.commit()
    rng = random.Random(20261203)
    return activity.id, admin.id, groups, [rng.choice((1, 2, 3)) for _ in groups]


def at_once(n: int, fn: Any) -> list[Any]:
    """``fn(i)`` for i in 0..n-1 from n threads released together."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    crashes: list[str] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = fn(i)
        except BaseException:
            crashes.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not crashes, crashes[0]
    return results


def signups(db: Session, activity_id: int) -> list[SignUp]:
    db.rollback()
    db.expire_all()
    return list(
        db.scalars(select(SignUp).where(SignUp.activity_id == activity_id).order_by(SignUp.seq))
    )


def confirmed_sum(rows: list[SignUp]) -> int:
    return sum(s.headcount for s in rows if s.state == "confirmed")


def test_concurrent_signups_keep_capacity_and_arrival_order(
    make: Any, db: Session, database_url: str, db_kind: str
) -> None:
    activity_id, admin_id, groups, heads = build(make, db, "c")
    eng = make_engine(database_url, pool_size=SIGNUPS, max_overflow=4)

    def one(i: int) -> int:
        with Session(writer(eng), expire_on_commit=False) as session:
            actor = session.get(User, admin_id)
            s = signup_ops.sign_up(
                session, actor, activity_id, heads[i], group_id=groups[i], now=NOW
            )
            session.commit()
            return s.id

    try:
        t0 = time.monotonic()
        at_once(SIGNUPS, one)
        wall = time.monotonic() - t0
        rows = signups(db, activity_id)
        assert [s.seq for s in rows] == list(range(1, SIGNUPS + 1))
        assert confirmed_sum(rows) <= CAPACITY
        # The replay in arrival order decides exactly as the database did.
        confirmed, waiting = 0, 0
        for s in rows:
            expected = rules.place(CAPACITY, confirmed, waiting, s.headcount)
            assert s.state == expected, (s.seq, s.state, expected)
            confirmed += s.headcount if expected == "confirmed" else 0
            waiting += expected == "waitlisted"
        waitlist = [s for s in rows if s.state == "waitlisted"]
        assert waitlist and [s.seq for s in waitlist] == sorted(s.seq for s in waitlist)
        assert db.get(Activity, activity_id).status == "full"  # type: ignore[union-attr]

        # Withdraw four confirmed sign-ups at once: the waitlist's head is promoted, in order.
        leaving = [s.id for s in rows if s.state == "confirmed"][:4]
        before = [s.id for s in waitlist]

        def out(i: int) -> None:
            with Session(writer(eng), expire_on_commit=False) as session:
                signup_ops.withdraw(
                    session, session.get(User, admin_id), activity_id, leaving[i], now=NOW
                )
                session.commit()

        at_once(len(leaving), out)
        after = signups(db, activity_id)
        assert confirmed_sum(after) <= CAPACITY
        promoted = [s.id for s in after if s.id in set(before) and s.state == "confirmed"]
        assert promoted == before[: len(promoted)], "promotion skipped someone in the queue"
        still = [s for s in after if s.state == "waitlisted"]
        assert not still or confirmed_sum(after) + still[0].headcount > CAPACITY
        notices = db.scalar(
            select(func.count(Notification.id)).where(Notification.kind == "activity_promoted")
        )
        assert notices == len(promoted)
        print(
            f"[signups {db_kind}] confirmed={confirmed_sum(rows)} waitlisted={len(waitlist)}"
            f" promoted={len(promoted)} wall={wall:.2f}s"
        )
    finally:
        eng.dispose()


def naive_sign_up(
    eng: Engine,
    activity_id: int,
    group_id: int,
    headcount: int,
    seq: int,
    between: threading.Barrier | None = None,
) -> None:
    """Count the confirmed headcount, then insert — no lock (the read in its own transaction,
    as a driver in autocommit mode does; a millisecond stands in for a request's work).

    ``between``, when given, holds every writer between its read and its insert until all have
    read: the interleaving a busy morning produces by chance, made certain, so the control
    cannot pass by luck on a loaded machine."""
    with Session(eng) as session:
        taken = session.scalar(
            select(func.coalesce(func.sum(SignUp.headcount), 0)).where(
                SignUp.activity_id == activity_id, SignUp.state == "confirmed"
            )
        )
        session.rollback()
    time.sleep(0.001)
    if between is not None:
        between.wait(timeout=60)
    state = "confirmed" if taken + headcount <= CAPACITY else "waitlisted"
    insert_retrying(
        eng,
        lambda: SignUp(
            activity_id=activity_id, group_id=group_id, headcount=headcount, seq=seq, state=state
        ),
    )


def test_naive_check_then_insert_oversubscribes(make: Any, db: Session, database_url: str) -> None:
    activity_id, _admin, groups, heads = build(make, db, "n")
    eng = make_engine(database_url, pool_size=SIGNUPS, max_overflow=4)
    all_read = threading.Barrier(SIGNUPS)
    try:
        at_once(
            SIGNUPS,
            lambda i: naive_sign_up(eng, activity_id, groups[i], heads[i], i + 1, all_read),
        )
        # Every writer read an empty activity, so every one of them confirmed itself.
        rows = signups(db, activity_id)
        assert confirmed_sum(rows) == sum(heads) > CAPACITY
    finally:
        eng.dispose()
