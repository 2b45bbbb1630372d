"""Venues (阵地 / 场地), their weekly opening hours, closures and booking rules."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from mapservice.core.hours import OpeningRange, format_hours
from mapservice.core.venue_spec import check_sql
from mapservice.core.vocab import BookableBy, Crs
from mapservice.db import Base, UTCDateTime, utcnow
from mapservice.models.units import Unit

if TYPE_CHECKING:
    from mapservice.models.committees import Area, Committee

venue_paired_units = Table(
    "venue_paired_units",
    Base.metadata,
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_id", ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
)


class Venue(Base):
    __tablename__ = "venues"
    __table_args__ = (
        UniqueConstraint("unit_id", "name"),
        CheckConstraint(check_sql("type"), name="type"),
        CheckConstraint(check_sql("crs", "entered_crs"), name="crs"),
        CheckConstraint(check_sql("bookable_by"), name="bookable_by"),
        CheckConstraint(f"{check_sql('lon')} AND {check_sql('lat')}", name="lonlat"),
        CheckConstraint(check_sql("capacity_units"), name="capacity_units"),
        CheckConstraint(check_sql("max_headcount"), name="max_headcount"),
        CheckConstraint(check_sql("slot_minutes"), name="slot_minutes"),
        CheckConstraint(
            "min_duration_minutes >= slot_minutes AND max_duration_minutes >= min_duration_minutes"
            f" AND {check_sql('min_duration_minutes')} AND {check_sql('max_duration_minutes')}",
            name="durations",
        ),
        CheckConstraint(check_sql("max_days_ahead"), name="max_days_ahead"),
        CheckConstraint(check_sql("min_notice_minutes"), name="min_notice"),
        CheckConstraint(check_sql("weekly_quota_hours"), name="quota"),
        CheckConstraint(check_sql("hold_hours"), name="hold_hours"),
        CheckConstraint(check_sql("cancel_cutoff_minutes"), name="cancel_cutoff"),
        # "Venues of type T near P": the bounding box's rows of that type only.
        Index("ix_venues_type_lat_lon", "type", "lat", "lon"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(40), index=True)
    # Location: stored in WGS-84; what was typed is kept beside it with its system.
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    entered_crs: Mapped[str] = mapped_column(String(10), default=Crs.WGS84.value)
    entered_lon: Mapped[float] = mapped_column(Float)
    entered_lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(200), default="")
    street_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="SET NULL"), index=True
    )
    capacity_units: Mapped[int] = mapped_column(Integer, default=1)
    max_headcount: Mapped[int | None] = mapped_column(Integer)
    facilities: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    # Booking rules (enforced by the booking engine)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=60)
    min_duration_minutes: Mapped[int] = mapped_column(Integer, default=60)
    max_duration_minutes: Mapped[int] = mapped_column(Integer, default=240)
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=30)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_hours: Mapped[int] = mapped_column(Integer, default=48)
    # Bookers may cancel until this many minutes before the start (owners at any time).
    cancel_cutoff_minutes: Mapped[int] = mapped_column(Integer, default=120)
    bookable_by: Mapped[str] = mapped_column(String(20), default=BookableBy.MEMBERS.value)
    weekly_quota_hours: Mapped[int | None] = mapped_column(Integer)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The unit checks groups in here: the worker marks a confirmed booking nobody checked in
    #: as no-show once the grace period after its start has passed (``mark_no_shows``).
    checks_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: Bumped by the database (triggers) on every change to the venue, its opening hours,
    #: closures or paired units: the booking engine validates a request before taking the
    #: venue's lock and, under it, rechecks only this counter.
    rules_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    committee: Mapped[Committee] = relationship()
    unit: Mapped[Unit] = relationship(back_populates="venues", foreign_keys=[unit_id])
    street: Mapped[Area | None] = relationship()
    hours: Mapped[list[OpeningHours]] = relationship(
        cascade="all, delete-orphan", order_by="(OpeningHours.weekday, OpeningHours.start_min)"
    )
    closures: Mapped[list[Closure]] = relationship(
        cascade="all, delete-orphan", order_by="Closure.start_at"
    )
    paired_units: Mapped[list[Unit]] = relationship(secondary=venue_paired_units)

    @property
    def opening_ranges(self) -> list[OpeningRange]:
        return [OpeningRange(h.weekday, h.start_min, h.end_min) for h in self.hours]

    @property
    def hours_text(self) -> str:
        return format_hours(self.opening_ranges)

    #: Its unit's status (admitted or not), for the booking path's one query; the access
    #: rule that reads it is :func:`mapservice.policy.venue_is_open`.
    unit_status: Mapped[str] = column_property(
        select(Unit.status).where(Unit.id == unit_id).correlate_except(Unit).scalar_subquery(),
        deferred=True,
    )


class OpeningHours(Base):
    """One opening range on one weekday (0 = Monday), minutes after midnight, half-open."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_min >= 0 AND end_min <= 1440 AND start_min < end_min", name="range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_min: Mapped[int] = mapped_column(Integer)
    end_min: Mapped[int] = mapped_column(Integer)


class Closure(Base):
    """A period ``[start_at, end_at)`` in which the venue cannot be booked."""

    __tablename__ = "closures"
    __table_args__ = (CheckConstraint("end_at > start_at", name="range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
