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
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    help="threads per process (default: 8 with waitress, 2 per gunicorn worker)",
)
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(min=0),
    help="gunicorn worker processes (0: waitress, one process); e.g. the number of cores",
)
@click.option(
    "--max-worker-growth-mb",
    default=None,
    type=click.FloatRange(min=0),
    envvar="MAPSERVICE_MAX_WORKER_GROWTH_MB",
    help="with --workers: a worker that has grown by more than this many MB since it was"
    " forked is replaced after the request that finds it so (0: never; default 100)",
)
def serve(
    host: str, port: int, threads: int | None, workers: int, max_worker_growth_mb: float | None
) -> None:
    from mapservice.web import serving

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if threads is None:
        threads = serving.WORKER_THREADS if workers else serving.WAITRESS_THREADS
    if workers:
        click.echo(
            f"serving on http://{host}:{port} (gunicorn, {workers} workers × {threads} threads)"
        )
        growth = (
            serving.MAX_WORKER_GROWTH_MB if max_worker_growth_mb is None else max_worker_growth_mb
        )
        serving.serve_gunicorn(app, host, port, workers, threads, max_growth_mb=growth)
    else:
        click.echo(f"serving on http://{host}:{port} (waitress, {threads} threads)")
        serving.serve_waitress(app, host, port, threads)


init_app = registrar(serve)
