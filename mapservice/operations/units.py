"""Member units: admission (applied → active → suspended) and editing, by the committee admin."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import ApplicationStatus, UnitKind, UnitStatus
from mapservice.models import Group, Unit, UnitApplication, User
from mapservice.models.audit import record
from mapservice.operations.uniques import UNIT_NAME, unique

#: The fields of a unit its audit entries show before → after.
UNIT_FIELDS = ("name", "name_en", "kind", "secretary", "phone")

# Allowed admission transitions.
TRANSITIONS = {
    UnitStatus.APPLIED.value: {UnitStatus.ACTIVE.value, UnitStatus.SUSPENDED.value},
    UnitStatus.ACTIVE.value: {UnitStatus.SUSPENDED.value},
    UnitStatus.SUSPENDED.value: {UnitStatus.ACTIVE.value},
}


def name_taken(
    session: Session, model: type[Unit] | type[Group], committee_id: int, name: str, own: Any
) -> bool:
    """Whether another record of ``model`` (a unit, a group) in the committee is called
    ``name`` (``own``: the record being edited, None for a new one)."""
    clash = session.scalar(
        select(model.id).where(model.committee_id == committee_id, model.name == name)
    )
    return clash is not None and (own is None or clash != own.id)


def unit_exists(name: str) -> str:
    """The refusal of a unit name the committee already has."""
    return _("A unit named '%(name)s' already exists.", name=name)


def save_unit(
    session: Session,
    actor: User,
    *,
    name: str,
    kind: str,
    secretary: str = "",
    phone: str = "",
    name_en: str = "",
    unit: Unit | None = None,
) -> Unit:
    """Create (status ``applied``) or edit a unit; committee admin only."""
    policy.require_committee_admin(actor)
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = _("A name is required.")
    elif name_taken(session, Unit, actor.committee_id, name, unit):
        errors["name"] = unit_exists(name)
    if UnitKind.parse(kind) is None:
        errors["kind"] = _("Unknown choice '%(value)s'.", value=kind)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    creating = unit is None
    if unit is None:
        unit = Unit(committee_id=actor.committee_id, status=UnitStatus.APPLIED.value)
    else:
        unit = policy.get_unit(session, actor, unit.id, edit=True)
    before = {k: getattr(unit, k, None) for k in UNIT_FIELDS}
    with unique(session, UNIT_NAME, "name", unit_exists(name)):
        unit.name, unit.name_en, unit.kind = name, name_en.strip(), str(UnitKind.parse(kind))
        unit.secretary, unit.phone = secretary.strip(), phone.strip()
        session.add(unit)
    changes = {
        k: [None if creating else before[k], getattr(unit, k)]
        for k in UNIT_FIELDS
        if creating or before[k] != getattr(unit, k)
    }
    if creating or changes:
        record(
            session,
            actor,
            "unit.create" if creating else "unit.update",
            unit,
            changes=changes,
            name=name,
        )
    return unit


def set_status(session: Session, actor: User, unit_id: int, status: str) -> Unit:
    """Admit, suspend or reinstate a unit."""
    unit = policy.get_unit(session, actor, unit_id, edit=True)
    if status == unit.status:
        return unit
    if session.scalar(
        select(UnitApplication.id).where(
            UnitApplication.unit_id == unit.id,
            UnitApplication.status == ApplicationStatus.PENDING.value,
        )
    ):
        raise ValidationFailed(
            _("Unit '%(name)s' applied to join: admit or decline its application.", name=unit.name),
            {"status": status},
        )
    if status not in TRANSITIONS.get(unit.status, set()):
        raise ValidationFailed(
            _(
                "A unit cannot go from %(old)s to %(new)s.",
                old=UnitStatus(unit.status).label(lang()),
                new=UnitStatus(status).label(lang()) if UnitStatus.parse(status) else status,
            ),
            {"status": status},
        )
    old, unit.status = unit.status, status
    record(session, actor, "unit.status", unit, changes={"status": [old, status]})
    return unit
