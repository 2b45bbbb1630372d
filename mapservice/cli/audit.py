"""``mapservice audit list``: the committee's audit log at the console, filtered as on the
``/audit`` page, as text or a CSV / XLSX file."""

from __future__ import annotations

import click

from mapservice.cli.common import (
    cli_actor,
    committee_option,
    get_committee,
    registrar,
    transaction,
    write_output,
)
from mapservice.operations import audit as ops

audit_group = click.Group("audit", help="The audit log.")


@audit_group.command("list", help="Audit entries, newest first (filters as on /audit).")
@click.option("--actor", default="", help="User name.")
@click.option("--action", default="", help='e.g. "venue.update", or a prefix "booking.".')
@click.option("--object-type", default="")
@click.option("--object-id", default="")
@click.option("--since", default="", help="First local day, YYYY-MM-DD.")
@click.option("--until", default="", help="Last local day, YYYY-MM-DD.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, ops.EXPORT_MAX))
@click.option("--format", "fmt", type=click.Choice(["text", *ops.FORMATS]), default="text")
@click.option("--output", type=click.Path(dir_okay=False), help="The file (csv, xlsx).")
@committee_option
def list_cmd(
    limit: int, fmt: str, output: str | None, committee_slug: str | None, **args: str
) -> None:
    if fmt != "text" and not output:
        raise click.UsageError("--output is required with --format csv or xlsx")
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        flt = ops.parse_filter(args)
        lines = ops.audit_lines(session, cli_actor(committee), flt, limit=limit)
        if fmt != "text" and output:
            write_output(output, ops.export_audit(lines, fmt))
            click.echo(f"wrote {len(lines)} entries to {output}")
            return
        for line in lines:
            what = line.changes_text() or line.details_text()
            target = f"{line.entry.object_type}#{line.entry.object_id}"
            click.echo(f"{line.at:%Y-%m-%d %H:%M}  {line.actor}  {line.action}  {target}  {what}")


init_app = registrar(audit_group)
