"""The production servers behind ``mapservice serve``.

* **waitress** (the default, and ``make demo``'s): one process, a pool of threads. Simple, no
  fork, the API rate limits are exact (one in-memory counter).
* **gunicorn** (``--workers N``, POSIX): a master that pre-forks N worker processes, each with
  its own thread pool, so a multi-core machine serves requests on every core (Python threads
  share one interpreter lock). The app is built once in the master (``preload_app``) and each
  worker then starts with a fresh connection pool: connections must never be shared across a
  fork. The master restarts a worker that dies (``kill -9``) or hangs past ``--timeout``.
  The API rate limit's in-memory counters are per worker: set ``RATELIMIT_STORAGE_URI`` to a
  shared store (e.g. ``redis://…``) where exact limits matter with several workers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def serve_waitress(app: Flask, host: str, port: int, threads: int) -> None:
    from waitress import serve

    serve(app, host=host, port=port, threads=threads)


def serve_gunicorn(
    app: Flask, host: str, port: int, workers: int, threads: int, timeout: int = 60
) -> None:
    from gunicorn.app.base import BaseApplication

    def post_fork(_server: Any, _worker: Any) -> None:
        # The master built the app and may have connected; the worker gets its own pool
        # (close=False: the parent's connections are left to the parent).
        app.extensions["db_engine"].dispose(close=False)

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "preload_app": True,
                "timeout": timeout,
                "graceful_timeout": 10,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "post_fork": post_fork,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    _Server().run()
