"""The year's activity list (活动清单) and its rotation (活动轮值): drafting a plan from the
committee's admitted units and their preferences (``core/rotation.draft``), editing its turns
by hand, publishing it, marking turns led, and reading who has led, is due or is late
(``core/rotation.standings``, today in the committee's time zone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mapservice.core import rotation
from mapservice.core.errors import NotAllowed, NotFound, ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.rotation import CannotDraft, PeriodKind, Standing, UnitTurns
from mapservice.core.vocab import ActivityKind, UnitStatus
from mapservice.db import utcnow
from mapservice.models import Activity, Committee, Plan, PlanEntry, Unit, UnitPlanPreference, User
from mapservice.models.activities import took_place
from mapservice.models.audit import record
from mapservice.policy.committees import require_committee_admin
from mapservice.policy.plans import get_plan, plans_seen_by, require_plan_viewer

YEARS = (2000, 2100)


def kind_choices(lang: str) -> list[tuple[str, str]]:
    return ActivityKind.choices(lang)


def kind_label(kind: str, lang: str) -> str:
    found = ActivityKind.parse(kind)
    return found.label(lang) if found is not None else kind


def _months(text: str) -> frozenset[int]:
    return rotation.parse_months(text) if text else frozenset()


def unit_turns(session: Session, committee_id: int) -> list[UnitTurns]:
    """The committee's admitted units with their preferences, as the drafter takes them."""
    rows = session.execute(
        select(Unit, UnitPlanPreference)
        .outerjoin(UnitPlanPreference, UnitPlanPreference.unit_id == Unit.id)
        .where(Unit.committee_id == committee_id, Unit.status == UnitStatus.ACTIVE.value)
        .order_by(Unit.id)
    ).all()
    out = []
    for unit, pref in rows:
        if pref is None:
            out.append(UnitTurns(unit.id, unit.name))
            continue
        out.append(
            UnitTurns(
                unit.id,
                unit.name,
                blackout_months=_months(pref.blackout_months),
                preferred_months=_months(pref.preferred_months),
                preferred_kinds=tuple(k for k in pref.preferred_kinds.split(",") if k),
            )
        )
    return out


def cannot_draft_message(exc: CannotDraft) -> str:
    if exc.code == "no_units":
        return _("The committee has no admitted units to take turns.")
    if exc.code == "blacked_out":
        return _(
            "These units blacked out every month of the plan: %(units)s.",
            units="、".join(exc.names),
        )
    return _("No plan can be drafted for these periods.")


def create_plan(
    session: Session,
    actor: User,
    *,
    year: int,
    period: str = PeriodKind.MONTH.value,
    title: str = "",
) -> Plan:
    """Draft a plan for ``year`` from the admitted units (a draft, to be edited and
    published). Refused as a whole (ValidationFailed) for a year out of range, a second plan
    for the year, or when the drafter cannot (no units, a unit blacked out of every month)."""
    require_committee_admin(actor)
    if not (YEARS[0] <= year <= YEARS[1]):
        raise ValidationFailed(
            _("Give a year from %(a)s to %(b)s.", a=YEARS[0], b=YEARS[1]),
            {"year": _("Give a year from %(a)s to %(b)s.", a=YEARS[0], b=YEARS[1])},
        )
    if period not in (PeriodKind.MONTH.value, PeriodKind.WEEK.value):
        raise ValidationFailed(
            _("Choose months or weeks."), {"period": _("Choose months or weeks.")}
        )
    taken = session.scalar(
        select(Plan.id).where(Plan.committee_id == actor.committee_id, Plan.year == year)
    )
    if taken is not None:
        msg = _("There is already a plan for %(year)s.", year=year)
        raise ValidationFailed(msg, {"year": msg})
    try:
        drafted = rotation.draft(
            unit_turns(session, actor.committee_id), rotation.periods_of(year, period)
        )
    except CannotDraft as exc:
        msg = cannot_draft_message(exc)
        raise ValidationFailed(msg, {"year": msg}) from None
    title = title.strip()[:200] or _("%(year)s activity list", year=year)
    plan = Plan(committee_id=actor.committee_id, year=year, period=period, title=title)
    plan.entries = [PlanEntry(period=e.period, unit_id=e.unit_id, kind=e.kind) for e in drafted]
    session.add(plan)
    record(session, actor, "plan.create", plan, year=year, entries=len(drafted))
    return plan


def list_plans(session: Session, actor: User | None) -> list[Plan]:
    require_plan_viewer(actor)
    return list(session.scalars(select(Plan).where(plans_seen_by(actor)).order_by(Plan.year)))


