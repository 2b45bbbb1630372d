"""The rotation drafter (core/rotation.py): its invariants over random units, blackouts and
periods (Hypothesis), and the led / due / late reading."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mapservice.core.rotation import (
    CannotDraft,
    Standing,
    UnitTurns,
    current_period,
    draft,
    parse_months,
    periods_of,
    standings,
    unit_standing,
)
from mapservice.core.vocab import ActivityKind

KINDS = [k.value for k in ActivityKind]
months = st.frozensets(st.integers(1, 12), max_size=12)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[UnitTurns], list[tuple[int, int]], list[str]]:
    n = draw(st.integers(1, 40))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    units = [
        UnitTurns(
            uid,
            f"u{uid}",
            blackout_months=draw(months),
            preferred_months=draw(st.frozensets(st.integers(1, 12), max_size=3)),
            preferred_kinds=tuple(draw(st.lists(st.sampled_from(KINDS), max_size=2))),
        )
        for uid in ids
    ]
    kind = draw(st.sampled_from(["month", "month", "week"]))
    periods = periods_of(draw(st.integers(2020, 2030)), kind)
    if draw(st.booleans()):  # a plan over part of the year
        start = draw(st.integers(0, len(periods) - 1))
        periods = periods[start : start + draw(st.integers(1, len(periods)))]
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=7, unique=True))
    return units, periods, kinds


@example(  # u1 and u2 may lead only in the first period: u3 leads in the second and the third
    (
        [
            UnitTurns(1, "u1", frozenset({1, 10, 11}), frozenset(), ()),
            UnitTurns(2, "u2", frozenset({1, 10, 11}), frozenset(), ()),
            UnitTurns(3, "u3", frozenset(), frozenset(), ()),
        ],
        [(9, 9), (10, 10), (11, 11)],
        ["reading_club"],
    )
)
@example(
    (
        [
            UnitTurns(1, "u1", frozenset(), frozenset(), ()),
            UnitTurns(2, "u2", frozenset({1}), frozenset(), ()),
            UnitTurns(3, "u3", frozenset({1}), frozenset(), ()),
        ],
        [(4, 1), (5, 1), (6, 2)],
        ["reading_club"],
    )
)
@settings(max_examples=150, deadline=None)
@given(worlds())
def test_the_invariants_hold_or_the_drafter_says_why(
    world: tuple[list[UnitTurns], list[tuple[int, int]], list[str]],
) -> None:
    units, periods, kinds = world
    month_of = dict(periods)
    plan_months = set(month_of.values())
    stuck = sorted(u.unit_id for u in units if plan_months <= u.blackout_months)
    if stuck:
        with pytest.raises(CannotDraft) as caught:
            draft(units, periods, kinds)
        assert caught.value.code == "blacked_out"
        assert sorted(caught.value.unit_ids) == stuck
        return
    entries = draft(units, periods, kinds)
    # the same input (in any order) gives the same plan
    assert draft(list(reversed(units)), periods, kinds) == entries
    by_unit = {u.unit_id: u for u in units}
    # every unit leads at least once
    assert {e.unit_id for e in entries} == set(by_unit)
    # blackouts respected; kinds from the list; periods of the plan
    for e in entries:
        assert month_of[e.period] not in by_unit[e.unit_id].blackout_months
        assert e.kind in kinds
    # none twice before all have led once
    order = [p for p, _ in periods]
    pos = {p: i for i, p in enumerate(order)}
    firsts: dict[int, int] = {}
    seconds = []
    for e in sorted(entries, key=lambda e: pos[e.period]):
        if e.unit_id in firsts:
            seconds.append(pos[e.period])
        else:
            firsts[e.unit_id] = pos[e.period]
    if seconds:
        assert min(seconds) > max(firsts.values())
    # with more units than periods, every period where someone may lead has a lead, unless
    # each unit that may lead there has led already and another has not yet led once (a second
    # turn there would come before everyone's first: u1 free, u2 and u3 blacked out in the
    # month of the first two periods — the second stays empty, u2 and u3 share the third)
    if len(units) >= len(periods):
        # each unit leads once in the first round; the periods after it (blackouts can pack
        # the first round into fewer periods than there are) get one lead each, as with fewer
        # units than periods
        end = max(firsts.values())
        per_period = Counter(pos[e.period] for e in entries)
        assert all(per_period[i] <= 1 for i in range(end + 1, len(order))), per_period
        assert len(entries) == len(units) + len(seconds)
        led = {e.period for e in entries}
        for p, m in periods:
            may = [u.unit_id for u in units if m not in u.blackout_months]
            if p in led or not may:
                continue
            assert all(firsts[u] < pos[p] for u in may), (p, may, firsts)
            assert max(firsts.values()) > pos[p], (p, firsts)
    # kinds: no kind in two consecutive periods where avoidable
    kinds_at: dict[int, list[str]] = defaultdict(list)
    for e in entries:
        kinds_at[pos[e.period]].append(e.kind)
    for i, here in kinds_at.items():
        before = kinds_at.get(i - 1)
        if before is not None and len(before) + len(here) <= len(kinds):
            assert not set(before) & set(here), (i, before, here)


def test_more_units_than_months_spread_evenly_and_preferences_are_honoured() -> None:
    units = [UnitTurns(i, f"u{i}") for i in range(1, 31)]
    units[4] = UnitTurns(5, "u5", preferred_months=frozenset({3}), preferred_kinds=("salon",))
    units[6] = UnitTurns(7, "u7", preferred_months=frozenset({1}), preferred_kinds=("volunteer",))
    entries = draft(units, periods_of(2023, "month"))
    per_month = Counter(e.period for e in entries)
    assert sorted(per_month.values()) == [2] * 6 + [3] * 6
    got = {e.unit_id: (e.period, e.kind) for e in entries}
    assert got[7] == (1, "volunteer")
    assert got[5][0] == 3


def test_fewer_units_than_months_take_turns_in_rounds() -> None:
    units = [UnitTurns(i, f"u{i}") for i in (5, 7, 9)]
    entries = draft(units, periods_of(2023, "month"))
    assert [e.unit_id for e in entries] == [5, 7, 9] * 4
    kinds = [e.kind for e in entries]
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))


def test_a_unit_blacked_out_of_every_month_is_named() -> None:
    units = [UnitTurns(1, "邮政"), UnitTurns(2, "移动", blackout_months=frozenset(range(1, 13)))]
    with pytest.raises(CannotDraft) as caught:
        draft(units, periods_of(2023, "month"))
    assert caught.value.code == "blacked_out" and caught.value.names == ("移动",)
    with pytest.raises(CannotDraft) as none:
        draft([], periods_of(2023, "month"))
    assert none.value.code == "no_units"


def test_weeks_and_today() -> None:
    weeks = periods_of(2026, "week")
    assert len(weeks) == 53 and weeks[0] == (1, 1) and weeks[-1] == (53, 12)
    assert current_period(2023, "month", date(2023, 3, 10)) == 3
    assert current_period(2023, "month", date(2022, 12, 31)) == 0
    assert current_period(2023, "month", date(2024, 1, 1)) == 13
    assert current_period(2026, "week", date(2026, 1, 1)) == 1
    assert current_period(2027, "week", date(2027, 1, 1)) == 0  # ISO week 53 of 2026


def test_led_due_late() -> None:
    got = standings([(1, 2), (2, 3), (3, 3), (4, 4)], led=[3], current=3)
    assert got == {1: Standing.LATE, 2: Standing.DUE, 3: Standing.LED, 4: Standing.UPCOMING}
    assert unit_standing([Standing.LED, Standing.UPCOMING]) is Standing.UPCOMING
    assert unit_standing([Standing.LED]) is Standing.LED
    assert unit_standing([]) is None
    assert parse_months("1, 3-4，12") == {1, 3, 4, 12}
    with pytest.raises(ValueError):
        parse_months("13")
