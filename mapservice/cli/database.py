"""``mapservice db upgrade``, ``backup`` and ``restore``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import click
from flask import current_app

from mapservice.cli.common import config, fail, registrar

db_group = click.Group("db", help="Database schema.")


@db_group.command("upgrade", help="Apply migrations up to the newest schema.")
def db_upgrade() -> None:
    from mapservice.migrate import upgrade

    url = config("DATABASE_URL")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    click.echo("database is up to date")


@click.command("backup", help="Write a consistent backup of the database to FILE.")
@click.option("--output", required=True, type=click.Path(dir_okay=False))
def backup_cmd(output: str) -> None:
    from mapservice.maintenance import backup

    try:
        backup(config("DATABASE_URL"), Path(output))
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        fail(f"backup failed: {exc}")
    click.echo(f"backup written to {output}")


@click.command(
    "restore",
    help="Replace the database's contents with the backup in FILE (stop the service first).",
)
@click.argument("file", type=click.Path(dir_okay=False))
def restore_cmd(file: str) -> None:
    from mapservice.maintenance import restore
    from mapservice.migrate import upgrade

    url = config("DATABASE_URL")
    try:
        restore(url, Path(file))
    except (OSError, ValueError) as exc:
        fail(f"restore failed: {exc}")
    current_app.extensions["db_engine"].dispose()
    # A backup taken before a later release's migrations comes back up to date (on SQLite,
    # e.g., instants stored as text before 0008 become integers).
    upgrade(url)
    click.echo(f"restored from {file}; the schema is up to date")


init_app = registrar(db_group, backup_cmd, restore_cmd)
