"""Pairing (结对挂钩): a unit paired with a street of the committee's district or with another
unit (a community is a unit), from a start day to an optional end. One to one or many to one
is read from how many units the partner has at once. The venue rule "bookable by paired
units" reads unit–unit pairs (``models.plans.units_paired_on``, in ``booking/rows.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from mapservice.core.errors import NotAllowed, NotFound, ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.vocab import UnitKind, UnitStatus
from mapservice.models import Area, Pairing, Unit, User
from mapservice.models.audit import record
from mapservice.policy.committees import require_committee_admin
from mapservice.policy.plans import can_see_pairings

ONE_TO_ONE, MANY_TO_ONE = "one_to_one", "many_to_one"


def kind_label(kind: str) -> str:
    return _("one to one") if kind == ONE_TO_ONE else _("many to one")


@dataclass(frozen=True)
class PairingRow:
    pairing: Pairing
    active: bool
    kind: str  # one_to_one / many_to_one (the partner's active pairs that day)


def _partner_key(p: Pairing) -> tuple[str, int]:
    return ("unit", p.partner_unit_id) if p.partner_unit_id else ("area", p.partner_area_id or 0)


def list_pairings(
    session: Session, actor: User | None, today: date, *, current_only: bool = False
) -> list[PairingRow]:
    """The committee's pairings (active ones first), each with its kind on ``today``."""
    if actor is None or not can_see_pairings(actor, actor.committee_id):
        raise NotAllowed("login_required", _("Please log in first."))
    pairs = list(
        session.scalars(
            select(Pairing)
            .where(Pairing.committee_id == actor.committee_id)
            .options(
                selectinload(Pairing.unit),
                selectinload(Pairing.partner_unit),
                selectinload(Pairing.partner_area),
            )
            .order_by(Pairing.start_on, Pairing.id)
        )
    )
    counts: dict[tuple[str, int], int] = {}
    for p in pairs:
        if p.active_on(today):
            counts[_partner_key(p)] = counts.get(_partner_key(p), 0) + 1
    rows = [
        PairingRow(
            p,
            p.active_on(today),
            MANY_TO_ONE if counts.get(_partner_key(p), 0) > 1 else ONE_TO_ONE,
        )
        for p in pairs
        if p.active_on(today) or not current_only
    ]
    rows.sort(key=lambda r: (not r.active, r.pairing.partner_name, r.pairing.unit.name))
    return rows


def create_pairing(
    session: Session,
    actor: User,
    *,
    unit_id: int,
    partner_unit_id: int | None = None,
    partner_area_id: int | None = None,
    start_on: date,
    end_on: date | None = None,
    note: str = "",
) -> Pairing:
    """Pair a unit with a street or another unit (the admin). Refused as a whole
    (ValidationFailed): no partner or two, the unit itself, a unit or street of another
    committee, an end before the start, a pair of the same two that overlaps in time."""
    require_committee_admin(actor)
    cid = actor.committee_id
    errors: dict[str, str] = {}
    unit = session.get(Unit, unit_id)
    if unit is None or unit.committee_id != cid or unit.status != UnitStatus.ACTIVE.value:
        errors["unit_id"] = _("Choose an admitted unit of the committee.")
    if (partner_unit_id is None) == (partner_area_id is None):
        errors["partner"] = _("Choose one partner: a community or another unit, or a street.")
    elif partner_unit_id is not None:
        partner = session.get(Unit, partner_unit_id)
        if partner is None or partner.committee_id != cid:
            errors["partner"] = _("Choose an admitted unit of the committee.")
        elif partner_unit_id == unit_id:
            errors["partner"] = _("A unit cannot be paired with itself.")
    else:
        area = session.get(Area, partner_area_id)
        if area is None or area.committee_id != cid or area.level != "street":
            errors["partner"] = _("Choose a street of the committee's district.")
    if end_on is not None and end_on < start_on:
        errors["end_on"] = _("The pairing cannot end before it starts.")
    if not errors and _overlapping(
        session, unit_id, partner_unit_id, partner_area_id, start_on, end_on
    ):
        errors["partner"] = _("These two are already paired for (part of) that time.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)
    pairing = Pairing(
        committee_id=cid,
        unit_id=unit_id,
        partner_unit_id=partner_unit_id,
        partner_area_id=partner_area_id,
        start_on=start_on,
        end_on=end_on,
        note=note.strip()[:200],
    )
    session.add(pairing)
    record(session, actor, "pairing.create", pairing, start=str(start_on), end=str(end_on or ""))
    return pairing


def _overlapping(
    session: Session,
    unit_id: int,
    partner_unit_id: int | None,
    partner_area_id: int | None,
    start_on: date,
    end_on: date | None,
) -> bool:
    if partner_unit_id is not None:  # either way round
        same = or_(
            and_(Pairing.unit_id == unit_id, Pairing.partner_unit_id == partner_unit_id),
            and_(Pairing.unit_id == partner_unit_id, Pairing.partner_unit_id == unit_id),
        )
    else:
        same = and_(Pairing.unit_id == unit_id, Pairing.partner_area_id == partner_area_id)
    overlap = [or_(Pairing.end_on.is_(None), Pairing.end_on >= start_on)]
    if end_on is not None:
        overlap.append(Pairing.start_on <= end_on)
    return session.scalar(select(Pairing.id).where(same, *overlap).limit(1)) is not None


def end_pairing(session: Session, actor: User, pairing_id: int, end_on: date) -> Pairing:
    """End a pairing on a day (the admin); not before it started."""
    require_committee_admin(actor)
    pairing = session.get(Pairing, pairing_id)
    if pairing is None or pairing.committee_id != actor.committee_id:
        raise NotFound("pairing_not_found", _("No such pairing."))
    if end_on < pairing.start_on:
        msg = _("The pairing cannot end before it starts.")
        raise ValidationFailed(msg, {"end_on": msg})
    before = str(pairing.end_on or "")
    pairing.end_on = end_on
    record(session, actor, "pairing.end", pairing, changes={"end_on": [before, str(end_on)]})
    return pairing


@dataclass(frozen=True)
class Unpaired:
    streets: list[Area]
    communities: list[Unit]


def unpaired(session: Session, actor: User | None, today: date) -> Unpaired:
    """The committee's streets and admitted community units with no pair on ``today`` (a
    community counts as paired on either side of a pair)."""
    rows = list_pairings(session, actor, today, current_only=True)
    assert actor is not None
    streets_paired = {r.pairing.partner_area_id for r in rows}
    units_paired = {r.pairing.partner_unit_id for r in rows} | {r.pairing.unit_id for r in rows}
    streets = session.scalars(
        select(Area)
        .where(Area.committee_id == actor.committee_id, Area.level == "street")
        .order_by(Area.name)
    )
    communities = session.scalars(
        select(Unit)
        .where(
            Unit.committee_id == actor.committee_id,
            Unit.kind == UnitKind.COMMUNITY.value,
            Unit.status == UnitStatus.ACTIVE.value,
        )
        .order_by(Unit.name)
    )
    return Unpaired(
        [a for a in streets if a.id not in streets_paired],
        [u for u in communities if u.id not in units_paired],
    )
