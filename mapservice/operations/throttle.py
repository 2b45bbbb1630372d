"""Refusing password guessing without letting a stranger lock anyone out.

Within :data:`WINDOW`, an **address** that failed :data:`ADDRESS_MAX` times, or failed
:data:`PAIR_MAX` times on one account, is refused until its window has passed (hard: it is the
guesser's own address). An **account** is only slowed, never shut: from its
:data:`SOFT_FROM`-th failure (from any addresses) each attempt on it waits a growing delay,
at most :data:`MAX_DELAY` — so ten wrong passwords sent from ten addresses cost the owner a
few seconds at the next log-in, not a quarter of an hour; the committee's audit log records
the account's run of failures once per window. Attempts are recorded in their own transaction
so a refused request still counts.

Counting an address's failures and recording its attempt are one step (:func:`lock_address`
first, in the same transaction): twenty wrong passwords sent at once from one address, to any
of the instances sharing the database, are tried no more than the limit allows.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from mapservice.models import LoginAttempt, User
from mapservice.models.audit import record

WINDOW = timedelta(minutes=15)
ADDRESS_MAX = 10
PAIR_MAX = 5
SOFT_FROM = 5
FIRST_DELAY = 0.5  # seconds, doubling with each further failure
MAX_DELAY = 3.0


#: The advisory locks' first key (the second is the address's hash).
_LOCK_CLASS = 23_002


def lock_address(session: Session, address: str) -> None:
    """Serialise the log-in attempts of one address until this transaction ends, across every
    instance on the database: PostgreSQL, an advisory transaction lock keyed on the address;
    SQLite, the write lock the writer session's transaction took when it began."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.blake2b(address[:64].encode(), digest_size=4).digest()
        session.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": _LOCK_CLASS, "b": int.from_bytes(digest, "big", signed=True)},
        )


def _key(username: str) -> str:
    return username.strip().lower()[:60]


def blocked_for(session: Session, username: str, address: str, now: datetime) -> timedelta | None:
    """How long until this address may try again (on this account), or None if it may now."""
    since = now - WINDOW
    failed = (LoginAttempt.at > since, LoginAttempt.success.is_(False))
    waits: list[timedelta] = []
    for where, limit in (
        ((LoginAttempt.address == address,), ADDRESS_MAX),
        ((LoginAttempt.address == address, LoginAttempt.username == _key(username)), PAIR_MAX),
    ):
        rows = session.scalars(
            select(LoginAttempt.at)
            .where(*where, *failed)
            .order_by(LoginAttempt.at.desc())
            .limit(limit)
        ).all()
        if len(rows) >= limit:
            waits.append(rows[-1] + WINDOW - now)
    return max(waits) if waits else None


def account_failures(session: Session, username: str, now: datetime) -> int:
    """Failed attempts on this account within the window, from any address."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(
                LoginAttempt.username == _key(username),
                LoginAttempt.at > now - WINDOW,
                LoginAttempt.success.is_(False),
            )
        )
        or 0
    )


def delay_for(failures: int) -> float:
    """Seconds an attempt on an account waits after ``failures`` failures in the window."""
    if failures < SOFT_FROM:
        return 0.0
    return float(min(FIRST_DELAY * 2 ** (failures - SOFT_FROM), MAX_DELAY))


def record_attempt(session: Session, username: str, address: str, now: datetime) -> int:
    """Record an attempt as failed (see :func:`mark_success`); returns its id. The attempt that
    brings an existing account to :data:`SOFT_FROM` failures in the window is audited."""
    attempt = LoginAttempt(username=_key(username), address=address[:64], at=now)
    session.add(attempt)
    # Old rows are of no use; keep the table small.
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - 2 * WINDOW))
    session.flush()
    if account_failures(session, username, now) == SOFT_FROM:
        user = session.scalars(select(User).where(func.lower(User.username) == _key(username)))
        target = user.first()
        if target is not None:
            addresses = session.scalar(
                select(func.count(func.distinct(LoginAttempt.address))).where(
                    LoginAttempt.username == _key(username),
                    LoginAttempt.at > now - WINDOW,
                    LoginAttempt.success.is_(False),
                )
            )
            record(
                session,
                None,
                "user.login_failures",
                target,
                committee_id=target.committee_id,
                failures=SOFT_FROM,
                addresses=int(addresses or 0),
            )
    return attempt.id


def mark_success(session: Session, attempt_id: int) -> None:
    attempt = session.get(LoginAttempt, attempt_id)
    if attempt is not None:
        attempt.success = True
