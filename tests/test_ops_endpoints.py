"""Issue 21 items 2 and 4: behind a proxy (``MAPSERVICE_TRUSTED_PROXIES``), the operator's
``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import request, url_for
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.models import LoginAttempt
from tests.conftest import wiped_session

CLIENT = "203.0.113.7"


def _app(database_url: str, instance: Path, **config: Any) -> Any:
    from mapservice import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "ops-secret",
            "TESTING": True,
            "INSTANCE_PATH": instance,
            "WTF_CSRF_ENABLED": False,
            "API_RATE_LIMIT": "2 per minute",
            "METRICS_TOKEN": "metrics-secret",
            **config,
        }
    )

    @app.route("/_where")
    def where() -> Any:  # what the app believes about the request
        return {"addr": request.remote_addr, "url": url_for("home.index", _external=True)}

    return app


@pytest.fixture(scope="module")
def apps(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[int, Any]]:
    with wiped_session(engine):
        made = {
            n: _app(database_url, tmp_path_factory.mktemp(f"p{n}"), TRUSTED_PROXIES=n)
            for n in (0, 1)
        }
        yield made
        for app in made.values():
            app.extensions["db_engine"].dispose()


def _attempt_address(engine: Engine, username: str) -> str | None:
    with Session(engine) as s:
        return s.scalar(select(LoginAttempt.address).where(LoginAttempt.username == username))


def test_behind_one_proxy_the_client_is_the_forwarded_one(
    apps: dict[int, Any], engine: Engine
) -> None:
    client = apps[1].test_client()
    proxied = {
        "X-Forwarded-For": f"198.51.100.1, {CLIENT}",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "map.example.org",
    }
    where = client.get("/_where", headers=proxied).get_json()
    # The last hop is the proxy's own entry; what the client wrote before it is not believed.
    assert where == {"addr": CLIENT, "url": "https://map.example.org/"}
    # The login throttle counts the client's address.
    client.post("/login", data={"username": "proxied", "password": "x"}, headers=proxied)
    assert _attempt_address(engine, "proxied") == CLIENT
    # The API's rate limit too: one client runs out, another behind the same proxy does not.
    statuses = [client.get("/api/v1/venues", headers=proxied).status_code for _ in range(3)]
    other = client.get("/api/v1/venues", headers={"X-Forwarded-For": "192.0.2.9"})
    assert (statuses, other.status_code) == ([200, 200, 429], 200)
    # A chain shorter than the proxies counted (none at all): the request as it came.
    bare = client.get("/_where").get_json()
    assert bare == {"addr": "127.0.0.1", "url": "http://localhost/"}


def test_without_proxies_forwarded_headers_are_ignored(
    apps: dict[int, Any], engine: Engine
) -> None:
    client = apps[0].test_client()
    forged = {
        "X-Forwarded-For": CLIENT,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
    }
    assert client.get("/_where", headers=forged).get_json() == {
        "addr": "127.0.0.1",
        "url": "http://localhost/",
    }
    client.post("/login", data={"username": "forger", "password": "x"}, headers=forged)
    assert _attempt_address(engine, "forger") == "127.0.0.1"


def test_more_proxies_than_the_chain_has(
    database_url: str,
    tmp_path: Path,
    apps: dict[int, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "mapservice.web.proxies")
    app = _app(database_url, tmp_path, TRUSTED_PROXIES=3)
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200  # straight to the instance: quiet
        assert caplog.messages == []
        answers = [
            client.get("/_where", headers={"X-Forwarded-For": f"{CLIENT}, 10.0.0.{i}"})
            for i in range(3)
        ]
    finally:
        app.extensions["db_engine"].dispose()
    # werkzeug believes no entry of a chain shorter than the count: the proxy's own address;
    # requests are served, and the setting is named once in the log.
    assert [a.get_json() for a in answers] == [
        {"addr": "127.0.0.1", "url": "http://localhost/"}
    ] * 3
    assert caplog.messages == [
        "MAPSERVICE_TRUSTED_PROXIES=3, but a request came through 2 proxy address(es)"
        f" (X-Forwarded-For: {CLIENT}, 10.0.0.0): such requests keep the address of the proxy"
        " nearest the app (127.0.0.1), so clients share one log-in throttle and one rate"
        " limit. Set it to the number of proxies in front of the app (nginx alone: 1)."
        " Said once per process."
    ]


def test_health_and_readiness(apps: dict[int, Any], engine: Engine) -> None:
    client = apps[0].test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {
        "status": "ok",
        "database": "ok",
        "migrations": "head",
    }
    with engine.begin() as conn:
        head = conn.scalar(text("SELECT version_num FROM alembic_version"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0013'"))
    try:
        answer = client.get("/readyz")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert answer.status_code == 503
    assert answer.get_json()["migrations"] == (
        f"at 0013, head is {head}: run 'mapservice db upgrade'"
    )


def test_metrics_to_loopback_or_the_token(apps: dict[int, Any]) -> None:
    client = apps[0].test_client()
    client.get("/healthz")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'mapservice_http_requests_total{method="GET",route="home.health",status="200"}' in body
    assert 'mapservice_http_request_duration_seconds_bucket{le="0.005",route="home.health"}' in body
    assert "mapservice_booking_attempts_total" in body
    assert "mapservice_job_runs" in body
    away = {"REMOTE_ADDR": "192.0.2.20"}
    assert client.get("/metrics", environ_overrides=away).status_code == 403
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", environ_overrides=away, headers=wrong).status_code == 403
    right = {"Authorization": "Bearer metrics-secret"}
    assert client.get("/metrics", environ_overrides=away, headers=right).status_code == 200
    # Behind a proxy on this machine, a forwarded client is not loopback.
    proxied = apps[1].test_client().get("/metrics", headers={"X-Forwarded-For": CLIENT})
    assert proxied.status_code == 403


def test_a_booking_tells_how_long_it_waited_for_the_venues_lock(
    apps: dict[int, Any], db: Session, make: Any
) -> None:
    """The booking core measures the time to take the venue's lock as a plain number
    (``locking.lock_wait_listeners``); the metrics export it as a histogram."""
    from datetime import UTC, datetime, timedelta

    from prometheus_client import REGISTRY

    from mapservice.booking import engine as booking_engine
    from mapservice.booking import locking
    from mapservice.db import make_sessionmaker

    committee = make.committee(with_streets=False)
    unit = make.unit(committee)
    group = make.group(committee, unit)
    booker = make.booker(group)
    venue = make.venue(unit, hours="Mon-Sun 00:00-24:00", min_notice_minutes=0)
    db.commit()
    seen: list[float] = []
    locking.lock_wait_listeners.append(seen.append)
    before = REGISTRY.get_sample_value("mapservice_booking_lock_wait_seconds_count") or 0
    try:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        with make_sessionmaker(db.get_bind(), write=True)() as s:
            booking_engine.book(s, booker, venue.id, group.id, start, start + timedelta(hours=1))
            s.commit()
    finally:
        locking.lock_wait_listeners.remove(seen.append)
    assert len(seen) == 1 and 0 <= seen[0] < 5
    after = REGISTRY.get_sample_value("mapservice_booking_lock_wait_seconds_count")
    assert after == before + 1
    body = apps[0].test_client().get("/metrics").get_data(as_text=True)
    assert "mapservice_booking_lock_wait_seconds_bucket" in body


def test_json_request_log_one_line_per_request_with_an_id(
    database_url: str, tmp_path: Path, apps: dict[int, Any]
) -> None:
    import json
    import logging

    from mapservice.web import requestlog

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    keep = Keep()
    requestlog.logger.addHandler(keep)
    try:
        app = _app(database_url, tmp_path, LOG_FORMAT="json", TRUSTED_PROXIES=1)
        client = app.test_client()
        sent = client.get(
            "/healthz", headers={"X-Request-ID": "0123abcd" * 4, "X-Forwarded-For": CLIENT}
        )
        forged = client.get("/no-such-page", headers={"X-Request-ID": "bad id {}"})
        app.extensions["db_engine"].dispose()
        # Off by default: the other apps of this module log nothing.
        apps[0].test_client().get("/healthz")
    finally:
        requestlog.logger.removeHandler(keep)
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert sent.headers["X-Request-ID"] == "0123abcd" * 4 == first["request_id"]
    assert first["route"] == "home.health" and first["status"] == 200
    assert first["client"] == CLIENT and first["method"] == "GET" and first["ms"] >= 0
    assert second["status"] == 404 and second["route"] == "unmatched"
    assert len(second["request_id"]) == 32 and second["request_id"] != "bad id {}"
    assert forged.headers["X-Request-ID"] == second["request_id"]
