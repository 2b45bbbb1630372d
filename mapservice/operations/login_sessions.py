"""Signed-in sessions kept on the server, so that they can really end.

A browser's cookie holds a random secret (signed by Flask, but a signature only proves the
cookie was issued, not that it is still wanted); :class:`~mapservice.models.LoginSession` keeps
its SHA-256 and a digest of what the session was granted on. A request's session counts only
while its row is not ended, its user is active and the digest still matches: logging out ends
the row, "log out everywhere" ends all of the user's rows, and a password change or reset, a
set-password link, a role or unit change each change the digest, ending every session made
before — wherever the change was made (page, API, CLI), with no call to remember.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mapservice.core.errors import NotFound
from mapservice.core.i18n import _
from mapservice.models import LoginSession, User
from mapservice.models.audit import record
from mapservice.operations.tokens import digest

#: How stale ``last_seen_at`` may get before a request refreshes it (a write per request would
#: take SQLite's writer for every page view).
SEEN_EVERY = timedelta(minutes=5)
#: A session unused this long is over (the cookie itself lasts as long as the browser runs).
IDLE_LIMIT = timedelta(days=14)


def credential(user: User) -> str:
    """What a session was granted on: changing any part ends the sessions made before."""
    basis = f"{user.id}|{user.password_hash}|{user.role}|{user.unit_id or ''}"
    return hashlib.sha256(basis.encode()).hexdigest()


def open_session(
    session: Session, user: User, now: datetime, *, address: str = "", user_agent: str = ""
) -> str:
    """A new session for ``user``; returns the secret for the cookie (shown nowhere else)."""
    secret = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            user_id=user.id,
            token_hash=digest(secret),
            credential=credential(user),
            address=address[:64],
            user_agent=user_agent[:200],
            created_at=now,
            last_seen_at=now,
        )
    )
    # Keep the table small: sessions over for a while are of no use.
    session.execute(
        update(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.ended_at.is_(None),
            LoginSession.last_seen_at < now - IDLE_LIMIT,
        )
        .values(ended_at=now)
    )
    session.flush()
    return secret


def live_session(
    session: Session, user_id: int, secret: str | None, now: datetime
) -> tuple[User, LoginSession] | None:
    """The user and session row behind a cookie, or None when the session is over."""
    if not secret:
        return None
    row = session.scalars(
        select(LoginSession).where(LoginSession.token_hash == digest(secret))
    ).one_or_none()
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return None
    if row.last_seen_at < now - IDLE_LIMIT:
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or row.credential != credential(user):
        return None
    return user, row


def needs_touch(row: LoginSession, now: datetime) -> bool:
    return row.last_seen_at < now - SEEN_EVERY


def touch(session: Session, row_id: int, now: datetime) -> None:
    session.execute(update(LoginSession).where(LoginSession.id == row_id).values(last_seen_at=now))


def end_session(session: Session, secret: str | None, now: datetime) -> None:
    """Log-out: this cookie's session is over (nothing happens for an unknown secret)."""
    if secret:
        session.execute(
            update(LoginSession)
            .where(LoginSession.token_hash == digest(secret), LoginSession.ended_at.is_(None))
            .values(ended_at=now)
        )


def end_sessions(
    session: Session, user: User, now: datetime, *, keep_secret: str | None = None
) -> int:
    """End every live session of ``user`` but the one whose secret is ``keep_secret``; returns
    how many were ended and records it in the audit log."""
    stmt = (
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    if keep_secret:
        stmt = stmt.where(LoginSession.token_hash != digest(keep_secret))
    ended = session.execute(stmt).rowcount or 0  # type: ignore[attr-defined]
    record(session, user, "user.end_sessions", user, ended=ended)
    return int(ended)


def end_one(session: Session, user: User, session_id: int, now: datetime) -> None:
    """End one of ``user``'s own sessions from the account page."""
    row = session.get(LoginSession, session_id)
    if row is None or row.user_id != user.id:
        raise NotFound("session_not_found", _("No such session."))
    if row.ended_at is None:
        row.ended_at = now


def renew(session: Session, user: User, secret: str | None) -> None:
    """After one's own password change: this browser's session goes on under the new
    password (the others ended with the old one)."""
    if secret:
        session.execute(
            update(LoginSession)
            .where(LoginSession.token_hash == digest(secret), LoginSession.ended_at.is_(None))
            .values(credential=credential(user))
        )


def sessions_of(session: Session, user: User, now: datetime) -> list[LoginSession]:
    """The user's live sessions, the latest used first."""
    rows = session.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.ended_at.is_(None),
            LoginSession.last_seen_at >= now - IDLE_LIMIT,
        )
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    )
    return [r for r in rows if r.credential == credential(user)]
