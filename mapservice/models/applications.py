"""Units' applications to join a committee (成员准入), sent from the public page ``/apply``:
what the organisation said, where from, and the admin's decision."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mapservice.core.vocab import ApplicationStatus
from mapservice.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from mapservice.models.units import Unit
    from mapservice.models.users import User


class UnitApplication(Base):
    """One application. While pending, its unit exists with status ``applied`` (so its name
    is taken); admitted, the unit is active and ``account_id`` is its new secretary; declined,
    the unit is gone (its name free again) or, if anything came to refer to it, suspended."""

    __tablename__ = "unit_applications"
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(repr(s.value) for s in ApplicationStatus)),
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    committee_id: Mapped[int] = mapped_column(ForeignKey("committees.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)  # WGS-84
    lat: Mapped[float] = mapped_column(Float)
    contact_name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(30))
    email: Mapped[str] = mapped_column(String(120), default="")
    venues_plan: Mapped[str] = mapped_column(Text, default="")
    client_address: Mapped[str] = mapped_column(String(64), index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(20), default=ApplicationStatus.PENDING.value)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(500), default="")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    unit: Mapped[Unit | None] = relationship()
    #: The secretary account admission created.
    account: Mapped[User | None] = relationship(foreign_keys=[account_id])
