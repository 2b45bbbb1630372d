"""Personal access tokens: created (the secret shown once), listed, revoked, verified."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.models import ApiToken, User
from mapservice.models.audit import record
from mapservice.models.tokens import SCOPES
from mapservice.policy.tokens import can_use_token

PREFIX = "ms_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> list[str]:
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValidationFailed(
            _("Scopes must be some of %(all)s.", all=", ".join(SCOPES)),
            {"scopes": _("Unknown scope(s): %(bad)s", bad=", ".join(bad) or "-")},
        )
    return scopes


def create_token(
    session: Session, actor: User | None, user: User, scopes: list[str], name: str = ""
) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with the secret, which is never stored."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip()[:80],
        prefix=secret[:10],
        token_hash=digest(secret),
        scopes=",".join(scopes),
    )
    session.add(token)
    session.flush()
    record(session, actor, "token.create", token, committee_id=user.committee_id, scopes=scopes)
    return token, secret


# Every API request runs it: built once (building and keying a statement costs more than
# running it), the user with the token's columns in the same query. The user's groups
# (``User.groups``, loaded with every user by default) are left for the first check that
# reads them: a booking's, one query then as before; a read of venues or availability never
# does, and loading them cost every API request a second query (measured under #10's load:
# the token's two queries were a fifth of the workers' CPU). One entity (the user) and bare
# columns of the token, not the token as an entity with its user joined-eager: measured
# in one process on PostgreSQL, ~1.6 -> ~1.2 ms CPU a request (interleaved).
_BY_HASH = (
    select(User, ApiToken.id, ApiToken.scopes, ApiToken.last_used_at, ApiToken.revoked_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
    .options(lazyload(User.groups))
)


@dataclass(frozen=True)
class VerifiedToken:
    """A token as a request uses it: its id, its user (an object of the request's session),
    its scopes and when it was last used and revoked (as read when it was verified)."""

    id: int
    user: User
    scopes: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)


def verify(session: Session, secret: str) -> VerifiedToken | None:
    """The token with this secret if it may be used (:func:`policy.can_use_token`), or None."""
    if not secret.startswith(PREFIX):
        return None
    row = session.execute(_BY_HASH, {"token_hash": digest(secret)}).one_or_none()
    if row is None:
        return None
    token = VerifiedToken(row[1], row[0], row[2], row[3], row[4])
    return token if can_use_token(token) else None
