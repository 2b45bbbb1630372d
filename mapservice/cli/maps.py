"""``mapservice map print``: the printed one map (the dashboard prints the same);
``mapservice map export``: the one map as one HTML file that opens offline
(``/map`` links the same)."""

from __future__ import annotations

from pathlib import Path

import click

from mapservice.cli import common
from mapservice.cli.common import committee_option
from mapservice.core import i18n
from mapservice.core.errors import ValidationFailed

map_group = click.Group("map", help="The printed one map and the offline one map file.")


@map_group.command("print", help="Print the one map: numbered venues, legend and index.")
@click.option("--paper", type=click.Choice(["A3", "A4"]), default="A3", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["pdf", "png"]), default="pdf", show_default=True
)
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@committee_option
def map_print(paper: str, fmt: str, output: str, committee_slug: str | None) -> None:
    from mapservice.operations.printing import print_committee_map
    from mapservice.stats.fonts import FontMissing

    with common.transaction() as session:
        committee = common.get_committee(session, committee_slug)
        try:
            printed = print_committee_map(session, committee, paper=paper, fmt=fmt)
        except FontMissing as exc:
            common.fail(str(exc))
    common.write_output(output, printed.data)
    click.echo(
        f"wrote the {paper} one map of {committee.slug} ({printed.venues} venues) to {output}"
    )


@map_group.command("export", help="The one map as one HTML file that opens offline.")
@click.option("--format", "fmt", type=click.Choice(["html"]), default="html", show_default=True)
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@committee_option
@click.option("--q", default="", help="Search: name, unit, address or facility.")
@click.option("--type", "types", multiple=True, help="Venue type key (repeatable).")
@click.option("--unit", "units", multiple=True, help="Member unit id (repeatable).")
@click.option("--street", "streets", multiple=True, help="Street id (repeatable).")
@click.option("--min-units", default="", help="At least this many capacity units.")
@click.option("--min-headcount", default="", help="At least this many people.")
@click.option("--near", default="", help="LON,LAT (WGS-84).")
@click.option("--radius-km", default="", help="Within this many km of --near.")
@click.option("--free-from", default="", help="Free from (YYYY-MM-DDTHH:MM, local time).")
@click.option("--free-to", default="", help="Free until (YYYY-MM-DDTHH:MM, local time).")
def map_export(
    fmt: str,
    output: str,
    committee_slug: str | None,
    q: str,
    types: tuple[str, ...],
    units: tuple[str, ...],
    streets: tuple[str, ...],
    min_units: str,
    min_headcount: str,
    near: str,
    radius_km: str,
    free_from: str,
    free_to: str,
) -> None:
    """Same filters as /map; the public venues only (what a visitor sees)."""
    from zoneinfo import ZoneInfo

    from mapservice.core.mapfilter import parse_filter
    from mapservice.maps.loading import unknown_choices
    from mapservice.operations.map_export import export_html, write_file

    args = {
        "q": [q],
        "types": list(types),
        "unit": list(units),
        "street": list(streets),
        "min_units": [min_units],
        "min_headcount": [min_headcount],
        "near": [near],
        "radius_km": [radius_km],
        "free_from": [free_from],
        "free_to": [free_to],
    }
    with common.transaction() as session:
        committee = common.get_committee(session, committee_slug)
        flt, errors = parse_filter(
            {k: [v for v in vs if v] for k, vs in args.items()}, ZoneInfo(committee.timezone)
        )
        errors = unknown_choices(session, committee, flt) | errors
        if errors:
            raise ValidationFailed(i18n._("Some filters are not valid."), errors)
        exported = export_html(session, committee, flt)
        slug = committee.slug
    try:
        write_file(Path(output), exported.html)
    except OSError as exc:
        common.fail(
            i18n._("Cannot write %(path)s: %(reason)s", path=output, reason=exc.strerror or exc)
        )
    click.echo(f"wrote the one map of {slug} ({exported.venues} venues, {fmt}) to {output}")


init_app = common.registrar(map_group)
