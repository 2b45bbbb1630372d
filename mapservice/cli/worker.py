"""``mapservice worker`` (the scheduled jobs, in a loop) and ``mapservice jobs list|run``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from mapservice.cli.common import fail, registrar
from mapservice.operations import jobs


def _sessions() -> Any:
    # The app's writer sessions: notices a job writes are e-mailed after its commit (SMTP).
    return current_app.extensions["db_write_sessionmaker"]


def _say(result: jobs.RunResult) -> None:
    if result.outcome == "held" and result.held is not None:
        click.echo(
            f"{result.name}: not run — another worker ({result.held.holder}) holds it"
            f" until {result.held.until:%Y-%m-%d %H:%M:%S} UTC"
        )
    elif result.outcome == "failed":
        click.echo(f"{result.name}: failed — {result.error}", err=True)
    elif result.outcome == "ok":
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
        click.echo(f"{result.name}: ok ({counts})")


@click.command(
    "worker",
    help="Run the scheduled jobs (expire holds, reminders, no-shows, digest of new requests,"
    " nightly backup) until"
    " stopped. Several workers may run at once: each job runs in one of them at a time.",
)
@click.option("--interval", default=30.0, type=float, help="seconds between looks at the jobs")
@click.option("--once", is_flag=True, help="look once, run what is due, and exit")
def worker(interval: float, once: bool) -> None:
    holder = jobs.worker_name()
    click.echo(f"worker {holder}: jobs {', '.join(jobs.JOBS)}")
    while True:
        for job in jobs.JOBS.values():
            try:
                result = jobs.run_job(
                    _sessions(), job, current_app.config, holder=holder, now=datetime.now(UTC)
                )
            except SQLAlchemyError as exc:  # the database away: say so, try again next time
                click.echo(f"{job.name}: database unavailable — {type(exc).__name__}", err=True)
                continue
            _say(result)
        if once:
            return
        time.sleep(interval)


jobs_group = click.Group("jobs", help="Scheduled jobs: run one now, list the runs.")


@jobs_group.command("run", help=f"Run one job now: {', '.join(jobs.JOBS)}.")
@click.argument("name", type=click.Choice(list(jobs.JOBS)))
def jobs_run(name: str) -> None:
    result = jobs.run_job(
        _sessions(),
        jobs.JOBS[name],
        current_app.config,
        holder=jobs.worker_name(),
        now=datetime.now(UTC),
        force=True,
    )
    _say(result)
    if result.outcome != "ok":
        fail(f"{name} was not run" if result.outcome == "held" else f"{name} failed")


@jobs_group.command("list", help="The latest runs, newest first.")
@click.option("--job", "name", type=click.Choice(list(jobs.JOBS)), default=None)
@click.option("--limit", default=20, type=click.IntRange(min=1))
def jobs_list(name: str | None, limit: int) -> None:
    session = _sessions()()
    try:
        runs = jobs.recent_runs(session, name, limit)
    finally:
        session.close()
    if not runs:
        click.echo("no runs yet")
    for r in runs:
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        counts = ", ".join(f"{k} {v}" for k, v in r.counts.items())
        line = f"{r.started_at:%Y-%m-%d %H:%M:%S}  {r.name:<15} {r.outcome:<7} {took:>7}  {counts}"
        click.echo(line + (f"  {r.error}" if r.error else ""))


init_app = registrar(worker, jobs_group)
