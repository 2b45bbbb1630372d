"""The year's activity list (活动清单) with its rotation (活动轮值), units' preferences for it,
and pairing (结对挂钩) of units with streets or other units (communities are units)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mapservice.core.rotation import PeriodKind
from mapservice.core.vocab import ActivityKind
from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.committees import Area
    from mapservice.models.units import Unit


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


PLAN_STATUSES = ["draft", "published"]


class Plan(Base):
    """A committee's activity list for one year (one per year), by month or by ISO week."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("committee_id", "year"),
        CheckConstraint(_in("period", [p.value for p in PeriodKind]), name="period"),
        CheckConstraint(_in("status", PLAN_STATUSES), name="status"),
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="")
    period: Mapped[str] = mapped_column(String(10), default=PeriodKind.MONTH.value)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    entries: Mapped[list[PlanEntry]] = relationship(
        back_populates="plan",
        cascade="all, delete-orphan",
        order_by="(PlanEntry.period, PlanEntry.id)",
    )


class PlanEntry(Base):
    """One turn: in a period (month 1–12 or ISO week) a unit leads an activity of a kind.
    ``led_on``: marked done by hand (activities that are done count too, see
    ``operations.plans.led_entry_ids``)."""

    __tablename__ = "plan_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", [k.value for k in ActivityKind]), name="kind"),
        CheckConstraint("period BETWEEN 1 AND 53", name="period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    period: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=ActivityKind.OTHER.value)
    title: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    led_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    plan: Mapped[Plan] = relationship(back_populates="entries")
    unit: Mapped[Unit] = relationship()


class UnitPlanPreference(Base):
    """A unit's wishes for the rotation: months as ``"3,10"``, kinds as ``"volunteer,salon"``."""

    __tablename__ = "unit_plan_preferences"

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    preferred_months: Mapped[str] = mapped_column(String(40), default="")
    blackout_months: Mapped[str] = mapped_column(String(40), default="")
    preferred_kinds: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Pairing(Base):
    """A unit paired with a street (an area of the committee) or with another unit (a
    community is a unit), from ``start_on`` to ``end_on`` (inclusive; None: open). One to
    one or many to one is read from the partner's active pairs, not stored."""

    __tablename__ = "pairings"
    __table_args__ = (
        CheckConstraint(
            "(partner_unit_id IS NULL) <> (partner_area_id IS NULL)", name="one_partner"
        ),
        CheckConstraint("partner_unit_id IS NULL OR partner_unit_id <> unit_id", name="not_self"),
        CheckConstraint("end_on IS NULL OR end_on >= start_on", name="dates"),
        Index("ix_pairings_partner_unit_id", "partner_unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    partner_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), nullable=True
    )
    partner_area_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="CASCADE"), nullable=True
    )
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id])
    partner_unit: Mapped[Unit | None] = relationship(foreign_keys=[partner_unit_id])
    partner_area: Mapped[Area | None] = relationship()

    @property
    def partner_name(self) -> str:
        partner = self.partner_unit or self.partner_area
        return partner.name if partner is not None else ""

    def active_on(self, day: date) -> bool:
        return self.start_on <= day and (self.end_on is None or day <= self.end_on)


def units_paired_on(
    unit_id: ColumnElement[Any], other_id: ColumnElement[Any], on: ColumnElement[Any]
) -> ColumnElement[bool]:
    """Whether two units are paired with each other (either way round) on a day: the SQL
    condition the venue rule "bookable by paired units" reads (``booking/rows.py``)."""
    return (
        select(Pairing.id)
        .where(
            or_(
                and_(Pairing.unit_id == unit_id, Pairing.partner_unit_id == other_id),
                and_(Pairing.unit_id == other_id, Pairing.partner_unit_id == unit_id),
            ),
            Pairing.start_on <= on,
            or_(Pairing.end_on.is_(None), Pairing.end_on >= on),
        )
        .exists()
    )
