"""Accounts. A user has exactly one role: committee admin, secretary of one unit, or booker
of one group; the database enforces that the matching unit/group is set."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mapservice.core.vocab import Role
from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.committees import Committee
    from mapservice.models.units import Group, Unit


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role = 'committee_admin' AND unit_id IS NULL AND group_id IS NULL)"
            " OR (role = 'unit_secretary' AND unit_id IS NOT NULL AND group_id IS NULL)"
            " OR (role = 'booker' AND group_id IS NOT NULL AND unit_id IS NULL)",
            name="role_scope",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    # Booking notices are e-mailed here too when SMTP is configured (empty: in-app only).
    email: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    committee: Mapped[Committee] = relationship()
    unit: Mapped[Unit | None] = relationship()
    group: Mapped[Group | None] = relationship()

    # Flask-Login protocol (kept here so the model needs no Flask import)
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.COMMITTEE_ADMIN.value

    @property
    def is_secretary(self) -> bool:
        return self.role == Role.UNIT_SECRETARY.value

    @property
    def is_booker(self) -> bool:
        return self.role == Role.BOOKER.value
