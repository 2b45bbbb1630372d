"""``mapservice seed demo``."""

from __future__ import annotations

import click

from mapservice.cli.common import registrar, transaction

seed_group = click.Group("seed", help="Demo data.")


@seed_group.command(
    "demo", help="Load the demo committees, units, venues and log-ins (idempotent)."
)
def seed_demo_cmd() -> None:
    from mapservice.operations.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo

    with transaction() as session:
        result = seed_demo(session)
    for name, counts in result.items():
        click.echo(f"{name}: " + ", ".join(f"{k} +{v}" for k, v in counts.items()))
    click.echo(f"demo log-ins (password: {DEMO_PASSWORD}): " + ", ".join(u for u, *_ in DEMO_USERS))


init_app = registrar(seed_group)
