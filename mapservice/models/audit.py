"""The audit log: who did what to which record, when, and what changed (before → after)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.users import User

#: What changed: field → [before, after] (None on one side: set or cleared).
Changes = dict[str, list[Any]]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    committee_id: Mapped[int | None] = mapped_column(ForeignKey("committees.id"), index=True)
    #: The member unit whose record it is (a venue's, a group's, a booking's venue's, the unit
    #: itself): whose secretary sees the entry. No foreign key: the log outlives its objects.
    unit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(60), default="")  # kept if the user goes
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    changes: Mapped[str | None] = mapped_column(Text)  # JSON Changes; None before 0012

    def detail_values(self) -> dict[str, Any]:
        try:
            value = json.loads(self.details or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def changed(self) -> Changes:
        """What changed, field → [before, after]; for entries written before the log kept
        it (migration 0012), read from the details they held (``changed``, ``old``/``new``)."""
        if self.changes:
            value = json.loads(self.changes)
            return value if isinstance(value, dict) else {}
        details = self.detail_values()
        if isinstance(details.get("changed"), dict):
            return {k: list(v) for k, v in details["changed"].items() if isinstance(v, list)}
        if "old" in details and "new" in details:
            return {
                "status" if self.action.endswith("status") else "value": [
                    details["old"],
                    details["new"],
                ]
            }
        return {}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def unit_of(session: Session, obj: Any) -> int | None:
    """The member unit whose record ``obj`` is: a unit itself, a booking's venue's unit,
    else the object's own ``unit_id`` (a venue, a group, a secretary), if any."""
    kind = type(obj).__name__
    if kind == "Unit":
        return getattr(obj, "id", None)
    if kind == "Booking":
        venues = Base.metadata.tables["venues"]
        unit: int | None = session.execute(
            venues.select().with_only_columns(venues.c.unit_id).where(venues.c.id == obj.venue_id)
        ).scalar()
        return unit
    value = getattr(obj, "unit_id", None)
    return value if isinstance(value, int) else None


def record(
    session: Session,
    actor: User | None,
    action: str,
    obj: Any,
    committee_id: int | None = None,
    *,
    changes: Changes | None = None,
    **details: Any,
) -> AuditEntry:
    """Append one entry: ``actor`` did ``action`` to ``obj`` (flushed so ids exist);
    ``changes``: field → [before, after]. Beside the model so every layer that changes
    records (the booking engine included) may write it."""
    session.flush()
    entry = AuditEntry(
        committee_id=committee_id
        if committee_id is not None
        else getattr(obj, "committee_id", None),
        unit_id=unit_of(session, obj),
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=getattr(obj, "id", None),
        details=dumps(details),
        changes=dumps(changes) if changes else None,
    )
    session.add(entry)
    return entry