def _entry(session: Session, actor: User, plan: Plan, entry_id: int) -> PlanEntry:
    entry = session.get(PlanEntry, entry_id)
    if entry is None or entry.plan_id != plan.id:
        raise NotFound("entry_not_found", _("No such turn."))
    return entry


def turn_to_lead(session: Session, actor: User, entry_id: int) -> PlanEntry:
    """A turn ``actor`` may create the activity of: its plan seen (else 404), its lead unit
    the secretary's own or the actor the admin (else 403)."""
    entry = session.get(PlanEntry, entry_id)
    if entry is None:
        raise NotFound("entry_not_found", _("No such turn."))
    get_plan(session, actor, entry.plan_id)
    if not (actor.is_admin or (actor.is_secretary and actor.unit_id == entry.unit_id)):
        raise NotAllowed("not_your_turn", _("Only the lead unit or the admin may lead this turn."))
    return entry


def turn_defaults(entry: PlanEntry, today: date) -> dict[str, Any]:
    """What the activity form starts from for a turn: its kind, title (else the kind's
    name), lead unit and a day — the turn's first day, or a week from today once that has
    passed (still inside the turn when it can be)."""
    plan = entry.plan
    first = rotation.period_start(plan.year, plan.period, entry.period)
    last = rotation.period_end(plan.year, plan.period, entry.period)
    day = (
        first
        if first > today
        else min(today + timedelta(days=7), max(last, today + timedelta(days=1)))
    )
    title = entry.title or ActivityKind(entry.kind).label(lang())
    return {"kind": entry.kind, "title": title, "lead_unit_id": entry.unit_id, "date": day}


