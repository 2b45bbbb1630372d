"""Writing the audit log."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from mapservice.models import AuditEntry, User


def record(
    session: Session,
    actor: User | None,
    action: str,
    obj: Any,
    committee_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    """Append one entry: ``actor`` did ``action`` to ``obj`` (flushed so ids exist)."""
    session.flush()
    entry = AuditEntry(
        committee_id=committee_id
        if committee_id is not None
        else getattr(obj, "committee_id", None),
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=getattr(obj, "id", None),
        details=json.dumps(details, ensure_ascii=False, default=str, sort_keys=True),
    )
    session.add(entry)
    return entry
