"""Activity rotation (活动轮值): drafting a year's activity list (《活动清单》) from the member
units, and reading which turns were led, are due or are late. Pure: plain values in, plain
values out, no database, no Flask.

Drafting rules (issue 20):

- every unit leads at least once; none leads twice before all have led once (the first
  round fills the earliest periods it can, later turns come after it);
- a unit never leads in a month it blacked out; its preferred months are tried first;
- with more units than periods a period has several leads, as evenly as the blackouts allow;
  with fewer, every period after the first round gets one lead, the unit with the fewest
  turns (then the longest rest) first;
- kinds are spread: none in two consecutive periods where avoidable (``k`` kinds allow it
  while two neighbouring periods have ``k`` leads between them), a unit's preferred kinds
  next, then the kind used least so far;
- the same input gives the same plan (units are ordered by id, whatever order they came in).

When it cannot (no units, no periods, a unit blacked out of every month of the plan)
:class:`CannotDraft` says why, with the units concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from mapservice.core.vocab import ActivityKind


class PeriodKind(StrEnum):
    MONTH = "month"
    WEEK = "week"


@dataclass(frozen=True)
class UnitTurns:
    """A unit as the drafter sees it: its months (1–12) to avoid and to prefer, its kinds."""

    unit_id: int
    name: str = ""
    blackout_months: frozenset[int] = frozenset()
    preferred_months: frozenset[int] = frozenset()
    preferred_kinds: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class DraftEntry:
    period: int
    unit_id: int
    kind: str


class CannotDraft(ValueError):
    """Why no plan can be drafted: ``code`` (``no_units``, ``no_periods``, ``no_kinds``,
    ``blacked_out``) and the ids and names of the units concerned."""

    def __init__(self, code: str, units: Sequence[UnitTurns] = ()) -> None:
        super().__init__(code + (": " + ", ".join(u.name or str(u.unit_id) for u in units)))
        self.code = code
        self.unit_ids = tuple(u.unit_id for u in units)
        self.names = tuple(u.name or str(u.unit_id) for u in units)


def periods_of(year: int, kind: str) -> list[tuple[int, int]]:
    """The year's periods as (index, month): months 1–12, or ISO weeks 1–52/53 with the month
    of the week's Thursday (the day that puts a week in its ISO year)."""
    if kind == PeriodKind.MONTH:
        return [(m, m) for m in range(1, 13)]
    weeks = date(year, 12, 28).isocalendar().week
    return [(w, date.fromisocalendar(year, w, 4).month) for w in range(1, weeks + 1)]


def current_period(year: int, kind: str, today: date) -> int:
    """The index of ``today``'s period in ``year``'s plan: 0 before the year, one past the
    last period after it."""
    periods = periods_of(year, kind)
    if today.year < year and not (kind == PeriodKind.WEEK and today.isocalendar().year == year):
        return 0
    if kind == PeriodKind.MONTH:
        return today.month if today.year == year else len(periods) + 1
    iso = today.isocalendar()
    if iso.year < year:
        return 0
    return iso.week if iso.year == year else len(periods) + 1


def period_start(year: int, kind: str, period: int) -> date:
    """The first day of a period (a month's 1st, an ISO week's Monday)."""
    if kind == PeriodKind.MONTH:
        return date(year, period, 1)
    return date.fromisocalendar(year, period, 1)


def period_end(year: int, kind: str, period: int) -> date:
    """The last day of a period."""
    if kind == PeriodKind.MONTH:
        nxt = date(year + 1, 1, 1) if period == 12 else date(year, period + 1, 1)
        return nxt - timedelta(days=1)
    return date.fromisocalendar(year, period, 7)


# --- drafting -------------------------------------------------------------------------------


