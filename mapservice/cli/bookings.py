"""``mapservice bookings expire``."""

from __future__ import annotations

import click
from flask import Flask

from mapservice.cli.common import transaction


def init_app(app: Flask) -> None:
    app.cli.add_command(bookings_group)


@click.group("bookings", help="Bookings.")
def bookings_group() -> None:
    pass


@bookings_group.command(
    "expire", help="Expire pending requests whose hold ran out (also happens on access)."
)
def bookings_expire() -> None:
    from mapservice.booking.engine import expire_holds

    with transaction() as session:
        n = expire_holds(session)
    click.echo(f"expired {n} pending request(s)")
