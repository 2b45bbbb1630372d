"""``mapservice serve``: a production WSGI server."""

from __future__ import annotations

import click
from flask import current_app

from mapservice.cli.common import registrar


@click.command(
    "serve",
    help="Serve the app with a production WSGI server: waitress (one process, threads) or,"
    " with --workers N, gunicorn (N worker processes, each with threads).",
)
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--threads", default=8, type=int, help="threads per process")
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(min=0),
    help="gunicorn worker processes (0: waitress, one process); e.g. the number of cores",
)
def serve(host: str, port: int, threads: int, workers: int) -> None:
    from mapservice.web import serving

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if workers:
        click.echo(
            f"serving on http://{host}:{port} (gunicorn, {workers} workers × {threads} threads)"
        )
        serving.serve_gunicorn(app, host, port, workers, threads)
    else:
        click.echo(f"serving on http://{host}:{port} (waitress, {threads} threads)")
        serving.serve_waitress(app, host, port, threads)


init_app = registrar(serve)
