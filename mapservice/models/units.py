"""Member units (成员单位) and the groups (青年团体 / 团支部) bookings are made for."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mapservice.core.vocab import UnitKind, UnitStatus
from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.committees import Committee
    from mapservice.models.venues import Venue


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("committee_id", "name"),
        CheckConstraint(_in("kind", [k.value for k in UnitKind]), name="kind"),
        CheckConstraint(_in("status", [s.value for s in UnitStatus]), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20), default=UnitKind.OTHER.value)
    secretary: Mapped[str] = mapped_column(String(60), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    status: Mapped[str] = mapped_column(String(20), default=UnitStatus.APPLIED.value)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    committee: Mapped[Committee] = relationship(back_populates="units")
    venues: Mapped[list[Venue]] = relationship(back_populates="unit", foreign_keys="Venue.unit_id")
    groups: Mapped[list[Group]] = relationship(back_populates="unit")

    @property
    def is_active(self) -> bool:
        return self.status == UnitStatus.ACTIVE.value


class Group(Base):
    """Who a booking is for: a youth group of a unit, or a standalone one with a contact."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("committee_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    contact_name: Mapped[str] = mapped_column(String(60), default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="")
    contact_email: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit | None] = relationship(back_populates="groups")
    committee: Mapped[Committee] = relationship()
