"""Committees (青工委 / 团区委) and the areas they cover (district and street polygons)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.units import Unit


class Committee(Base):
    """One deployment may host several committees (a city hosting its districts)."""

    __tablename__ = "committees"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    timezone: Mapped[str] = mapped_column(String(60), default="Asia/Shanghai")
    #: The printed one map's title ("": the standard "<name>: map of the shared venues").
    print_title: Mapped[str] = mapped_column(String(200), default="")
    #: The rules a new venue starts with, field → value (JSON; fields of
    #: ``core.venue_spec.COMMITTEE_DEFAULTS``, absent ones: the venue spec's defaults).
    venue_defaults: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    units: Mapped[list[Unit]] = relationship(back_populates="committee")
    areas: Mapped[list[Area]] = relationship(
        back_populates="committee", cascade="all, delete-orphan"
    )

    @property
    def district(self) -> Area | None:
        return next((a for a in self.areas if a.level == "district"), None)

    @property
    def streets(self) -> list[Area]:
        return sorted((a for a in self.areas if a.level == "street"), key=lambda a: a.name)


class Area(Base):
    """A district or street polygon (WGS-84 GeoJSON geometry), possibly approximate."""

    __tablename__ = "areas"
    __table_args__ = (
        UniqueConstraint("committee_id", "level", "name"),
        CheckConstraint("level IN ('district', 'street')", name="level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(
        ForeignKey("committees.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120), default="")
    approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    geometry: Mapped[str] = mapped_column(Text)  # GeoJSON geometry object, WGS-84
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)

    committee: Mapped[Committee] = relationship(back_populates="areas")

    def shape(self) -> Any:
        """The shapely geometry (parsed on demand)."""
        import json

        from shapely.geometry import shape

        return shape(json.loads(self.geometry))
