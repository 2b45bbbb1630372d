"""Youth groups (青年团体 / 团支部): creating, editing, suspending and reactivating them, by the
committee admin (any group of the committee) or a unit secretary (its own unit's groups).
A suspended group cannot book (``policy.groups.active_with_unit``, which the booking engine
checks); its upcoming bookings stay until someone cancels them (:func:`upcoming_bookings`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mapservice import policy
from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, Group, Unit, User
from mapservice.models.audit import record
from mapservice.operations.uniques import GROUP_NAME, unique
from mapservice.operations.units import name_taken
from mapservice.operations.users import email_problem, phone_problem


def _unit_for(session: Session, actor: User, unit_id: int | None) -> tuple[int | None, str | None]:
    """The unit a group may belong to (its id or None for a standalone group), or a problem:
    the admin names any unit of the committee or none, a secretary only its own unit."""
    if actor.is_secretary:
        if unit_id is not None and unit_id != actor.unit_id:
            return None, _("You may only manage your own unit's groups.")
        return actor.unit_id, None
    if unit_id is None:
        return None, None
    found = session.scalar(
        select(Unit.id).where(Unit.id == unit_id, Unit.committee_id == actor.committee_id)
    )
    return (found, None) if found is not None else (None, _("No such unit."))


def _group_exists(name: str) -> str:
    return _("A group named '%(name)s' already exists.", name=name)


def save_group(
    session: Session,
    actor: User,
    *,
    name: str,
    unit_id: int | None = None,
    contact_name: str = "",
    contact_phone: str = "",
    contact_email: str = "",
    group: Group | None = None,
) -> Group:
    """Create a group (active) or change one; refused as a whole (ValidationFailed, field by
    field) on a duplicate name in the committee, a unit one may not use or a bad contact."""
    policy.require_group_manager(actor)
    if group is not None:
        group = policy.get_group(session, actor, group.id, edit=True)
    errors: dict[str, str] = {}
    name, contact_name = name.strip(), contact_name.strip()
    contact_phone, contact_email = contact_phone.strip(), contact_email.strip()
    if not name or len(name) > 120:
        errors["name"] = _("A name of 1 to 120 characters is required.")
    elif name_taken(session, Group, actor.committee_id, name, group):
        errors["name"] = _group_exists(name)
    unit, problem = _unit_for(session, actor, unit_id)
    if problem:
        errors["unit_id"] = problem
    if len(contact_name) > 60:
        errors["contact_name"] = _("At most %(n)s characters.", n=60)
    for key, found in (
        ("contact_phone", phone_problem(contact_phone)),
        ("contact_email", email_problem(contact_email)),
    ):
        if found:
            errors[key] = found
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    values = {
        "name": name,
        "unit_id": unit,
        "contact_name": contact_name,
        "contact_phone": contact_phone,
        "contact_email": contact_email,
    }
    if group is None:
        group = Group(committee_id=actor.committee_id, active=True, **values)
        with unique(session, GROUP_NAME, "name", _group_exists(name)):
            session.add(group)
        record(
            session, actor, "group.create", group, changed={k: [None, v] for k, v in values.items()}
        )
        return group
    changed = {k: [getattr(group, k), v] for k, v in values.items() if getattr(group, k) != v}
    with unique(session, GROUP_NAME, "name", _group_exists(name)):
        for key, value in values.items():
            setattr(group, key, value)
    record(session, actor, "group.update", group, changed=changed)
    return group


def set_group_active(session: Session, actor: User, group_id: int, active: bool) -> Group:
    """Suspend (``active=False``) or reactivate a group; nothing happens when it already is."""
    group = policy.get_group(session, actor, group_id, edit=True)
    if group.active != active:
        group.active = active
        record(session, actor, "group.reactivate" if active else "group.suspend", group)
    return group


def upcoming_bookings(session: Session, group: Group, now: datetime) -> list[Booking]:
    """The group's bookings still to come (pending or confirmed), soonest first: what the
    admin keeps or cancels once the group is suspended."""
    active = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.group_id == group.id, Booking.status.in_(active), Booking.end_at > now)
            .options(selectinload(Booking.venue))
            .order_by(Booking.start_at)
        )
    )


def list_groups(
    session: Session,
    actor: User,
    *,
    unit_id: int | None = None,
    status: str = "",
    text: str = "",
) -> list[Group]:
    """The groups ``actor`` acts for (a booker its own), filtered by unit (0: standalone
    groups), status (``active``/``suspended``) and a piece of the name or contact."""
    stmt = select(Group).where(policy.groups_acted_for_by(actor))
    if unit_id == 0:
        stmt = stmt.where(Group.unit_id.is_(None))
    elif unit_id is not None:
        stmt = stmt.where(Group.unit_id == unit_id)
    if status in ("active", "suspended"):
        stmt = stmt.where(Group.active.is_(status == "active"))
    text = text.strip()
    if text:
        like = f"%{text}%"
        stmt = stmt.where(Group.name.like(like) | Group.contact_name.like(like))
    return list(session.scalars(stmt.options(selectinload(Group.unit)).order_by(Group.name)))
