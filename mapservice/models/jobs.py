"""The worker's scheduled jobs: who runs a job now (a lease) and what each run did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mapservice.db import Base, UTCDateTime, utcnow


class JobLease(Base):
    """One row per job: the worker holding it runs the job until ``expires_at``. Taken by a
    conditional write (insert, or update where the lease ran out), so on SQLite and PostgreSQL
    alike at most one worker holds a job at a time."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of a job: when, by whom, its outcome (``ok`` or ``failed``), its counts (JSON)
    and the error of a failed run."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_name_started_at", "name", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    holder: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10), default="running")
    counts: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")
