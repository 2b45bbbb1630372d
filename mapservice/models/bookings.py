"""Bookings (预约). The table and its constraints; the engine that writes them is separate."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
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
        # A venue's bookings by time; the last four columns make it cover the statistics'
        # query (mapservice.stats.frames.load_bookings), which then reads no booking row.
        Index(
            "ix_bookings_venue_time",
            "venue_id",
            "start_at",
            "end_at",
            "group_id",
            "units",
            "status",
            "created_at",
        ),
        Index(
            "ix_bookings_pending_hold",
            "venue_id",
            "hold_expires_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
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
    # A pending request holds its slot until this instant (then it expires).
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it was declined / cancelled / expired, as the person wrote it.
    status_reason: Mapped[str] = mapped_column(String(200), default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A booking taken by phone (一个电话): who called (shown to the venue's unit only); who
    # took the call is ``entered_by``.
    caller_name: Mapped[str | None] = mapped_column(String(60))
    caller_phone: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    venue: Mapped[Venue] = relationship()
    group: Mapped[Group] = relationship()
    entered_by: Mapped[User | None] = relationship(foreign_keys=[entered_by_id])
    allocations: Mapped[list[BookingAllocation]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="BookingAllocation.unit_no"
    )

    @property
    def unit_numbers(self) -> list[int]:
        """Which of the venue's parallel units (court 1, 2, 3…) this booking holds."""
        return [a.unit_no for a in self.allocations]

    @property
    def is_active(self) -> bool:
        """Pending and confirmed bookings hold capacity."""
        return self.status in (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)


#: Allocations longer than :data:`LONG_ALLOCATION`, as each database writes the condition
#: (``{t}`` the columns' qualifier, "" in the index): the partial index
#: ``ix_booking_allocations_long`` and the queries that read through it repeat this text, as
#: a query uses a partial index only then (SQLite stores instants as integer microseconds).
LONG_ALLOCATION = timedelta(days=1)
LONG_ALLOCATION_SQL = {
    "sqlite": "{t}end_at - {t}start_at > 86400000000",
    "postgresql": "{t}end_at - {t}start_at > interval '1 day'",
}


class BookingAllocation(Base):
    """One capacity unit (court 1, 2, 3…) held by an active booking for its whole time.

    Rows exist only while the booking holds the slot. Two rows of one venue and unit never
    overlap in time: the engine guarantees it under a lock, and the database enforces it as
    the last line of defence (a PostgreSQL exclusion constraint, an SQLite trigger)."""

    __tablename__ = "booking_allocations"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="range"),
        CheckConstraint("unit_no >= 1", name="unit_no"),
        UniqueConstraint("booking_id", "unit_no"),
        Index("ix_booking_allocations_venue_time", "venue_id", "start_at", "end_at"),
        # Allocations longer than a day (migration 0023): every other allocation meeting a
        # window starts less than a day before it, so a search reads (venue, start, end) over
        # a day's width plus these (mapservice.booking.availability).
        Index(
            "ix_booking_allocations_long",
            "venue_id",
            "start_at",
            "end_at",
            sqlite_where=text(LONG_ALLOCATION_SQL["sqlite"].format(t="")),
            postgresql_where=text(LONG_ALLOCATION_SQL["postgresql"].format(t="")),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    unit_no: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)

    booking: Mapped[Booking] = relationship(back_populates="allocations")


class Notification(Base):
    """An in-app message for the people of a group (booking confirmed, declined, expired…)
    or for the secretaries of a unit (a new request to one of its venues): exactly one of
    ``group_id`` and ``unit_id``."""

    __tablename__ = "notifications"
    __table_args__ = (CheckConstraint("(group_id IS NULL) <> (unit_id IS NULL)", name="recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON, filled into the message
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FeedToken(Base):
    """A secret, revocable token behind an iCalendar feed of a venue or a group."""

    __tablename__ = "feed_tokens"
    __table_args__ = (
        CheckConstraint(
            "(venue_id IS NOT NULL AND group_id IS NULL)"
            " OR (venue_id IS NULL AND group_id IS NOT NULL)",
            name="target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
