"""Scheduled jobs, run by ``mapservice worker`` (on a schedule) and ``mapservice jobs run``.

Several workers may run at once (on one machine or several, over one database): a job runs
only in the worker holding its lease (:class:`~mapservice.models.JobLease`, taken by one
conditional write, so SQLite and PostgreSQL behave alike), and whether it is due is judged
from the run log (:class:`~mapservice.models.JobRun`) under that lease — so each job runs
once per period however many workers there are. Each job is idempotent besides: it acts on
what is still to be done (holds still pending, bookings not yet reminded, …) and does it
under the venue's lock where the web changes the same rows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from mapservice.booking import engine
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, JobLease, JobRun, Notification

#: Runs older than this leave the log.
KEEP_RUNS = timedelta(days=30)

Sessions = Callable[[], Session]


@dataclass(frozen=True)
class Context:
    """What a job runs with: writer sessions (each job commits its own transactions), the
    time, and the settings it reads (``DATABASE_URL``, ``BACKUP_DIR``, …)."""

    sessions: Sessions
    now: datetime
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Context], dict[str, int]]
    #: Run again once this long has passed since the last run started …
    every: timedelta | None = None
    #: … or once a day at this local hour (setting name), the day's run not yet made.
    at_hour: str | None = None
    #: How long a lease lasts: longer than a run can take.
    lease: timedelta = timedelta(minutes=10)

    def due(self, last_started: datetime | None, now: datetime, tz: ZoneInfo, hour: int) -> bool:
        if last_started is None:
            return True
        if self.every is not None:
            return now - last_started >= self.every
        local = now.astimezone(tz)
        slot = datetime.combine(local.date(), time(hour), tzinfo=tz)
        if slot > local:
            slot -= timedelta(days=1)
        return last_started < slot


def expire(ctx: Context) -> dict[str, int]:
    """Expire run-out approval holds (:func:`engine.expire_holds`), a venue at a time under
    its lock, as a booking at that venue would."""
    with ctx.sessions() as session:
        venues = session.scalars(
            select(Booking.venue_id)
            .where(
                Booking.status == BookingStatus.PENDING.value,
                Booking.hold_expires_at <= ctx.now,
            )
            .distinct()
        ).all()
    expired = 0
    for venue_id in venues:
        with ctx.sessions() as session:
            engine.lock_venue(session, venue_id)
            expired += engine.expire_holds(session, ctx.now, venue_id)
            session.commit()
    return {"expired": expired}


def remind(ctx: Context) -> dict[str, int]:
    """Remind each group of its confirmed bookings starting within the next day: a notice
    (e-mailed when SMTP is configured), once per booking — the notice is the record."""
    sent = aliased(Notification)
    with ctx.sessions() as session:
        due = session.scalars(
            select(Booking).where(
                Booking.status == BookingStatus.CONFIRMED.value,
                Booking.start_at > ctx.now,
                Booking.start_at <= ctx.now + timedelta(days=1),
                ~exists().where(sent.booking_id == Booking.id, sent.kind == "reminder"),
            )
        ).all()
        for booking in due:
            engine.notify(session, booking, "reminder")
        session.commit()
    return {"reminded": len(due)}


def no_shows(ctx: Context) -> dict[str, int]:
    """Mark confirmed bookings no-show once the grace period after their start has passed,
    at the venues whose unit checks groups in (:func:`engine.venues_checking_in`)."""
    grace = timedelta(minutes=int(ctx.settings.get("NO_SHOW_GRACE_MINUTES", 60)))
    with ctx.sessions() as session:
        venues = engine.venues_checking_in(session)
    marked = 0
    for venue_id in venues:
        with ctx.sessions() as session:
            marked += engine.mark_no_shows(session, venue_id, grace, ctx.now)
            session.commit()
    return {"no_shows": marked}


def digest_requests(ctx: Context) -> dict[str, int]:
    """Hourly, within working hours: each unit's digest of the new requests to its venues
    (:mod:`mapservice.operations.digest`)."""
    from mapservice.operations.digest import send_digests

    return send_digests(
        ctx.sessions,
        ctx.now,
        ctx.settings.get("DIGEST_HOURS", "8-20"),
        ctx.settings.get("PUBLIC_URL"),
    )


BACKUP_NAME = re.compile(r"^mapservice-\d{8}T\d{6}Z\.(db|dump)$")


def backup(ctx: Context) -> dict[str, int]:
    """A backup of the database into ``BACKUP_DIR`` (:func:`mapservice.maintenance.backup`),
    keeping the newest ``BACKUP_KEEP``."""
    from mapservice.maintenance import backup as write_backup

    url = str(ctx.settings["DATABASE_URL"])
    folder = Path(str(ctx.settings["BACKUP_DIR"]))
    suffix = "db" if url.startswith("sqlite") else "dump"
    target = folder / f"mapservice-{ctx.now:%Y%m%dT%H%M%SZ}.{suffix}"
    write_backup(url, target)
    keep = max(1, int(ctx.settings.get("BACKUP_KEEP", 7)))
    backups = sorted(p for p in folder.iterdir() if BACKUP_NAME.match(p.name))
    for old in backups[:-keep]:
        old.unlink()
    return {"written": 1, "removed": max(0, len(backups) - keep)}


def refresh_stats(ctx: Context) -> dict[str, int]:
    """Recount the statistics' daily aggregates of the days changed since the last count
    (:func:`mapservice.stats.aggregates.refresh`), so the log of changes stays short."""
    from mapservice.stats.aggregates import refresh

    with ctx.sessions() as session:
        counted = refresh(session)
        session.commit()
    return {"changes": counted}


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("expire_holds", expire, every=timedelta(minutes=5)),
        Job("send_reminders", remind, every=timedelta(hours=1)),
        Job("mark_no_shows", no_shows, every=timedelta(minutes=15)),
        # Looks every 15 minutes; each unit gets at most one digest per local clock hour.
        Job("digest_requests", digest_requests, every=timedelta(minutes=15)),
        Job("backup", backup, at_hour="BACKUP_HOUR", lease=timedelta(hours=2)),
        Job("refresh_stats", refresh_stats, every=timedelta(minutes=5)),
    )
}


def worker_name() -> str:
    """This worker's name in leases and the log: host, process and a random part (threads
    of one process are distinct workers too)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Held:
    """The lease was not taken: ``holder`` runs the job until ``until``."""

    holder: str
    until: datetime


