"""``mapservice stats rebuild`` and ``refresh``: the statistics' daily and monthly
aggregates."""

from __future__ import annotations

import time

import click

from mapservice.cli.common import registrar, transaction

stats_group = click.Group("stats", help="The statistics' per-venue daily and monthly aggregates.")


@stats_group.command(
    "rebuild", help="Recount every venue's daily and monthly aggregates from the bookings."
)
def stats_rebuild() -> None:
    from sqlalchemy import func, select

    from mapservice.models import venue_month_usage
    from mapservice.stats.aggregates import rebuild

    t0 = time.perf_counter()
    with transaction() as session:
        rows = rebuild(session)
        months = session.execute(select(func.count()).select_from(venue_month_usage)).scalar_one()
    click.echo(
        f"daily aggregates rebuilt: {rows} rows, {months} month rows"
        f" in {time.perf_counter() - t0:.1f} s"
    )


@stats_group.command(
    "refresh",
    help="Recount the days (and their months) changed since the aggregates were last counted.",
)
def stats_refresh() -> None:
    from mapservice.stats.aggregates import refresh

    with transaction() as session:
        entries = refresh(session)
    click.echo(f"daily aggregates refreshed: {entries} change(s) counted")


init_app = registrar(stats_group)
