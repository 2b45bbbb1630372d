"""One write path for book and reschedule (issue 17, item 2): a move is judged by the same
checks as a new booking and written the same way, and a refusal's alternatives are computed
only when whoever answers it asks (reading ``.alternatives`` never runs a query)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, select

from mapservice.booking import engine
from mapservice.core.errors import BookingConflict, NotFound, RuleViolation
from mapservice.models import AuditEntry, Unit
from tests import test_booking_engine
from tests.test_booking_engine import NOW, at, book

world = test_booking_engine.w  # the engine tests' fixture ``w``, here named ``world``


class Statements:
    """Counts the statements a session's connection runs while active."""

    def __init__(self, session: Any) -> None:
        self.engine = session.get_bind()
        self.count = 0

    def _seen(self, *args: Any) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_reading_a_refusals_alternatives_runs_no_query(wdb, world):
    for _ in range(3):
        book(wdb, world)
    with pytest.raises(BookingConflict) as info:
        book(wdb, world)
    wdb.rollback()  # as the edges do: the lock released first
    with Statements(wdb) as seen:
        assert info.value.alternatives is None  # not computed yet: nobody asked
    assert seen.count == 0
    alts = info.value.resolve(wdb)  # the edge asks, once
    assert alts.windows and alts is info.value.alternatives
    with Statements(wdb) as seen:
        assert info.value.resolve(wdb) is alts and info.value.alternatives is alts
    assert seen.count == 0


def test_a_series_refusal_carries_no_alternatives(wdb, world):
    for _ in range(3):
        book(wdb, world)
    with pytest.raises(engine.SeriesRejected) as info:
        engine.book_series(
            wdb, world["booker"], world["court"].id, world["g_other"].id, at(2, 19), at(2, 20),
            freq="weekly", count=2, now=NOW,
        )  # fmt: skip
    wdb.rollback()
    refused = [o.error for o in info.value.outcomes if o.error is not None]
    assert [type(e) for e in refused] == [BookingConflict]
    assert refused[0].resolve(wdb) == engine.Alternatives()


def test_reschedule_is_judged_like_a_booking_at_a_venue_one_may_no_longer_book(wdb, world):
    """The venue's unit is suspended after the booking was made: a new booking there answers
    404 (the venue is hidden from the booker), and so does moving the booking (before: the
    move had checks of its own and went through). The booking itself stays."""
    mine = book(wdb, world)
    wdb.get(Unit, world["court"].unit_id).status = "suspended"
    wdb.commit()
    with pytest.raises(NotFound):
        book(wdb, world, start=at(2, 15), end=at(2, 16))
    wdb.rollback()
    with pytest.raises(NotFound):
        engine.reschedule(wdb, world["booker"], mine.id, at(2, 15), at(2, 16), now=NOW)
    wdb.rollback()
    wdb.refresh(mine)
    assert (mine.status, mine.start_at, mine.unit_numbers) == ("confirmed", at(2, 19), [1])


def test_a_move_counts_the_quota_without_itself_and_writes_one_audit_entry(wdb, world):
    """4 hours a week at the court: a 3-hour booking may move to another 3 hours (its own
    hours do not count against it) but another booking of 2 hours then breaks the quota; the
    move is audited once, with the old and the new time and units."""
    mine = book(wdb, world, start=at(2, 9), end=at(2, 12))
    moved = engine.reschedule(wdb, world["booker"], mine.id, at(3, 10), at(3, 13), now=NOW)
    wdb.commit()
    assert (moved.start_at, moved.end_at, moved.unit_numbers) == (at(3, 10), at(3, 13), [1])
    with pytest.raises(RuleViolation) as info:
        book(wdb, world, start=at(4, 10), end=at(4, 12))
    wdb.rollback()
    assert [v.code for v in info.value.violations] == ["quota"]
    entries = wdb.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "booking.reschedule", AuditEntry.object_id == mine.id
        )
    ).all()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor_name, entry.committee_id) == ("booker", world["court"].committee_id)
    details = json.loads(entry.details)
    assert details["old"][2] == [1] and details["new"][2] == [1]
    assert details["new"][0] == str(at(3, 10))


def test_a_move_at_a_venue_that_requires_approval_is_pending_again(wdb, world):
    mine = book(wdb, world, venue="hall", start=at(2, 10), end=at(2, 11))
    engine.confirm(wdb, world["sec"], mine.id, now=NOW)
    wdb.commit()
    moved = engine.reschedule(wdb, world["booker"], mine.id, at(3, 10), at(3, 11), now=NOW)
    wdb.commit()
    assert moved.status == "pending" and moved.hold_expires_at is not None
    by_owner = engine.reschedule(wdb, world["sec"], mine.id, at(3, 14), at(3, 15), now=NOW)
    wdb.commit()
    assert by_owner.status == "pending"  # the owner's move keeps what it was
    wdb.refresh(by_owner)
    assert (by_owner.start_at, by_owner.unit_numbers) == (at(3, 14), [1])
