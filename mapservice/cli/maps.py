"""``mapservice map print``: the printed one map (the dashboard prints the same)."""

from __future__ import annotations

import click
from flask import Flask

from mapservice.cli.common import committee_option, fail, get_committee, transaction, write_output


def init_app(app: Flask) -> None:
    app.cli.add_command(map_group)


@click.group("map", help="The printed one map.")
def map_group() -> None:
    pass


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

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        try:
            printed = print_committee_map(session, committee, paper=paper, fmt=fmt)
        except FontMissing as exc:
            fail(str(exc))
    write_output(output, printed.data)
    click.echo(
        f"wrote the {paper} one map of {committee.slug} ({printed.venues} venues) to {output}"
    )
