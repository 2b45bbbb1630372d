"""The /api/v1 activity list and pairing endpoints: plans (list; draft one for a year) and
pairings (list; create)."""

from __future__ import annotations

from mapservice.api import schemas as s
from mapservice.api.common import READ_ERRORS, WRITE_ERRORS
from mapservice.api.framework import api_user, db, endpoint
from mapservice.core.i18n import N_
from mapservice.models import Committee, User
from mapservice.operations import pairings as pair_ops
from mapservice.operations import plans as ops


def _user() -> User:
    user = api_user()
    assert user is not None  # every endpoint here has a scope: a token was required
    return user


def _plan_out(user: User, plan_id: int) -> s.PlanOut:
    committee = db().get(Committee, user.committee_id)
    assert committee is not None
    view = ops.plan_view(db(), user, plan_id, ops.committee_today(committee))
    p = view.plan
    return s.PlanOut(
        id=p.id,
        year=p.year,
        title=p.title,
        period=p.period,  # type: ignore[arg-type]
        status=p.status,  # type: ignore[arg-type]
        entries=[
            s.PlanEntryOut(
                id=t.entry.id,
                period=t.entry.period,
                unit_id=t.entry.unit_id,
                unit=t.entry.unit.name,
                kind=t.entry.kind,  # type: ignore[arg-type]
                title=t.entry.title,
                led_on=t.entry.led_on,
                standing=t.standing.value,  # type: ignore[arg-type]
            )
            for t in view.turns
        ],
    )


@endpoint(
    "GET",
    "/plans",
    summary=N_("The committee's activity plans with each turn's standing (staff)"),
    tag="plans",
    response=s.PlanList,
    scope="read",
    errors=READ_ERRORS,
)
def list_plans() -> s.PlanList:
    user = _user()
    return s.PlanList(plans=[_plan_out(user, p.id) for p in ops.list_plans(db(), user)])


@endpoint(
    "POST",
    "/plans",
    summary=N_("Draft the activity plan for a year from the admitted units (committee admin)"),
    tag="plans",
    body=s.PlanIn,
    response=s.PlanOut,
    status=201,
    scope="manage",
    errors=WRITE_ERRORS,
)
def create_plan(body: s.PlanIn) -> s.PlanOut:
    user = _user()
    plan = ops.create_plan(db(), user, year=body.year, period=body.period, title=body.title)
    db().flush()
    return _plan_out(user, plan.id)


def _pairing_out(row: pair_ops.PairingRow) -> s.PairingOut:
    p = row.pairing
    return s.PairingOut(
        id=p.id,
        unit_id=p.unit_id,
        unit=p.unit.name,
        partner_unit_id=p.partner_unit_id,
        partner_area_id=p.partner_area_id,
        partner=p.partner_name,
        start_on=p.start_on,
        end_on=p.end_on,
        active=row.active,
        kind=row.kind,  # type: ignore[arg-type]
    )


def _rows(user: User) -> list[pair_ops.PairingRow]:
    committee = db().get(Committee, user.committee_id)
    assert committee is not None
    return pair_ops.list_pairings(db(), user, ops.committee_today(committee))


@endpoint(
    "GET",
    "/pairings",
    summary=N_("The committee's pairings, one to one or many to one today"),
    tag="pairings",
    response=s.PairingList,
    scope="read",
    errors=READ_ERRORS,
)
def list_pairings() -> s.PairingList:
    return s.PairingList(pairings=[_pairing_out(r) for r in _rows(_user())])


@endpoint(
    "POST",
    "/pairings",
    summary=N_("Pair a unit with another unit or a street (committee admin)"),
    tag="pairings",
    body=s.PairingIn,
    response=s.PairingOut,
    status=201,
    scope="manage",
    errors=WRITE_ERRORS,
)
def create_pairing(body: s.PairingIn) -> s.PairingOut:
    user = _user()
    pairing = pair_ops.create_pairing(db(), user, **body.model_dump())
    db().flush()
    return _pairing_out(next(r for r in _rows(user) if r.pairing.id == pairing.id))
