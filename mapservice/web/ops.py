"""For the operator: ``/readyz`` (may this instance take traffic?) and Prometheus metrics at
``/metrics`` (``/healthz``, liveness, is in :mod:`mapservice.web.home`).

Metrics are counted in this process (all its threads: ``prometheus_client`` metrics are
thread-safe). Under several processes (``mapservice serve --workers N``) each process counts
its own, and a scrape reaches one of them — unless ``PROMETHEUS_MULTIPROC_DIR`` names an
empty directory, set before start-up: then every process writes its values there and
``/metrics`` answers the sum of all (``prometheus_client``'s multiprocess mode). The job runs
are read from the database's run log, so they are whole in any mode.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from mapservice.booking import locking, write

bp = Blueprint("ops", __name__)

REQUESTS = Counter(
    "mapservice_http_requests",
    "HTTP requests answered, by route (the endpoint's name) and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "mapservice_http_request_duration_seconds",
    "Time to answer a request, by route",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BOOKINGS = Counter(
    "mapservice_booking_attempts",
    "Booking attempts that reached the venue's lock, by outcome (confirmed, pending, conflict)",
    ["outcome"],
)

LOCK_WAIT = Histogram(
    "mapservice_booking_lock_wait_seconds",
    "Time a booking attempt took to get its venue's lock (mostly waiting for the writer before)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def _count_booking(outcome: str) -> None:
    BOOKINGS.labels(outcome).inc()


def _lock_waited(seconds: float) -> None:
    LOCK_WAIT.observe(seconds)


if _count_booking not in write.outcome_listeners:
    write.outcome_listeners.append(_count_booking)
if _lock_waited not in locking.lock_wait_listeners:
    locking.lock_wait_listeners.append(_lock_waited)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _measured(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            rule = request.url_rule
            route = rule.endpoint if rule is not None else "unmatched"
            REQUESTS.labels(route, request.method, str(response.status_code)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)
        return response


def _alembic_heads(app: Flask) -> set[str]:
    """The migration scripts' head(s), read once."""
    heads: set[str] | None = app.extensions.get("alembic_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        from mapservice.migrate import alembic_config

        config = alembic_config(app.config["DATABASE_URL"])
        heads = set(ScriptDirectory.from_config(config).get_heads())
        app.extensions["alembic_heads"] = heads
    return heads


def _redis_status(app: Flask) -> dict[str, str]:
    """``{"redis": "ok" | "unreachable: …" | "misconfigured: …"}`` when Redis is configured.
    Not a reason for 503: without Redis the rate limit counts on this machine (a warning in
    the log), and every instance would leave the balancer at once if Redis failed."""
    from mapservice.api.ratelimit import ChainStorage

    storage = app.extensions["api_limiter"].storage
    status = storage.redis_status() if isinstance(storage, ChainStorage) else None
    return {} if status is None else {"redis": status}


@bp.route("/readyz")
def ready() -> Any:
    """200 when the database answers and its schema is at the migrations' head; else 503
    saying what is wrong. Says whether Redis answers, when configured."""
    from alembic.runtime.migration import MigrationContext

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    redis = _redis_status(app)
    try:
        with app.extensions["db_engine"].connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is "not ready"
        database = f"unreachable: {type(exc).__name__}"
        return {"status": "unavailable", "database": database, **redis}, 503
    head = _alembic_heads(app)
    if current != head:
        return {
            "status": "unavailable",
            "database": "ok",
            "migrations": f"at {', '.join(sorted(current)) or 'none'}, head is"
            f" {', '.join(sorted(head))}: run 'mapservice db upgrade'",
            **redis,
        }, 503
    return {"status": "ok", "database": "ok", "migrations": "head", **redis}


def _allowed() -> bool:
    try:
        if ipaddress.ip_address(request.remote_addr or "").is_loopback:
            return True
    except ValueError:
        pass
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    header = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


@bp.route("/metrics")
def metrics() -> Any:
    """Prometheus metrics, to loopback clients and to holders of ``MAPSERVICE_METRICS_TOKEN``."""
    if not _allowed():
        return {"status": "forbidden"}, 403
    from prometheus_client import REGISTRY, multiprocess

    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    body = generate_latest(registry) + generate_latest(_job_registry())
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def _job_registry() -> CollectorRegistry:
    """The job runs of the run log (the last 30 days), by job and outcome."""
    from mapservice.operations.jobs import run_counts

    session = current_app.extensions["db_sessionmaker"]()
    try:
        counts = run_counts(session)
    finally:
        session.close()
    family = GaugeMetricFamily(
        "mapservice_job_runs",
        "Scheduled job runs in the run log (30 days), by job and outcome",
        labels=["job", "outcome"],
    )
    for (name, outcome), n in sorted(counts.items()):
        family.add_metric([name, outcome], n)

    class Jobs:
        def collect(self) -> Any:
            yield family

    registry = CollectorRegistry()
    registry.register(Jobs())  # type: ignore[arg-type]
    return registry
