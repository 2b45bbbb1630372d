"""Accounts run from the app: the admin (any account of its committee) and a unit secretary
(the bookers of its unit's groups) create accounts, deactivate and reactivate them and issue
one-time set-password links; every user changes its own password and contact details.

A set-password link is shown once (its secret is stored as a SHA-256 hash), works for
:data:`LINK_LIFETIME` and once; issuing a new one for an account ends the earlier ones.
:func:`issue_link` is the one way to make one (unit admission reuses it)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.booking.notices import Mail
from mapservice.core.errors import NotAllowed, NotFound, ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.vocab import Role
from mapservice.models import Committee, Group, PasswordLink, Unit, User
from mapservice.models.audit import record
from mapservice.operations.tokens import digest
from mapservice.operations.users import (
    create_user,
    email_problem,
    hash_password,
    password_problem,
    phone_problem,
    verify_password,
)

LINK_LIFETIME = timedelta(hours=72)


def create_account(
    session: Session,
    actor: User,
    *,
    username: str,
    role: str,
    display_name: str = "",
    phone: str = "",
    email: str = "",
    unit_id: int | None = None,
    group_ids: Sequence[int] = (),
) -> User:
    """A secretary of a unit (admin only) or a booker for one or more groups (the admin any
    of the committee's, a unit secretary only its unit's; the first is the booker's default
    group), with no usable password yet: issue a link next."""
    policy.require_group_manager(actor)
    committee = session.get(Committee, actor.committee_id)
    assert committee is not None
    unit: Unit | None = None
    groups: list[Group] = []
    errors: dict[str, str] = {}
    if role == Role.UNIT_SECRETARY.value and actor.is_admin:
        unit = session.scalars(
            select(Unit).where(Unit.id == (unit_id or 0), Unit.committee_id == actor.committee_id)
        ).one_or_none()
        if unit is None:
            errors["unit_id"] = _("A unit secretary needs a unit.")
    elif role == Role.BOOKER.value:
        groups = managed_groups(session, actor, group_ids)
        if not groups:
            errors["group_id"] = _("A booker needs one of your groups.")
        elif len(groups) < len(set(group_ids)):
            errors["group_id"] = _("You may only manage your own unit's groups.")
    else:
        errors["role"] = _("You may not create this kind of account.")
    for key, problem in (("phone", phone_problem(phone.strip())), ("email", email_problem(email))):
        if problem:
            errors[key] = problem
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return create_user(
        session,
        actor,
        committee,
        username=username,
        password=secrets.token_urlsafe(32),  # nobody knows it: the link sets the first one
        role=role,
        display_name=display_name.strip(),
        phone=phone.strip(),
        email=email.strip(),
        unit=unit,
        groups=groups,
    )


def managed_groups(session: Session, actor: User, group_ids: Sequence[int]) -> list[Group]:
    """The groups of ``group_ids`` that ``actor`` manages, in the order given."""
    found = {
        g.id: g
        for g in session.scalars(
            select(Group).where(Group.id.in_(set(group_ids)), policy.groups_managed_by(actor))
        )
    }
    return [found[i] for i in dict.fromkeys(group_ids) if i in found]


def set_booker_groups(
    session: Session, actor: User, user_id: int, group_ids: Sequence[int]
) -> User:
    """The groups a booker books for (at least one, each one ``actor`` manages: a unit
    secretary only its unit's). Its default group stays unless it is no longer among them
    (then the first given)."""
    user = policy.get_managed_user(session, actor, user_id)
    if not user.is_booker:
        raise ValidationFailed(
            _("Only a booker books for groups."), {"group_id": _("Only a booker books for groups.")}
        )
    groups = managed_groups(session, actor, group_ids)
    if not groups or len(groups) < len(set(group_ids)):
        message = (
            _("You may only manage your own unit's groups.")
            if groups
            else _("A booker needs one of your groups.")
        )
        raise ValidationFailed(_("Please correct the marked fields."), {"group_id": message})
    before = [g.name for g in user.groups]
    user.groups = groups
    if user.group_id not in {g.id for g in groups}:
        user.group_id = groups[0].id
    after = sorted(g.name for g in groups)
    if sorted(before) != after:
        record(session, actor, "user.groups", user, changes={"groups": [sorted(before), after]})
    return user


def set_user_active(session: Session, actor: User, user_id: int, active: bool) -> User:
    """Deactivate or reactivate an account. A deactivated user's sessions and API tokens stop
    at once (the session loader and ``policy.can_use_token`` read ``active``). Refused for
    the last active admin of the committee."""
    user = policy.get_managed_user(session, actor, user_id)
    if user.active == active:
        return user
    if not active and user.is_admin:
        admins = session.scalar(
            select(func.count(User.id)).where(
                User.committee_id == user.committee_id,
                User.role == Role.COMMITTEE_ADMIN.value,
                User.active.is_(True),
            )
        )
        if (admins or 0) <= 1:
            raise NotAllowed(
                "last_admin", _("The committee's last active admin cannot be deactivated.")
            )
    user.active = active
    record(session, actor, "user.activate" if active else "user.deactivate", user)
    return user


def issue_link(session: Session, actor: User | None, user: User, now: datetime) -> str:
    """A new one-time set-password link's secret for ``user`` (the caller checked that
    ``actor`` may: :func:`issue_link_for`, or unit admission); earlier open links end."""
    session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
        .values(expires_at=now)
    )
    secret = secrets.token_urlsafe(32)
    link = PasswordLink(
        user_id=user.id,
        token_hash=digest(secret),
        created_by_id=actor.id if actor else None,
        created_at=now,
        expires_at=now + LINK_LIFETIME,
    )
    session.add(link)
    session.flush()
    record(session, actor, "user.password_link", user, expires_at=link.expires_at)
    return secret


def issue_link_for(session: Session, actor: User, user_id: int, now: datetime) -> tuple[User, str]:
    """:func:`issue_link` for an account ``actor`` manages (else NotFound)."""
    user = policy.get_managed_user(session, actor, user_id)
    return user, issue_link(session, actor, user, now)


def _link_problem() -> ValidationFailed:
    return ValidationFailed(
        _("This link has expired or was already used. Ask for a new one."), {"link": "invalid"}
    )


def open_link(session: Session, secret: str, now: datetime) -> PasswordLink:
    """The unused, unexpired link of an active account with this secret; else refused
    (NotFound for a secret that was never issued)."""
    link = session.scalars(
        select(PasswordLink).where(PasswordLink.token_hash == digest(secret))
    ).one_or_none()
    if link is None:
        raise NotFound("link_not_found", _("This link is not valid. Ask for a new one."))
    if link.used_at is not None or link.expires_at <= now or not link.user.active:
        raise _link_problem()
    return link


def redeem_link(session: Session, secret: str, password: str, now: datetime) -> User:
    """Set the password through a link; the link is spent (once, even when two requests race:
    the update claims it only while unused)."""
    link = open_link(session, secret, now)
    user = link.user
    problem = password_problem(password, user.username)
    if problem:
        raise ValidationFailed(problem, {"password": problem})
    claimed = session.execute(
        update(PasswordLink)
        .where(PasswordLink.id == link.id, PasswordLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise _link_problem()
    user.password_hash = hash_password(password)
    record(session, user, "user.set_password", user, via="link")
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """The user's own password, after the current one."""
    if not verify_password(user, current):
        message = _("The current password is wrong.")
        raise ValidationFailed(message, {"current": message})
    problem = password_problem(new, user.username)
    if problem:
        raise ValidationFailed(problem, {"new": problem})
    user.password_hash = hash_password(new)
    record(session, user, "user.change_password", user)


def update_contact(
    session: Session, user: User, *, display_name: str, phone: str, email: str
) -> None:
    """The user's own name as shown, phone and e-mail."""
    display_name, phone, email = display_name.strip(), phone.strip(), email.strip()
    errors: dict[str, str] = {}
    if not display_name or len(display_name) > 60:
        errors["display_name"] = _("A name of 1 to 60 characters is required.")
    for key, problem in (("phone", phone_problem(phone)), ("email", email_problem(email))):
        if problem:
            errors[key] = problem
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    values = {"display_name": display_name, "phone": phone, "email": email}
    changed = {k: [getattr(user, k), v] for k, v in values.items() if getattr(user, k) != v}
    for key, value in values.items():
        setattr(user, key, value)
    if changed:
        record(session, user, "user.update_contact", user, changed=changed)


@dataclass(frozen=True)
class LinkMail:
    """What is sent when SMTP is configured; the page shows the link either way."""

    to: str
    url: str

    def mail(self, committee_name: str) -> Mail:
        body = _(
            "%(committee)s has opened an account for you. Set your password here within"
            " 72 hours (the link works once):\n\n%(url)s",
            committee=committee_name,
            url=self.url,
        )
        return Mail((self.to,), _("Set your password"), body)
