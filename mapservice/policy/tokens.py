"""Personal access tokens: when one may be used, and for what.

A token works while it is not revoked and its user is active (a deactivated user's tokens
stop at once, without being revoked); it allows what its scopes name, and the user's role
still decides every object it reaches (a "manage" token of a booker manages nothing more
than the booker may)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import and_
from sqlalchemy.sql.elements import ColumnElement

from mapservice.models import ApiToken, User


class TokenLike(Protocol):
    """A token as the checks read it: the stored :class:`ApiToken`, or the columns a request
    read of it (:class:`mapservice.operations.tokens.VerifiedToken`)."""

    @property
    def revoked_at(self) -> datetime | None: ...

    @property
    def user(self) -> User: ...

    @property
    def scope_set(self) -> frozenset[str]: ...


def can_use_token(token: TokenLike) -> bool:
    """Whether ``token`` authenticates a request at all (else 401)."""
    return token.revoked_at is None and token.user.active


def tokens_usable() -> ColumnElement[bool]:
    """The SQL form of :func:`can_use_token` (joined with the token's user)."""
    return and_(ApiToken.revoked_at.is_(None), User.active.is_(True))


def token_allows(token: TokenLike, scope: str | None) -> bool:
    """Whether ``token`` carries ``scope`` (None: an endpoint open to any valid token);
    else 403."""
    return scope is None or scope in token.scope_set
