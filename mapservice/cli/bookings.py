"""``mapservice bookings expire``."""

from __future__ import annotations

import click

from mapservice.cli.common import registrar, transaction


@click.command(
    "expire", help="Expire pending requests whose hold ran out (also happens on access)."
)
def bookings_expire() -> None:
    from mapservice.booking.engine import expire_holds

    with transaction() as session:
        n = expire_holds(session)
    click.echo(f"expired {n} pending request(s)")


init_app = registrar(click.Group("bookings", help="Bookings.", commands=[bookings_expire]))
