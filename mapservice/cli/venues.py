"""``mapservice import venues`` and ``export venues``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select

from mapservice.cli.common import (
    cli_actor,
    committee_option,
    fail,
    get_committee,
    registrar,
    transaction,
    write_output,
)
from mapservice.core.venue_io import write_venues
from mapservice.models import Unit, Venue

import_group = click.Group("import", help="Bulk import.")


@import_group.command("venues", help="Import venues from CSV, XLSX or GeoJSON (all or nothing).")
@click.argument("file", type=click.Path(dir_okay=False))
@committee_option
def import_venues_cmd(file: str, committee_slug: str | None) -> None:
    from mapservice.operations.imports import import_venue_file, max_rows_of

    path = Path(file)
    if not path.is_file():
        fail(f"no such file: {file}")
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        report = import_venue_file(
            session,
            cli_actor(committee),
            committee,
            path.read_bytes(),
            path.name,
            max_rows=max_rows_of(current_app.config),
        )
    click.echo(f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}")


export_group = click.Group("export", help="Export data.")


@export_group.command("venues", help="Export venues to CSV, XLSX or GeoJSON.")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx", "geojson"]))
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@click.option("--include-retired", is_flag=True)
@committee_option
def export_venues_cmd(
    fmt: str, output: str, include_retired: bool, committee_slug: str | None
) -> None:
    from mapservice.operations.venues import row_of

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        stmt = (
            select(Venue)
            .join(Unit, Venue.unit_id == Unit.id)
            .where(Venue.committee_id == committee.id)
        )
        if not include_retired:
            stmt = stmt.where(Venue.retired.is_(False))
        venues = session.scalars(stmt.order_by(Unit.name, Venue.name)).all()
        rows = [row_of(v, "wgs84" if fmt == "geojson" else None) for v in venues]
    write_output(output, write_venues(rows, fmt))
    click.echo(f"wrote {len(rows)} venues to {output}")


init_app = registrar(import_group, export_group)
