"""``mapservice group create``."""

from __future__ import annotations

import click

from mapservice.cli.common import cli_actor, committee_option, registrar, transaction
from mapservice.cli.users import named
from mapservice.models import Unit

group_group = click.Group("group", help="Youth groups.")


@group_group.command("create", help="Create a youth group, of a member unit or standalone.")
@click.option("--name", required=True)
@click.option("--unit", "unit_name", default=None, help="Member unit name (else standalone).")
@click.option("--contact", default="", help="Contact person.")
@click.option("--phone", default="", help="Contact phone.")
@click.option("--email", default="", help="Contact e-mail.")
@committee_option
def group_create(
    name: str,
    unit_name: str | None,
    contact: str,
    phone: str,
    email: str,
    committee_slug: str | None,
) -> None:
    from mapservice.cli.common import get_committee
    from mapservice.operations.groups import save_group

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        unit = named(session, Unit, committee, unit_name) if unit_name else None
        group = save_group(
            session,
            cli_actor(committee),
            name=name,
            unit_id=unit.id if unit else None,
            contact_name=contact,
            contact_phone=phone,
            contact_email=email,
        )
        click.echo(f"created group {group.name} (id {group.id})")


init_app = registrar(group_group)
