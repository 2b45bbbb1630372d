"""Names the database keeps unique (a unit's or a group's name in its committee, a user
name). Each use case checks first that the name is free and says so field by field; two
requests racing past that check at once both insert, and the database refuses the second.
:func:`unique` turns that refusal into the same answer the check gives, nothing of the
flush written, so a race never ends in a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mapservice.core.errors import ValidationFailed
from mapservice.core.i18n import _
from mapservice.db import Base

#: The unique constraints a use case maps to a refusal (their names in the schema).
UNIT_NAME = "uq_units_committee_id"
GROUP_NAME = "uq_groups_committee_id"
USERNAME = "uq_users_username"


def _columns_of(name: str) -> str | None:
    """SQLite's way of naming the constraint: ``units.committee_id, units.name``."""
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.name == name:
                return ", ".join(f"{table.name}.{c.name}" for c in constraint.columns)
    return None


def broke(exc: IntegrityError, constraint: str) -> bool:
    """Whether ``exc`` is the database refusing a second row under ``constraint``
    (PostgreSQL names the constraint; SQLite lists its columns)."""
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None) == constraint
    found = re.search(r"UNIQUE constraint failed: (.+)$", str(exc.orig))
    return found is not None and found.group(1).strip() == _columns_of(constraint)


@contextmanager
def unique(session: Session, constraint: str, field: str, message: str) -> Iterator[None]:
    """Around the statements that add or rename a row under ``constraint``: they are
    flushed in a savepoint (what was pending before is flushed first, outside it). If they
    break ``constraint`` (another request took the name since it was checked), refuse as the
    check does — ValidationFailed with ``message`` on ``field`` — with them undone and the
    session still usable (the page that shows the refusal reads again)."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        if not broke(exc, constraint):
            raise
        raise ValidationFailed(_("Please correct the marked fields."), {field: message}) from exc
