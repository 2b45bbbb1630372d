"""Units' applications to join the committee (成员准入): an organisation applies on the public
page ``/apply``; the committee admin admits it (the unit becomes active, its contact gets a
secretary account and a one-time set-password link) or declines it with a reason.

Abuse guards: at most :data:`MAX_PER_ADDRESS` applications from one client address within
:data:`WINDOW` (counted from the applications themselves), a honeypot field a person never
fills (filled: refused with a generic message, nothing stored), a length limit on every field.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.core.errors import DomainError, TooMany, ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.vocab import ApplicationStatus, Role, UnitKind, UnitStatus
from mapservice.models import Committee, Group, Unit, UnitApplication, User, Venue
from mapservice.models.audit import record
from mapservice.operations.accounts import create_account, issue_link
from mapservice.operations.uniques import UNIT_NAME, unique
from mapservice.operations.units import name_taken, unit_exists
from mapservice.operations.users import email_problem, phone_problem, username_taken
from mapservice.operations.venues import Region

MAX_PER_ADDRESS = 5
WINDOW = timedelta(hours=1)
#: The longest value each field takes (characters, after trimming).
LIMITS = {
    "name": 120,
    "address": 200,
    "contact_name": 60,
    "phone": 30,
    "email": 120,
    "venues_plan": 1000,
    "reason": 500,
    "username": 60,
}
#: What an application's audit entries show.
SHOWN = ("name", "kind", "address", "contact_name", "phone", "email", "venues_plan")


def refused_quietly() -> DomainError:
    """The answer to a form whose honeypot was filled: says nothing about why."""
    return DomainError(
        "application_refused",
        _("Your application could not be accepted. Please contact the committee."),
    )


def _too_long(values: dict[str, str]) -> dict[str, str]:
    return {
        key: _("At most %(n)s characters.", n=LIMITS[key])
        for key, value in values.items()
        if len(value) > LIMITS[key]
    }


def submit_application(
    session: Session,
    committee: Committee,
    *,
    name: str,
    kind: str,
    address: str,
    lon: str,
    lat: str,
    crs: str,
    contact_name: str,
    phone: str,
    email: str = "",
    venues_plan: str = "",
    trap: str = "",
    client_address: str,
    now: datetime,
) -> UnitApplication:
    """Store an application: its unit (status ``applied``, so its name is taken) and what the
    organisation said. Refused: a filled ``trap`` (quietly), a flood from ``client_address``
    (:class:`TooMany`), a missing or overlong field, a name the committee already has, a
    location outside the committee's district."""
    if trap.strip():
        raise refused_quietly()
    address_key = (client_address or "-")[:64]
    recent = session.scalar(
        select(func.count(UnitApplication.id)).where(
            UnitApplication.client_address == address_key,
            UnitApplication.submitted_at > now - WINDOW,
        )
    )
    if (recent or 0) >= MAX_PER_ADDRESS:
        raise TooMany(
            "too_many_applications",
            _(
                "Too many applications from your network; try again in an hour or call the"
                " committee."
            ),
        )
    values = {
        "name": name.strip(),
        "address": address.strip(),
        "contact_name": contact_name.strip(),
        "phone": phone.strip(),
        "email": email.strip(),
        "venues_plan": venues_plan.strip(),
    }
    errors = _too_long(values)
    for key in ("name", "address", "contact_name", "phone"):
        if not values[key]:
            errors[key] = _("This field is required.")
    if "name" not in errors and name_taken(session, Unit, committee.id, values["name"], None):
        errors["name"] = unit_exists(values["name"])
    if UnitKind.parse(kind) is None:
        errors["kind"] = _("Unknown choice '%(value)s'.", value=kind[:40])
    for key, problem in (
        ("phone", phone_problem(values["phone"])),
        ("email", email_problem(values["email"])),
    ):
        if problem and key not in errors:
            errors[key] = problem
    point = _point(session, committee, lon, lat, crs, errors)
    if errors or point is None:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    unit = Unit(
        committee_id=committee.id,
        name=values["name"],
        kind=str(UnitKind.parse(kind)),
        secretary=values["contact_name"],
        phone=values["phone"],
        status=UnitStatus.APPLIED.value,
    )
    with unique(session, UNIT_NAME, "name", unit_exists(unit.name)):
        session.add(unit)
    application = UnitApplication(
        committee_id=committee.id,
        unit_id=unit.id,
        kind=unit.kind,
        lon=point[0],
        lat=point[1],
        client_address=address_key,
        submitted_at=now,
        status=ApplicationStatus.PENDING.value,
        **values,
    )
    session.add(application)
    session.flush()  # its id, for the audit entry
    record(
        session,
        None,
        "unit.apply",
        unit,
        changes={
            **{k: [None, getattr(application, k)] for k in SHOWN if getattr(application, k)},
            "application": [None, ApplicationStatus.PENDING.value],
        },
        application_id=application.id,
    )
    return application


def _point(
    session: Session, committee: Committee, lon: str, lat: str, crs: str, errors: dict[str, str]
) -> tuple[float, float] | None:
    """The location in WGS-84, or None with the problem in ``errors``."""
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        errors["lon"] = _("Pick the location on the map.")
        return None
    point = Region.of(session, committee).locate(x, y, crs or "wgs84", errors)
    if "crs" in errors:  # the form's system is hidden: say it where it is seen
        errors["lon"] = errors.pop("crs")
    return point


