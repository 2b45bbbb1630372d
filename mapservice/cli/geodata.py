"""``mapservice geodata import`` and ``committee create``."""

from __future__ import annotations

from pathlib import Path

import click

from mapservice.cli.common import (
    cli_actor,
    committee_option,
    config,
    fail,
    get_committee,
    registrar,
    transaction,
)
from mapservice.core import geo

geodata_group = click.Group("geodata", help="District and street boundaries.")


@geodata_group.command(
    "import", help="Load district or street polygons from any file GeoPandas reads."
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--level", required=True, type=click.Choice(["district", "street"]))
@click.option("--name", "only_name", default=None, help="Only the feature with this name.")
@committee_option
def geodata_import(
    file: str, level: str, only_name: str | None, committee_slug: str | None
) -> None:
    from mapservice.operations.areas import load_areas

    if not Path(file).is_file():
        fail(f"no such file: {file}")
    try:
        areas = geo.read_areas(file, level=level)
    except geo.GeoDataError as exc:
        fail(str(exc))
    if only_name:
        areas = [a for a in areas if a.name == only_name]
        if not areas:
            fail(f"no feature named {only_name!r} in {file}")
    if level == "district" and len(areas) != 1:
        fail(f"a committee has one district; {file} has {len(areas)} (use --name)")
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        n = load_areas(session, cli_actor(committee), committee, areas, level)
    click.echo(f"loaded {n} {level} area(s) for {committee.slug}")


committee_group = click.Group("committee", help="Committees hosted by this deployment.")


@committee_group.command("create", help="Create a committee with its district boundary.")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--district", "district_file", required=True, type=click.Path(dir_okay=False))
@click.option("--district-name", default=None, help="Feature name when the file holds several.")
@click.option("--timezone", default=None)
def committee_create(
    slug: str, name: str, district_file: str, district_name: str | None, timezone: str | None
) -> None:
    from mapservice.operations.committees import create_committee

    with transaction() as session:
        create_committee(
            session,
            slug=slug,
            name=name,
            timezone=timezone or config("TIMEZONE"),
            district_file=district_file,
            district_name=district_name,
        )
    click.echo(f"created committee {slug}")


init_app = registrar(geodata_group, committee_group)