@dataclass
class _Matching:
    """Units matched to (period position, seat) slots by augmenting paths (Kuhn)."""

    allowed: dict[int, list[int]]  # unit → period positions, preferred first
    seats: int
    slot_of: dict[int, tuple[int, int]] = field(default_factory=dict)
    unit_at: dict[tuple[int, int], int] = field(default_factory=dict)

    def _augment(self, unit: int, seen: set[tuple[int, int]], limit: int) -> bool:
        # a free slot first (in the unit's order: preferred months, then the earliest), so
        # that nobody is moved off a month without need
        for pos in self.allowed[unit]:
            if pos >= limit:
                continue
            for seat in range(self.seats):
                slot = (pos, seat)
                if slot not in seen and slot not in self.unit_at:
                    seen.add(slot)
                    self.slot_of[unit] = slot
                    self.unit_at[slot] = unit
                    return True
        for pos in self.allowed[unit]:
            if pos >= limit:
                continue
            for seat in range(self.seats):
                slot = (pos, seat)
                if slot in seen:
                    continue
                seen.add(slot)
                other = self.unit_at.get(slot)
                if other is None or self._augment(other, seen, limit):
                    self.slot_of[unit] = slot
                    self.unit_at[slot] = unit
                    return True
        return False

    def fill(self, units: Sequence[int], limit: int) -> bool:
        """Match every unit within the first ``limit`` positions, the first seats of the
        positions first (so that periods are covered before any gets a second lead)."""
        for seat_limit in range(1, self.seats + 1):
            saved = self.seats
            self.seats = seat_limit
            for unit in units:
                if unit not in self.slot_of:
                    self._augment(unit, set(), limit)
            self.seats = saved
        return len(self.slot_of) == len(units)


