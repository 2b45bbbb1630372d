"""Bookings (预约). The table and its constraints; the engine that writes them is separate."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mapservice.core.vocab import BookingStatus
from mapservice.db import Base, UTCDateTime, utcnow
from mapservice.models.units import _in

if TYPE_CHECKING:
    from mapservice.models.units import Group
    from mapservice.models.users import User
    from mapservice.models.venues import Venue


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="range"),
        CheckConstraint("units >= 1", name="units"),
        CheckConstraint("headcount IS NULL OR headcount >= 1", name="headcount"),
        CheckConstraint(_in("status", [s.value for s in BookingStatus]), name="status"),
        Index("ix_bookings_venue_time", "venue_id", "start_at", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    units: Mapped[int] = mapped_column(Integer, default=1)
    purpose: Mapped[str] = mapped_column(Text, default="")
    headcount: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=BookingStatus.PENDING.value)
    series_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    venue: Mapped[Venue] = relationship()
    group: Mapped[Group] = relationship()
    entered_by: Mapped[User | None] = relationship()