def update_entry(
    session: Session,
    actor: User,
    plan_id: int,
    entry_id: int,
    *,
    period: int,
    unit_id: int,
    kind: str,
    title: str = "",
    note: str = "",
) -> PlanEntry:
    """Move a turn, give it to another unit, change its kind or title (the admin)."""
    plan = get_plan(session, actor, plan_id, edit=True)
    entry = _entry(session, actor, plan, entry_id)
    errors: dict[str, str] = {}
    if period not in dict(rotation.periods_of(plan.year, plan.period)):
        errors["period"] = _("No such period in this plan.")
    unit = session.get(Unit, unit_id)
    if unit is None or unit.committee_id != plan.committee_id or not unit.is_active:
        errors["unit_id"] = _("Choose an admitted unit of the committee.")
    if ActivityKind.parse(kind) is None:
        errors["kind"] = _("Choose an activity kind.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)
    before = {"period": entry.period, "unit_id": entry.unit_id, "kind": entry.kind}
    entry.period, entry.unit_id, entry.kind = period, unit_id, str(ActivityKind.parse(kind))
    entry.title, entry.note = title.strip()[:200], note.strip()[:500]
    after = {"period": entry.period, "unit_id": entry.unit_id, "kind": entry.kind}
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    record(session, actor, "plan.entry.update", plan, changes=changes, entry=entry.id)
    return entry


def swap_leads(session: Session, actor: User, plan_id: int, a_id: int, b_id: int) -> None:
    """Swap the lead units of two turns (the admin)."""
    plan = get_plan(session, actor, plan_id, edit=True)
    a, b = _entry(session, actor, plan, a_id), _entry(session, actor, plan, b_id)
    a.unit_id, b.unit_id = b.unit_id, a.unit_id
    record(session, actor, "plan.entry.swap", plan, entries=[a.id, b.id])


def publish(session: Session, actor: User, plan_id: int) -> Plan:
    plan = get_plan(session, actor, plan_id, edit=True)
    if plan.status != "published":
        plan.status = "published"
        record(session, actor, "plan.publish", plan)
    return plan


def mark_led(
    session: Session, actor: User, plan_id: int, entry_id: int, led_on: date | None
) -> PlanEntry:
    """Mark a turn led on a day (or not led: None): the admin, or the lead unit's secretary."""
    plan = get_plan(session, actor, plan_id)
    entry = _entry(session, actor, plan, entry_id)
    if not (actor.is_admin or (actor.is_secretary and actor.unit_id == entry.unit_id)):
        raise NotAllowed("not_your_turn", _("Only the lead unit or the admin may mark a turn."))
    entry.led_on = led_on
    record(session, actor, "plan.entry.led", plan, entry=entry.id, led_on=str(led_on or ""))
    return entry


def led_entry_ids(session: Session, plan: Plan) -> set[int]:
    """The ids of the plan's turns that were led: marked by hand (``led_on``), or held by an
    activity of the turn that took place (neither a draft nor cancelled, and over)."""
    entries = select(PlanEntry.id).where(PlanEntry.plan_id == plan.id)
    by_hand = session.scalars(entries.where(PlanEntry.led_on.is_not(None)))
    held = session.scalars(
        select(Activity.plan_entry_id).where(
            Activity.plan_entry_id.in_(entries), took_place(utcnow())
        )
    )
    return set(by_hand) | {i for i in held if i is not None}


@dataclass(frozen=True)
class TurnRow:
    entry: PlanEntry
    standing: Standing
    start: date
    end: date


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    today: date
    turns: list[TurnRow]
    units: list[tuple[Unit, Standing, int, int]]  # unit, standing, turns, led

    def of_unit(self, unit_id: int | None) -> list[TurnRow]:
        return [t for t in self.turns if t.entry.unit_id == unit_id]

    def count(self, standing: Standing) -> int:
        return sum(1 for _u, s, _t, _l in self.units if s == standing)


def committee_today(committee: Committee, now: datetime | None = None) -> date:
    tz = ZoneInfo(committee.timezone)
    return (now.astimezone(tz) if now is not None else datetime.now(tz)).date()


def plan_view(session: Session, actor: User | None, plan_id: int, today: date) -> PlanView:
    """The plan's turns with their standing on ``today`` and each lead unit's standing."""
    plan = get_plan(session, actor, plan_id)
    entries = list(
        session.scalars(
            select(PlanEntry)
            .where(PlanEntry.plan_id == plan.id)
            .options(selectinload(PlanEntry.unit))
            .order_by(PlanEntry.period, PlanEntry.id)
        )
    )
    current = rotation.current_period(plan.year, plan.period, today)
    states = rotation.standings(
        [(e.id, e.period) for e in entries], led_entry_ids(session, plan), current
    )
    turns = [
        TurnRow(
            e,
            states[e.id],
            rotation.period_start(plan.year, plan.period, e.period),
            rotation.period_end(plan.year, plan.period, e.period),
        )
        for e in entries
    ]
    by_unit: dict[int, list[TurnRow]] = {}
    for t in turns:
        by_unit.setdefault(t.entry.unit_id, []).append(t)
    units = []
    for rows in by_unit.values():
        unit_state = rotation.unit_standing(t.standing for t in rows)
        assert unit_state is not None
        led = sum(1 for t in rows if t.standing == Standing.LED)
        units.append((rows[0].entry.unit, unit_state, len(rows), led))
    units.sort(key=lambda u: (list(Standing).index(u[1]), u[0].name))
    return PlanView(plan, today, turns, units)


def preferences_of(session: Session, unit_id: int) -> UnitPlanPreference:
    return session.get(UnitPlanPreference, unit_id) or UnitPlanPreference(
        unit_id=unit_id, preferred_months="", blackout_months="", preferred_kinds=""
    )


def save_preferences(
    session: Session,
    actor: User,
    unit_id: int,
    *,
    preferred_months: str,
    blackout_months: str,
    preferred_kinds: list[str],
) -> UnitPlanPreference:
    """A unit's months to prefer and to avoid and its kinds (its secretary, or the admin).
    Refused: months that are not 1–12, every month blacked out, a month both preferred and
    blacked out, an unknown kind."""
    require_plan_viewer(actor)
    unit = session.get(Unit, unit_id)
    if unit is None or unit.committee_id != actor.committee_id:
        raise NotFound("unit_not_found", _("No such unit."))
    if not (actor.is_admin or actor.unit_id == unit_id):
        raise NotAllowed("not_your_unit", _("You may only set your own unit's preferences."))
    errors: dict[str, str] = {}
    parsed: dict[str, frozenset[int]] = {}
    for name, text in (
        ("preferred_months", preferred_months),
        ("blackout_months", blackout_months),
    ):
        try:
            parsed[name] = _months(text.strip())
        except ValueError:
            errors[name] = _("Months are numbers from 1 to 12, e.g. 3, 7-8.")
    if not errors:
        if len(parsed["blackout_months"]) == 12:
            errors["blackout_months"] = _("A unit cannot black out every month.")
        elif parsed["preferred_months"] & parsed["blackout_months"]:
            errors["preferred_months"] = _("A month cannot be both preferred and blacked out.")
    kinds = [
        str(ActivityKind.parse(k)) for k in preferred_kinds if ActivityKind.parse(k) is not None
    ]
    if len(kinds) != len(preferred_kinds):
        errors["preferred_kinds"] = _("Choose an activity kind.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)
    pref = preferences_of(session, unit_id)
    pref.preferred_months = rotation.format_months(parsed["preferred_months"])
    pref.blackout_months = rotation.format_months(parsed["blackout_months"])
    pref.preferred_kinds = ",".join(dict.fromkeys(kinds))
    session.add(pref)
    record(session, actor, "plan.preferences", unit, blackout=pref.blackout_months)
    return pref
