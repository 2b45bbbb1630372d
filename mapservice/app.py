"""Application factory: configuration, database, extensions, blueprints and error handlers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from mapservice.config import ROOT, load_config


class IdConverter(IntegerConverter):
    """``<int:…>`` bounded to the ids a database column holds (1 … 2**31 - 1)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 0)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = load_config(config)
    app = Flask(
        "mapservice",
        template_folder=str(ROOT / "templates"),
        static_folder=str(Path(__file__).parent / "static"),
        instance_path=str(Path(settings["INSTANCE_PATH"]).resolve()),
    )
    app.config.update(settings)
    from mapservice.core import faults

    if faults.on(faults.NO_ESCAPE):  # test-only negative control: never set by a setting
        app.jinja_env.autoescape = False
    # Every ``<int:…>`` in a route is a database id: one past the 32-bit integer columns is a
    # 404 here, not an overflow in the database (a 500).
    app.url_map.converters["int"] = IdConverter
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        # Behind N proxies: the client's address, scheme and host come from the last N
        # X-Forwarded-* entries (what the proxies appended); anything a client forged before
        # them is ignored, and a shorter chain than N leaves the request as it arrived (said
        # once in the log: mapservice.web.proxies).
        from mapservice.web.proxies import BehindProxies

        app.wsgi_app = BehindProxies(app.wsgi_app, proxies)  # type: ignore[method-assign]

    from mapservice.web import database, errors, extensions

    database.init_app(app)
    extensions.init_app(app)
    errors.init_app(app)

    from mapservice.web import ops, requestlog, security, tiles

    security.init_app(app)
    tiles.init_app(app)
    ops.init_app(app)
    requestlog.init_app(app)

    from mapservice.web import auth, home, imports, mapview, units, vendor, venues

    for module in (home, auth, venues, units, imports, vendor, mapview):
        app.register_blueprint(module.bp)
    from mapservice.web import dashboard

    app.register_blueprint(dashboard.bp)

    from mapservice.web import bookings

    bookings.init_app(app)

    from mapservice.web import account, audit
    from mapservice.web import settings as settings_page

    for page in (account, audit, settings_page):
        app.register_blueprint(page.bp)

    from mapservice.web import applications, groups, users

    for blueprint in (groups.bp, users.bp, users.links, applications.bp):
        app.register_blueprint(blueprint)

    from mapservice.web import plans

    app.register_blueprint(plans.bp)

    from mapservice.web import activities

    app.register_blueprint(activities.bp)

    from mapservice.web import activity_stats

    app.register_blueprint(activity_stats.bp)

    import mapservice.api as api

    api.init_app(app)

    from mapservice.cli import applications as cli_applications
    from mapservice.cli import audit as cli_audit
    from mapservice.cli import bookings as cli_bookings
    from mapservice.cli import database as cli_database
    from mapservice.cli import geodata as cli_geodata
    from mapservice.cli import groups as cli_groups
    from mapservice.cli import maps as cli_maps
    from mapservice.cli import seed as cli_seed
    from mapservice.cli import serve as cli_serve
    from mapservice.cli import stats as cli_stats
    from mapservice.cli import tokens as cli_tokens
    from mapservice.cli import users as cli_users
    from mapservice.cli import venues as cli_venues
    from mapservice.cli import worker as cli_worker

    # Each subsystem registers its own commands (the console script is mapservice.cli:main).
    for commands in (
        cli_database,
        cli_seed,
        cli_users,
        cli_groups,
        cli_venues,
        cli_geodata,
        cli_bookings,
        cli_maps,
        cli_serve,
        cli_tokens,
        cli_audit,
        cli_applications,
        cli_worker,
        cli_stats,
    ):
        commands.init_app(app)
    return app
