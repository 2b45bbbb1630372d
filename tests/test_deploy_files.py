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
    assert not any(d.startswith("keepalive ") for d in directives)
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in directives