def _first_round(
    units: Sequence[UnitTurns], months: Sequence[int]
) -> dict[int, int]:  # unit → period position
    """Each unit once, in the earliest prefix of the periods that holds them all with the
    fewest leads per period."""
    n, p = len(units), len(months)
    allowed: dict[int, list[int]] = {}
    for u in units:
        ok = [i for i, m in enumerate(months) if m not in u.blackout_months]
        ok.sort(key=lambda i: (months[i] not in u.preferred_months, i))
        allowed[u.unit_id] = ok
    # units with preferred months are seated first (a free preferred month is theirs), then
    # those with the fewest choices; augmenting paths still seat everyone who can be
    liking = {u.unit_id: bool(u.preferred_months - u.blackout_months) for u in units}
    order = sorted(
        (u.unit_id for u in units), key=lambda uid: (not liking[uid], len(allowed[uid]), uid)
    )
    seats = -(-n // p)
    while True:
        # more units than periods: all periods; fewer: the shortest prefix that holds them
        lo = p if n >= p else -(-n // seats)
        for limit in range(lo, p + 1):
            m = _Matching(allowed, seats)
            if m.fill(order, limit):
                return {uid: slot[0] for uid, slot in m.slot_of.items()}
        seats += 1  # blackouts crowd the units into fewer periods


def _later_turns(
    units: Sequence[UnitTurns], months: Sequence[int], first: Mapping[int, int]
) -> list[tuple[int, int]]:
    """One lead for each period after the first round: the allowed unit with the fewest
    turns, then the longest rest, then a preferred month, then the lowest id."""
    out: list[tuple[int, int]] = []
    after = max(first.values()) + 1
    turns = {u.unit_id: 1 for u in units}
    last = dict(first)
    for pos in range(after, len(months)):
        month = months[pos]
        fit = [u for u in units if month not in u.blackout_months]
        if not fit:
            continue
        best = min(
            fit,
            key=lambda u: (
                turns[u.unit_id],
                last[u.unit_id],
                month not in u.preferred_months,
                u.unit_id,
            ),
        )
        turns[best.unit_id] += 1
        last[best.unit_id] = pos
        out.append((pos, best.unit_id))
    return out


def _kinds(
    leads: Sequence[tuple[int, int]], prefs: Mapping[int, tuple[str, ...]], kinds: Sequence[str]
) -> list[str]:
    """A kind for each lead (sorted by position): none of the previous period's kinds, then
    none already taken in this period, then the unit's preferred kinds, then the least used."""
    used = dict.fromkeys(kinds, 0)
    rank = {k: i for i, k in enumerate(kinds)}
    out: list[str] = []
    prev: set[str] = set()
    here: set[str] = set()
    here_pos = -1
    for pos, unit in leads:
        if pos != here_pos:
            prev = here if here_pos == pos - 1 else set()
            here, here_pos = set(), pos
        liked = prefs.get(unit, ())
        kind = min(
            kinds,
            key=lambda k: (k in prev, k in here, k not in liked, used[k], rank[k]),
        )
        used[kind] += 1
        here.add(kind)
        out.append(kind)
    return out


def draft(
    units: Iterable[UnitTurns],
    periods: Sequence[tuple[int, int]],
    kinds: Sequence[str] = tuple(ActivityKind),
) -> list[DraftEntry]:
    """The year's leads and kinds (see the module's rules), sorted by period then unit.

    ``periods``: (index, month) as :func:`periods_of` gives them. Raises :class:`CannotDraft`."""
    ordered = sorted(units, key=lambda u: u.unit_id)
    if not ordered:
        raise CannotDraft("no_units")
    if not periods:
        raise CannotDraft("no_periods")
    if not kinds:
        raise CannotDraft("no_kinds")
    months = [m for _, m in periods]
    stuck = [u for u in ordered if all(m in u.blackout_months for m in months)]
    if stuck:
        raise CannotDraft("blacked_out", stuck)
    first = _first_round(ordered, months)
    prefs = {u.unit_id: u.preferred_kinds for u in ordered}
    # in a period, units with preferred kinds choose first
    leads = sorted(
        [(pos, uid) for uid, pos in first.items()] + _later_turns(ordered, months, first),
        key=lambda lead: (lead[0], not prefs[lead[1]], lead[1]),
    )
    chosen = _kinds(leads, prefs, kinds)
    return sorted(
        DraftEntry(periods[pos][0], uid, kind)
        for (pos, uid), kind in zip(leads, chosen, strict=True)
    )


# --- led, due, late -------------------------------------------------------------------------


class Standing(StrEnum):
    LED = "led"
    DUE = "due"
    LATE = "late"
    UPCOMING = "upcoming"


def standing(period: int, current: int, led: bool) -> Standing:
    """A turn's standing: led (done), due (its period is now), late (its period is past),
    upcoming. ``current``: :func:`current_period` of today."""
    if led:
        return Standing.LED
    if period == current:
        return Standing.DUE
    return Standing.LATE if period < current else Standing.UPCOMING


def standings(
    entries: Iterable[tuple[int, int]], led: Iterable[int], current: int
) -> dict[int, Standing]:
    """:func:`standing` of each (entry id, period), given the ids of the entries that were
    led (an entry marked done by hand; an activity of the entry that is done)."""
    done = set(led)
    return {eid: standing(period, current, eid in done) for eid, period in entries}


def unit_standing(states: Iterable[Standing]) -> Standing | None:
    """A unit's standing over its turns: late if any is late, else due if any is due, else
    upcoming if any is to come, else led (None: no turns)."""
    found = set(states)
    for s in (Standing.LATE, Standing.DUE, Standing.UPCOMING, Standing.LED):
        if s in found:
            return s
    return None


def parse_months(text: str) -> frozenset[int]:
    """Months from text such as ``"1, 2, 7-8"`` (ValueError for anything else)."""
    out: set[int] = set()
    for part in text.replace("，", ",").replace("、", ",").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not (1 <= a <= b <= 12):
            raise ValueError(part)
        out.update(range(a, b + 1))
    return frozenset(out)


def format_months(months: Iterable[int]) -> str:
    return ", ".join(str(m) for m in sorted(months))
