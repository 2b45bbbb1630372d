"""Accounts: creating users, checking and resetting passwords (argon2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mapservice.core import venue_spec
from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.core.vocab import Role
from mapservice.db import utcnow
from mapservice.models import Committee, Group, Unit, User
from mapservice.models.audit import record
from mapservice.operations.uniques import USERNAME, unique

#: argon2id at OWASP's recommended configuration (Password Storage Cheat Sheet: 19 MiB, two
#: passes, one lane). argon2-cffi's default (RFC 9106's low-memory profile, 64 MiB, three
#: passes, four lanes) made every log-in allocate 64 MiB in the worker that checked it: the
#: largest worker's peak under the benchmark's load rose by as much with each log-in, and
#: four log-ins at once in one worker (its four threads) held 256 MiB. A hash made with
#: other parameters is still checked with its own, and made again with these at the next
#: log-in (:func:`authenticate`).
HASH_PARAMETERS: Final = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
_hasher = PasswordHasher(
    time_cost=HASH_PARAMETERS["time_cost"],
    memory_cost=HASH_PARAMETERS["memory_cost"],
    parallelism=HASH_PARAMETERS["parallelism"],
)
MIN_PASSWORD = 12
# Verifying against this keeps a log-in for an unknown name as slow as for a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD:
        return _("The password must have at least %(n)s characters.", n=MIN_PASSWORD)
    if len(password) > 128:
        return _("The password must have at most 128 characters.")
    if username and password.lower() == username.lower():
        return _("The password must not be the user name.")
    if len(set(password)) < 4:
        return _("The password is too simple.")
    return None


def email_problem(email: str) -> str | None:
    """Why ``email`` (stripped; empty is allowed) is not an address, or None."""
    if email and (len(email) > 120 or "@" not in email or any(c.isspace() for c in email)):
        return _("Enter an e-mail address like name@example.com.")
    return None


def phone_problem(phone: str) -> str | None:
    """Why ``phone`` (stripped; empty is allowed) is not a phone number, or None."""
    if phone and not re.fullmatch(venue_spec.PHONE_PATTERN, phone):
        return _("Use digits, spaces, + - ( ) only (3 to 30).")
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def username_taken(session: Session, username: str) -> bool:
    """Whether an account (of any committee) is called ``username``, in any case."""
    return (
        session.scalar(select(User.id).where(func.lower(User.username) == username.lower()))
        is not None
    )


def _username_taken(username: str) -> str:
    return _("The user name '%(name)s' is taken.", name=username)


def create_user(
    session: Session,
    actor: User | None,
    committee: Committee,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    phone: str = "",
    email: str = "",
    unit: Unit | None = None,
    group: Group | None = None,
    groups: Sequence[Group] = (),
) -> User:
    """A user with one role: a unit secretary needs ``unit``, a booker one or more groups
    (``group`` and/or ``groups``; the first is its default group)."""
    booker_groups = list(dict.fromkeys([*([group] if group else []), *groups]))
    errors: dict[str, str] = {}
    username = username.strip()
    if not (3 <= len(username) <= 60) or any(c.isspace() for c in username):
        errors["username"] = _("The user name must be 3 to 60 characters without spaces.")
    elif username_taken(session, username):
        errors["username"] = _username_taken(username)
    problem = password_problem(password, username)
    if problem:
        errors["password"] = problem
    if Role.parse(role) is None:
        errors["role"] = _("Unknown role '%(value)s'.", value=role)
    elif role == Role.UNIT_SECRETARY.value and unit is None:
        errors["unit"] = _("A unit secretary needs a unit.")
    elif role == Role.BOOKER.value and not booker_groups:
        errors["group"] = _("A booker needs a group.")
    email = email.strip()
    if email_problem(email):
        errors["email"] = email_problem(email) or ""
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    user = User(
        committee_id=committee.id,
        username=username,
        display_name=display_name or username,
        phone=phone,
        email=email,
        password_hash=hash_password(password),
        role=role,
        unit_id=unit.id if unit and role == Role.UNIT_SECRETARY.value else None,
        group_id=booker_groups[0].id if booker_groups and role == Role.BOOKER.value else None,
    )
    if role == Role.BOOKER.value:
        user.groups = booker_groups
    with unique(session, USERNAME, "username", _username_taken(username)):
        session.add(user)
    record(session, actor, "user.create", user, role=role)
    return user


def verify_password(user: User, password: str) -> bool:
    """Whether ``password`` is ``user``'s."""
    try:
        return bool(_hasher.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same cost either way)."""
    user = session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).one_or_none()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def reset_password(session: Session, actor: User | None, user: User, password: str) -> None:
    problem = password_problem(password, user.username)
    if problem:
        raise ValidationFailed(problem, {"password": problem})
    user.password_hash = hash_password(password)
    record(session, actor, "user.reset_password", user)
