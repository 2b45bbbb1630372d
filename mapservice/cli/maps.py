"""``mapservice map print``: the printed one map (the dashboard prints the same)."""

from __future__ import annotations

import click

from mapservice.cli import common
from mapservice.cli.common import committee_option

map_group = click.Group("map", help="The printed one map.")


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


init_app = common.registrar(map_group)
