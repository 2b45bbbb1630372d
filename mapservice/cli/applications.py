"""``mapservice application list|admit|decline``: units' applications to join (成员准入) at
the console, by the rules of ``operations/applications.py`` (as on ``/units/applications``)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from mapservice.cli.common import cli_actor, committee_option, get_committee, registrar, transaction
from mapservice.core.vocab import ApplicationStatus
from mapservice.operations import applications as ops

application_group = click.Group("application", help="Units' applications to join.")


@application_group.command("list", help="Applications, pending first.")
@click.option("--status", type=click.Choice([s.value for s in ApplicationStatus]), default=None)
@committee_option
def list_cmd(status: str | None, committee_slug: str | None) -> None:
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        for a in ops.list_applications(session, cli_actor(committee), status):
            click.echo(
                f"{a.id}\t{a.status}\t{a.submitted_at:%Y-%m-%d %H:%M}\t{a.name}\t"
                f"{a.contact_name} {a.phone}\t{a.reason}".rstrip()
            )


@application_group.command("admit", help="Admit: the contact's secretary account and its link.")
@click.argument("application_id", type=int)
@click.option("--username", default=None, help="Default: from the contact's e-mail.")
@committee_option
def admit_cmd(application_id: int, username: str | None, committee_slug: str | None) -> None:
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        _a, user, secret = ops.admit(
            session, cli_actor(committee), application_id, username=username, now=_now()
        )
        click.echo(f"admitted {user.unit.name if user.unit else ''}; secretary {user.username}")
        click.echo(f"set-password link (72 h, once), on this server: /password/{secret}")


@application_group.command("decline", help="Decline with a reason.")
@click.argument("application_id", type=int)
@click.option("--reason", required=True)
@committee_option
def decline_cmd(application_id: int, reason: str, committee_slug: str | None) -> None:
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        a = ops.decline(session, cli_actor(committee), application_id, reason=reason, now=_now())
        click.echo(f"declined {a.name}")


def _now() -> datetime:
    return datetime.now(UTC)


init_app = registrar(application_group)
