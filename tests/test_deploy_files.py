"""Issue 21 item 5: deploy/ says what the app reads — every ``MAPSERVICE_*`` setting of
mapservice/config.py is in the environment file template, and the systemd units start what
the docs say."""

from __future__ import annotations

import re

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def test_the_environment_file_names_every_setting() -> None:
    config = (ROOT / "mapservice" / "config.py").read_text()
    read = set(re.findall(r'environ\.get\(\s*"((?:MAPSERVICE_|DATABASE_URL)[A-Z_]*)"', config))
    assert "MAPSERVICE_TRUSTED_PROXIES" in read and "DATABASE_URL" in read
    template = (DEPLOY / "mapservice.env").read_text()
    named = set(re.findall(r"^#?((?:MAPSERVICE_|DATABASE_URL)[A-Z_]*)=", template, re.M))
    assert read - named == set(), "settings missing from deploy/mapservice.env"
    assert named - read <= {"MAPSERVICE_REDIS_URL"}, "settings the app does not read"


def test_the_units_run_the_instances_and_the_worker() -> None:
    web = (DEPLOY / "systemd" / "mapservice-web@.service").read_text()
    assert "--port %i --workers 2" in web
    assert "EnvironmentFile=/etc/mapservice/mapservice.env" in web
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/mapservice-web-%i" in web
    assert "RuntimeDirectory=mapservice-web-%i" in web  # emptied at every start
    worker = (DEPLOY / "systemd" / "mapservice-worker.service").read_text()
    assert "mapservice worker" in worker
    for unit in (web, worker):
        assert "StartLimitBurst=" in unit and "Restart=on-failure" in unit
        assert "User=mapservice" in unit


def test_nginx_never_resends_a_post() -> None:
    site = (DEPLOY / "nginx" / "mapservice.conf").read_text()
    directives = [ln.strip() for ln in site.splitlines() if not ln.strip().startswith("#")]
    retry = [d for d in directives if d.startswith("proxy_next_upstream ")]
    assert retry == ["proxy_next_upstream error timeout;"]  # no non_idempotent
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in directives


def test_nginx_keeps_connections_and_closes_idle_ones_before_gunicorn() -> None:
    """Kept-alive connections to the instances (no connection per request), and nginx closes
    an idle one before gunicorn does: a POST is never sent on a connection the instance is
    closing for idleness (nginx does not resend it: a 502 for a booking nobody refused)."""
    from mapservice.web.serving import KEEPALIVE_SECONDS

    site = (DEPLOY / "nginx" / "mapservice.conf").read_text()
    directives = [ln.strip() for ln in site.splitlines() if not ln.strip().startswith("#")]
    upstream = site[site.index("upstream mapservice_app") :]
    upstream = upstream[: upstream.index("}")]
    assert re.search(r"^\s*keepalive \d+;", upstream, re.M)
    found = re.search(r"^\s*keepalive_timeout (\d+)s;", upstream, re.M)
    assert found is not None, "the upstream's idle timeout must be set (nginx's default is 60 s)"
    assert int(found.group(1)) < KEEPALIVE_SECONDS
    # HTTP/1.1 to the instances without the client's Connection header: else nginx sends
    # "Connection: close" and nothing is kept.
    assert "proxy_http_version 1.1;" in directives
    assert 'proxy_set_header Connection "";' in directives
