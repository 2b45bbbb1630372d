"""Revoking personal access tokens: one by id from the account page, or every active token
of a user whose secret starts with a prefix from the console. Either way the token stops
working at once and the revocation is audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core.errors import NotFound
from mapservice.core.i18n import _
from mapservice.db import utcnow
from mapservice.models import ApiToken, User
from mapservice.models.audit import record


def revoke_tokens(
    session: Session,
    actor: User | None,
    user: User,
    *,
    token_id: int | None = None,
    prefix: str | None = None,
) -> list[ApiToken]:
    """Revoke ``user``'s token ``token_id`` (revoking a revoked one again changes nothing),
    or each of ``user``'s active tokens whose secret starts with ``prefix`` (the stored
    prefix is the secret's first ten characters); raise NotFound when none matches.
    ``actor``: who revokes (None: the console)."""
    if (token_id is None) == (prefix is None):
        raise ValueError("give a token id or a prefix")
    stmt = select(ApiToken).where(ApiToken.user_id == user.id)
    if token_id is not None:
        hits = list(session.scalars(stmt.where(ApiToken.id == token_id)))
    else:
        assert prefix is not None
        active = session.scalars(stmt.where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.id))
        hits = [
            t
            for t in active
            if prefix and (t.prefix.startswith(prefix) or prefix.startswith(t.prefix))
        ]
    if not hits:
        raise NotFound("token_not_found", _("No such token."))
    for token in hits:
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            record(session, actor, "token.revoke", token, committee_id=user.committee_id)
    return hits
