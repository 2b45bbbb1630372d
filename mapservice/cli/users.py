"""``mapservice user create`` and ``user reset-password``."""

from __future__ import annotations

from typing import TypeVar

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.cli.common import (
    cli_actor,
    committee_option,
    fail,
    get_committee,
    get_user,
    password,
    registrar,
    transaction,
)
from mapservice.core.vocab import Role
from mapservice.models import Committee, Group, Unit

user_group = click.Group("user", help="Accounts.")


Named = TypeVar("Named", Unit, Group)


def named(session: Session, model: type[Named], committee: Committee, name: str | None) -> Named:
    """The committee's unit or group called ``name`` (the option is required for the role)."""
    option, kind = ("--unit", "unit") if model is Unit else ("--group", "group")
    if not name:
        fail(f"{option} is required for a {'unit_secretary' if model is Unit else 'booker'}")
    found = session.scalars(
        select(model).where(model.committee_id == committee.id, model.name == name)
    ).one_or_none()
    if found is None:
        fail(f"no {kind} named {name!r} in {committee.slug}")
    return found


@user_group.command("create", help="Create a user with one role.")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--unit", "unit_name", default=None, help="Unit name (unit_secretary).")
@click.option(
    "--group", "group_names", multiple=True, help="Group name (booker; repeat for several)."
)
@click.option("--display-name", default="")
@click.option("--phone", default="")
@click.option("--email", default="", help="Where booking notices are e-mailed (optional).")
@click.option("--password", "password_", default=None, help="Else MAPSERVICE_PASSWORD or a prompt.")
@committee_option
def user_create(
    username: str,
    role: str,
    unit_name: str | None,
    group_names: tuple[str, ...],
    display_name: str,
    phone: str,
    email: str,
    password_: str | None,
    committee_slug: str | None,
) -> None:
    from mapservice.operations.users import create_user

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        unit = named(session, Unit, committee, unit_name) if role == "unit_secretary" else None
        groups = (
            [named(session, Group, committee, name) for name in group_names or (None,)]
            if role == "booker"
            else []
        )
        user = create_user(
            session,
            cli_actor(committee),
            committee,
            username=username,
            password=password(password_),
            role=role,
            display_name=display_name,
            phone=phone,
            email=email,
            unit=unit,
            groups=groups,
        )
        click.echo(f"created {user.username} ({user.role})")


@user_group.command("reset-password", help="Set a new password for a user.")
@click.option("--username", required=True)
@click.option("--password", "password_", default=None, help="Else MAPSERVICE_PASSWORD or a prompt.")
def user_reset(username: str, password_: str | None) -> None:
    from mapservice.operations.users import reset_password

    with transaction() as session:
        reset_password(session, None, get_user(session, username), password(password_))
        click.echo(f"password of {username} changed")


init_app = registrar(user_group)