def pending_application(
    session: Session, actor: User | None, application_id: int
) -> UnitApplication:
    """The application, if ``actor`` may decide it and it is still pending (else refused)."""
    application = policy.get_application(session, actor, application_id)
    if application.status != ApplicationStatus.PENDING.value or application.unit is None:
        raise _decided()
    return application


def _claim(
    session: Session, application: UnitApplication, actor: User, status: str, now: datetime
) -> None:
    """Mark the pending application decided, once even when two admins race (the update
    claims it only while pending)."""
    claimed = session.execute(
        update(UnitApplication)
        .where(
            UnitApplication.id == application.id,
            UnitApplication.status == ApplicationStatus.PENDING.value,
        )
        .values(status=status, decided_at=now, decided_by_id=actor.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise _decided()
    session.refresh(application)


def _decided() -> ValidationFailed:
    return ValidationFailed(_("This application was already decided."), {"status": "decided"})


def admit(
    session: Session,
    actor: User,
    application_id: int,
    *,
    username: str | None = None,
    now: datetime,
) -> tuple[UnitApplication, User, str]:
    """Admit: the unit becomes active, the contact gets a secretary account of that unit
    (no password; named ``username``, else :func:`suggested_username`) and a set-password
    link, whose secret is returned to show once."""
    application = pending_application(session, actor, application_id)
    unit = application.unit
    assert unit is not None
    if username is None:
        username = suggested_username(session, application)
    errors = _too_long({"username": username.strip()})
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    user = create_account(
        session,
        actor,
        username=username,
        role=Role.UNIT_SECRETARY.value,
        display_name=application.contact_name,
        phone=application.phone,
        email=application.email,
        unit_id=unit.id,
    )
    _claim(session, application, actor, ApplicationStatus.ADMITTED.value, now)
    application.account_id = user.id
    unit.status = UnitStatus.ACTIVE.value
    record(
        session,
        actor,
        "unit.admit",
        unit,
        changes={
            "status": [UnitStatus.APPLIED.value, UnitStatus.ACTIVE.value],
            "application": [ApplicationStatus.PENDING.value, ApplicationStatus.ADMITTED.value],
        },
        application_id=application.id,
        account=user.username,
    )
    return application, user, issue_link(session, actor, user, now)


def decline(
    session: Session, actor: User, application_id: int, *, reason: str, now: datetime
) -> UnitApplication:
    """Decline with a reason (kept, shown to the admin, in the audit log). The applied unit
    goes, so its name is free again; if anything came to refer to it meanwhile it is
    suspended instead."""
    application = pending_application(session, actor, application_id)
    unit = application.unit
    assert unit is not None
    reason = reason.strip()
    errors = _too_long({"reason": reason})
    if not reason:
        errors["reason"] = _("Say why the application is declined.")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _claim(session, application, actor, ApplicationStatus.DECLINED.value, now)
    application.reason = reason
    keep = _referred_to(session, unit.id)
    record(
        session,
        actor,
        "unit.decline",
        unit,
        changes={
            "status": [UnitStatus.APPLIED.value, UnitStatus.SUSPENDED.value if keep else None],
            "application": [ApplicationStatus.PENDING.value, ApplicationStatus.DECLINED.value],
            "reason": [None, reason],
        },
        application_id=application.id,
        name=unit.name,
    )
    if keep:
        unit.status = UnitStatus.SUSPENDED.value
    else:
        application.unit_id = None
        session.delete(unit)
    session.flush()
    return application


def _referred_to(session: Session, unit_id: int) -> bool:
    return any(
        session.scalar(select(model.id).where(model.unit_id == unit_id).limit(1)) is not None
        for model in (Venue, Group, User)
    )


def list_applications(
    session: Session, actor: User | None, status: str | None = None
) -> list[UnitApplication]:
    """The committee's applications for its admin (only those of ``status``, if given):
    pending first (oldest first), then the decided ones (latest first)."""
    policy.require_committee_admin(actor)
    stmt = select(UnitApplication).where(policy.applications_decided_by(actor))
    if status:
        wanted = ApplicationStatus.parse(status)
        if wanted is None:
            message = _("Unknown choice '%(value)s'.", value=status[:40])
            raise ValidationFailed(message, {"status": message})
        stmt = stmt.where(UnitApplication.status == wanted.value)
    rows = session.scalars(stmt.order_by(UnitApplication.submitted_at)).all()
    pending = [a for a in rows if a.status == ApplicationStatus.PENDING.value]
    decided = sorted(
        (a for a in rows if a.status != ApplicationStatus.PENDING.value),
        key=lambda a: a.decided_at or a.submitted_at,
        reverse=True,
    )
    return pending + decided


def applying_units(session: Session, actor: User | None) -> set[int]:
    """The units whose application waits for ``actor`` (none for anyone but an admin)."""
    return {
        unit_id
        for unit_id in session.scalars(
            select(UnitApplication.unit_id).where(
                policy.applications_decided_by(actor),
                UnitApplication.status == ApplicationStatus.PENDING.value,
            )
        )
        if unit_id is not None
    }


def suggested_username(session: Session, application: UnitApplication) -> str:
    """A user name to start from: the e-mail's local part unless an account has it, else
    ``unit-<id>``."""
    local = application.email.split("@", 1)[0].strip().lower()
    if (
        3 <= len(local) <= 60
        and local.isascii()
        and not any(c.isspace() for c in local)
        and not username_taken(session, local)
    ):
        return local
    return f"unit-{application.unit_id or application.id}"
