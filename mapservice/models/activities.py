"""Activities (活动) of the committee's year and the sign-ups (举手加入) of units and groups.

An activity takes place at a registered venue — then it holds the booking the engine made for
it (``booking_id``) — or at a site without booking: a point, or a drawn area (GeoJSON polygon)
whose representative point is kept in ``site_lon``/``site_lat`` too. ``plan_entry_id`` links a
year plan's entry (the foreign key comes with the plan's table).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
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
    and_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from mapservice.core.vocab import ActivityKind, ActivityStatus, SignUpState
from mapservice.db import Base, UTCDateTime, utcnow
from mapservice.models.units import _in

if TYPE_CHECKING:
    from mapservice.models.bookings import Booking
    from mapservice.models.units import Group, Unit
    from mapservice.models.venues import Venue

activity_cohosts = Table(
    "activity_cohosts",
    Base.metadata,
    Column("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_id", ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
)


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="range"),
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint(_in("kind", [k.value for k in ActivityKind]), name="kind"),
        CheckConstraint(_in("status", [s.value for s in ActivityStatus]), name="status"),
        CheckConstraint(
            "(venue_id IS NOT NULL AND booking_id IS NOT NULL)"
            " OR (venue_id IS NULL AND booking_id IS NULL"
            " AND site_lon IS NOT NULL AND site_lat IS NOT NULL)",
            name="place",
        ),
        Index("ix_activities_committee_start", "committee_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"))
    title: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20), default=ActivityKind.OTHER.value)
    lead_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int] = mapped_column(Integer)
    signup_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=ActivityStatus.DRAFT.value)
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    site_lon: Mapped[float | None] = mapped_column(Float)
    site_lat: Mapped[float | None] = mapped_column(Float)
    site_area: Mapped[str | None] = mapped_column(Text)  # GeoJSON polygon, WGS-84
    site_name: Mapped[str] = mapped_column(String(120), default="")
    site_street: Mapped[str] = mapped_column(String(120), default="")
    plan_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("plan_entries.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    lead_unit: Mapped[Unit] = relationship()
    cohosts: Mapped[list[Unit]] = relationship(secondary=activity_cohosts, order_by="Unit.id")
    venue: Mapped[Venue | None] = relationship()
    booking: Mapped[Booking | None] = relationship()
    signups: Mapped[list[SignUp]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="SignUp.seq"
    )

    @property
    def unit_id(self) -> int:
        """The lead unit (what the audit log files the activity under)."""
        return self.lead_unit_id


def took_place(now: datetime) -> ColumnElement[bool]:
    """An activity that took place by ``now``: neither a draft nor cancelled, and over (what
    makes its plan turn led: ``operations.plans.led_entry_ids``, the dashboard's figures)."""
    return and_(
        Activity.status.not_in((ActivityStatus.DRAFT.value, ActivityStatus.CANCELLED.value)),
        Activity.end_at <= now,
    )


class SignUp(Base):
    """A unit's or a group's raised hand (举手) for an activity, with a headcount."""

    __tablename__ = "activity_signups"
    __table_args__ = (
        CheckConstraint("headcount >= 1", name="headcount"),
        CheckConstraint("attended IS NULL OR attended >= 0", name="attended"),
        CheckConstraint("unit_id IS NOT NULL OR group_id IS NOT NULL", name="who"),
        CheckConstraint(_in("state", [s.value for s in SignUpState]), name="state"),
        UniqueConstraint("activity_id", "seq"),
        Index("ix_activity_signups_activity_state", "activity_id", "state", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    headcount: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(Integer)  # arrival order within the activity, from 1
    note: Mapped[str] = mapped_column(String(200), default="")
    attended: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    activity: Mapped[Activity] = relationship(back_populates="signups")
    unit: Mapped[Unit | None] = relationship()
    group: Mapped[Group | None] = relationship()