def take_lease(
    sessions: Sessions, name: str, holder: str, now: datetime, ttl: timedelta
) -> Held | None:
    """Take the job's lease for ``ttl`` (None), unless another worker holds it (who)."""
    with sessions() as session:
        taken = session.execute(
            update(JobLease)
            .where(
                JobLease.name == name,
                or_(JobLease.expires_at <= now, JobLease.holder == holder),
            )
            .values(holder=holder, expires_at=now + ttl)
        ).rowcount  # type: ignore[attr-defined]
        if not taken and session.get(JobLease, name) is None:
            session.add(JobLease(name=name, holder=holder, expires_at=now + ttl))
            try:
                session.flush()
                taken = 1
            except IntegrityError:  # another worker inserted it first
                session.rollback()
        session.commit()
        if taken:
            return None
        lease = session.get(JobLease, name)
        if lease is None:  # the winner of an insert race has finished already: its run counts
            return Held("another worker", now)
        return Held(lease.holder, lease.expires_at)


def release_lease(sessions: Sessions, name: str, holder: str) -> None:
    with sessions() as session:
        session.execute(delete(JobLease).where(JobLease.name == name, JobLease.holder == holder))
        session.commit()


def last_started(session: Session, name: str) -> datetime | None:
    return session.scalar(select(func.max(JobRun.started_at)).where(JobRun.name == name))


@dataclass(frozen=True)
class RunResult:
    name: str
    outcome: str  # ok, failed, held (another worker has it), not_due
    counts: dict[str, int]
    error: str = ""
    held: Held | None = None


def run_job(
    sessions: Sessions,
    job: Job,
    settings: Mapping[str, Any],
    *,
    holder: str,
    now: datetime,
    force: bool = False,
) -> RunResult:
    """Run ``job`` if this worker gets its lease and (unless ``force``) it is due; the run is
    logged (start, end, outcome, counts, error). A job's failure is logged, not raised."""
    held = take_lease(sessions, job.name, holder, now, job.lease)
    if held is not None:
        return RunResult(job.name, "held", {}, held=held)
    try:
        with sessions() as session:
            if not force:
                tz = ZoneInfo(str(settings.get("TIMEZONE", "UTC")))
                hour = int(settings.get(job.at_hour, 3)) if job.at_hour else 0
                if not job.due(last_started(session, job.name), now, tz, hour):
                    return RunResult(job.name, "not_due", {})
            run = JobRun(name=job.name, holder=holder, started_at=now)
            session.add(run)
            session.execute(delete(JobRun).where(JobRun.started_at < now - KEEP_RUNS))
            session.commit()
            run_id = run.id
        result = _execute(sessions, job, settings, now)
        with sessions() as session:
            row = session.get(JobRun, run_id)
            assert row is not None
            row.finished_at = max(now, datetime.now(now.tzinfo))
            row.outcome = result.outcome
            row.counts = json.dumps(result.counts)
            row.error = result.error[:2000]
            session.commit()
        return result
    finally:
        release_lease(sessions, job.name, holder)


def _execute(sessions: Sessions, job: Job, settings: Mapping[str, Any], now: datetime) -> RunResult:
    try:
        counts = job.run(Context(sessions, now, settings))
    except Exception as exc:  # noqa: BLE001 - a failed run is logged, the worker goes on
        return RunResult(job.name, "failed", {}, f"{type(exc).__name__}: {exc}")
    return RunResult(job.name, "ok", counts)


@dataclass(frozen=True)
class RunRow:
    name: str
    holder: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    counts: dict[str, int]
    error: str


def recent_runs(session: Session, name: str | None = None, limit: int = 50) -> list[RunRow]:
    """The newest runs first (of one job, or all)."""
    stmt = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if name:
        stmt = stmt.where(JobRun.name == name)
    return [
        RunRow(
            r.name,
            r.holder,
            r.started_at,
            r.finished_at,
            r.outcome,
            json.loads(r.counts or "{}"),
            r.error,
        )
        for r in session.scalars(stmt)
    ]


def run_counts(session: Session) -> dict[tuple[str, str], int]:
    """Runs in the log (the last :data:`KEEP_RUNS`) by job and outcome, for the metrics."""
    rows = session.execute(
        select(JobRun.name, JobRun.outcome, func.count()).group_by(JobRun.name, JobRun.outcome)
    )
    return {(name, outcome): int(n) for name, outcome, n in rows}
