"""Refusing password guessing: after ``MAX_FAILURES`` failed log-ins on one account, or from
one address, within ``WINDOW``, further attempts are refused until the window has passed.
Attempts are recorded in their own transaction so a refused request still counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mapservice.models import LoginAttempt

MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)


def blocked_for(session: Session, username: str, address: str, now: datetime) -> timedelta | None:
    """How long until this account or address may try again, or None if it may now."""
    since = now - WINDOW
    waits: list[timedelta] = []
    for column, value in (
        (LoginAttempt.username, username.strip().lower()),
        (LoginAttempt.address, address),
    ):
        rows = session.scalars(
            select(LoginAttempt.at)
            .where(column == value, LoginAttempt.at > since, LoginAttempt.success.is_(False))
            .order_by(LoginAttempt.at.desc())
            .limit(MAX_FAILURES)
        ).all()
        if len(rows) >= MAX_FAILURES:
            waits.append(rows[-1] + WINDOW - now)
    return max(waits) if waits else None


def record_attempt(session: Session, username: str, address: str, now: datetime) -> int:
    """Record an attempt as failed (see :func:`mark_success`); returns its id."""
    attempt = LoginAttempt(username=username.strip().lower()[:60], address=address[:64], at=now)
    session.add(attempt)
    # Old rows are of no use; keep the table small.
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - 2 * WINDOW))
    session.flush()
    return attempt.id


def mark_success(session: Session, attempt_id: int) -> None:
    attempt = session.get(LoginAttempt, attempt_id)
    if attempt is not None:
        attempt.success = True
