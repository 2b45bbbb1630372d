"""The ``mapservice`` command line: the console script's group.

Each subsystem registers its own commands with an ``init_app(app)`` of its module in this
package (``app.py`` calls them); this module only builds the app the commands run in, so the
app factory and the CLI do not import each other."""

from __future__ import annotations

import os

import click
from flask import Flask
from flask.cli import FlaskGroup

from mapservice.core import i18n


def _factory() -> Flask:
    from mapservice.app import create_app
    from mapservice.core.mbtiles import MBTilesError

    # A configuration the app cannot start with is one line, in the console's language.
    with i18n.use_locale(os.environ.get("MAPSERVICE_LANGUAGE", "zh_CN")):
        try:
            return create_app()
        except MBTilesError as exc:
            raise click.ClickException(exc.message) from exc


@click.group(
    cls=FlaskGroup,
    create_app=_factory,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
)
def main() -> None:
    """mapservice: the shared-venue one map."""
