"""The ``mapservice`` command line. Each command runs in one transaction and exits non-zero
with a one-line reason on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core import geo, i18n
from mapservice.core.errors import DomainError, ImportRejected, ValidationFailed
from mapservice.core.venue_io import message, read_venues, write_venues
from mapservice.core.vocab import Role
from mapservice.models import Committee, Group, Unit, User, Venue
from mapservice.web.database import new_session


def init_app(app: Flask) -> None:
    for command in (
        db_group,
        seed_group,
        user_group,
        import_group,
        export_group,
        geodata_group,
        committee_group,
        bookings_group,
        map_group,
        serve,
        token_group,
        backup_cmd,
        restore_cmd,
    ):
        app.cli.add_command(command)


def _fail(text: str) -> None:
    raise click.ClickException(text.replace("\n", " "))


@contextmanager
def transaction() -> Iterator[Session]:
    """One session, committed on success, rolled back on any error (domain errors become a
    one-line message and exit status 1)."""
    i18n.set_locale(os.environ.get("MAPSERVICE_LANGUAGE", "zh_CN"))
    session = new_session()
    try:
        yield session
        session.commit()
    except ValidationFailed as exc:
        session.rollback()
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        _fail(f"{exc.message} {details}".strip())
    except ImportRejected as exc:
        session.rollback()
        for line in exc.errors:
            click.echo(line, err=True)
        _fail(i18n._("Nothing was imported: %(n)s problem(s).", n=len(exc.errors)))
    except DomainError as exc:
        session.rollback()
        _fail(exc.message)
    finally:
        session.close()


def get_committee(session: Session, slug: str | None) -> Committee:
    stmt = select(Committee).order_by(Committee.id)
    committee = session.scalars(
        stmt.where(Committee.slug == slug) if slug else stmt.limit(1)
    ).first()
    if committee is None:
        _fail(
            f"no committee {slug!r}"
            if slug
            else "no committee yet: run 'mapservice seed demo' or 'mapservice committee create'"
        )
    assert committee is not None
    return committee


def cli_actor(committee: Committee) -> User:
    """A transient committee admin standing for the person at the console (audited as 'cli')."""
    return User(
        id=None,
        committee_id=committee.id,
        username="cli",
        role=Role.COMMITTEE_ADMIN.value,
        active=True,
    )


committee_option: Callable[[Any], Any] = click.option(
    "--committee", "committee_slug", default=None, help="Committee slug (default: the first one)."
)


@click.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply migrations up to the newest schema.")
def db_upgrade() -> None:
    from mapservice.migrate import upgrade

    url = current_app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    click.echo("database is up to date")


@click.group("seed", help="Demo data.")
def seed_group() -> None:
    pass


@seed_group.command(
    "demo", help="Load the demo committees, units, venues and log-ins (idempotent)."
)
def seed_demo_cmd() -> None:
    from mapservice.operations.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo

    with transaction() as session:
        result = seed_demo(session)
    for name, counts in result.items():
        click.echo(f"{name}: " + ", ".join(f"{k} +{v}" for k, v in counts.items()))
    click.echo(f"demo log-ins (password: {DEMO_PASSWORD}): " + ", ".join(u for u, *_ in DEMO_USERS))


@click.group("user", help="Accounts.")
def user_group() -> None:
    pass


def _password(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("MAPSERVICE_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        _fail("no password: pass --password, set MAPSERVICE_PASSWORD or run interactively")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_group.command("create", help="Create a user with one role.")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--unit", "unit_name", default=None, help="Unit name (unit_secretary).")
@click.option("--group", "group_name", default=None, help="Group name (booker).")
@click.option("--display-name", default="")
@click.option("--phone", default="")
@click.option("--email", default="", help="Where booking notices are e-mailed (optional).")
@click.option("--password", default=None, help="Else MAPSERVICE_PASSWORD or a prompt.")
@committee_option
def user_create(
    username: str,
    role: str,
    unit_name: str | None,
    group_name: str | None,
    display_name: str,
    phone: str,
    email: str,
    password: str | None,
    committee_slug: str | None,
) -> None:
    from mapservice.operations.users import create_user

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        unit = group = None
        if role == Role.UNIT_SECRETARY.value:
            if not unit_name:
                _fail("--unit is required for a unit_secretary")
            unit = session.scalars(
                select(Unit).where(Unit.committee_id == committee.id, Unit.name == unit_name)
            ).one_or_none()
            if unit is None:
                _fail(f"no unit named {unit_name!r} in {committee.slug}")
        if role == Role.BOOKER.value:
            if not group_name:
                _fail("--group is required for a booker")
            group = session.scalars(
                select(Group).where(Group.committee_id == committee.id, Group.name == group_name)
            ).one_or_none()
            if group is None:
                _fail(f"no group named {group_name!r} in {committee.slug}")
        user = create_user(
            session,
            cli_actor(committee),
            committee,
            username=username,
            password=_password(password),
            role=role,
            display_name=display_name,
            phone=phone,
            email=email,
            unit=unit,
            group=group,
        )
        click.echo(f"created {user.username} ({user.role})")


@user_group.command("reset-password", help="Set a new password for a user.")
@click.option("--username", required=True)
@click.option("--password", default=None, help="Else MAPSERVICE_PASSWORD or a prompt.")
def user_reset(username: str, password: str | None) -> None:
    from mapservice.operations.users import reset_password

    with transaction() as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            _fail(f"no user {username!r}")
        assert user is not None
        reset_password(session, None, user, _password(password))
        click.echo(f"password of {username} changed")


@click.group("import", help="Bulk import.")
def import_group() -> None:
    pass


@import_group.command("venues", help="Import venues from CSV, XLSX or GeoJSON (all or nothing).")
@click.argument("file", type=click.Path(dir_okay=False))
@committee_option
def import_venues_cmd(file: str, committee_slug: str | None) -> None:
    from mapservice.operations.venues import import_venues

    path = Path(file)
    if not path.is_file():
        _fail(f"no such file: {file}")
    i18n.set_locale(os.environ.get("MAPSERVICE_LANGUAGE", "zh_CN"))
    rows, errors = read_venues(path.read_bytes(), path.name)
    problems = [message(err, i18n.lang()) for err in errors]
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        try:
            report = import_venues(session, cli_actor(committee), committee, rows)
        except ImportRejected as exc:
            problems += exc.errors
        if problems:
            # Report the file's unreadable rows and the rows the database refuses together.
            session.rollback()
            for line in problems:
                click.echo(line, err=True)
            _fail(f"nothing was imported: {len(problems)} problem(s) in {path.name}")
    click.echo(f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}")


@click.group("export", help="Export data.")
def export_group() -> None:
    pass


@export_group.command("venues", help="Export venues to CSV, XLSX or GeoJSON.")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx", "geojson"]))
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@click.option("--include-retired", is_flag=True)
@committee_option
def export_venues_cmd(
    fmt: str, output: str, include_retired: bool, committee_slug: str | None
) -> None:
    from mapservice.operations.venues import row_of

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        stmt = (
            select(Venue)
            .join(Unit, Venue.unit_id == Unit.id)
            .where(Venue.committee_id == committee.id)
        )
        if not include_retired:
            stmt = stmt.where(Venue.retired.is_(False))
        venues = session.scalars(stmt.order_by(Unit.name, Venue.name)).all()
        rows = [row_of(v, "wgs84" if fmt == "geojson" else None) for v in venues]
    try:
        Path(output).write_bytes(write_venues(rows, fmt))
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
    click.echo(f"wrote {len(rows)} venues to {output}")


@click.group("geodata", help="District and street boundaries.")
def geodata_group() -> None:
    pass


@geodata_group.command(
    "import", help="Load district or street polygons from any file GeoPandas reads."
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--level", required=True, type=click.Choice(["district", "street"]))
@click.option("--name", "only_name", default=None, help="Only the feature with this name.")
@committee_option
def geodata_import(
    file: str, level: str, only_name: str | None, committee_slug: str | None
) -> None:
    from mapservice.operations.areas import load_areas

    if not Path(file).is_file():
        _fail(f"no such file: {file}")
    try:
        areas = geo.read_areas(file, level=level)
    except geo.GeoDataError as exc:
        _fail(str(exc))
    if only_name:
        areas = [a for a in areas if a.name == only_name]
        if not areas:
            _fail(f"no feature named {only_name!r} in {file}")
    if level == "district" and len(areas) != 1:
        _fail(f"a committee has one district; {file} has {len(areas)} (use --name)")
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        n = load_areas(session, cli_actor(committee), committee, areas, level)
    click.echo(f"loaded {n} {level} area(s) for {committee.slug}")


@click.group("committee", help="Committees hosted by this deployment.")
def committee_group() -> None:
    pass


@committee_group.command("create", help="Create a committee with its district boundary.")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--district", "district_file", required=True, type=click.Path(dir_okay=False))
@click.option("--district-name", default=None, help="Feature name when the file holds several.")
@click.option("--timezone", default=None)
def committee_create(
    slug: str, name: str, district_file: str, district_name: str | None, timezone: str | None
) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from mapservice.operations.areas import load_areas

    tz = timezone or current_app.config["TIMEZONE"]
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(f"unknown time zone {tz!r}")
    try:
        areas = geo.read_areas(district_file, level="district")
    except (geo.GeoDataError, OSError) as exc:
        _fail(str(exc))
    if district_name:
        areas = [a for a in areas if a.name == district_name]
    if len(areas) != 1:
        _fail(f"expected one district, found {len(areas)} (use --district-name)")
    with transaction() as session:
        if session.scalar(select(Committee.id).where(Committee.slug == slug)):
            _fail(f"committee {slug!r} exists")
        committee = Committee(slug=slug, name=name, timezone=tz)
        session.add(committee)
        session.flush()
        load_areas(session, None, committee, areas, "district")
    click.echo(f"created committee {slug}")


@click.group("bookings", help="Bookings.")
def bookings_group() -> None:
    pass


@bookings_group.command(
    "expire", help="Expire pending requests whose hold ran out (also happens on access)."
)
def bookings_expire() -> None:
    from mapservice.booking.engine import expire_holds

    with transaction() as session:
        n = expire_holds(session)
    click.echo(f"expired {n} pending request(s)")


@click.group("map", help="The printed one map.")
def map_group() -> None:
    pass


@map_group.command("print", help="Print the one map: numbered venues, legend and index.")
@click.option("--paper", type=click.Choice(["A3", "A4"]), default="A3", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["pdf", "png"]), default="pdf", show_default=True
)
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@committee_option
def map_print(paper: str, fmt: str, output: str, committee_slug: str | None) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from mapservice.stats.fonts import FontMissing
    from mapservice.stats.frames import load_areas, load_map_venues
    from mapservice.stats.printmap import print_map

    with transaction() as session:
        committee = get_committee(session, committee_slug)
        venues = load_map_venues(session, committee.id)
        district, streets = load_areas(session, committee.id)
        try:
            data = print_map(
                venues,
                district,
                streets,
                title=f"{committee.name} 功能阵地分布图",
                paper=paper,
                fmt=fmt,
                on=datetime.now(ZoneInfo(committee.timezone)).date(),
            )
        except FontMissing as exc:
            _fail(str(exc))
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
    click.echo(f"wrote the {paper} one map of {committee.slug} ({len(venues)} venues) to {output}")


@map_group.command("export", help="The one map as one HTML file that opens offline.")
@click.option("--format", "fmt", type=click.Choice(["html"]), default="html", show_default=True)
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@committee_option
@click.option("--q", default="", help="Search: name, unit, address or facility.")
@click.option("--type", "types", multiple=True, help="Venue type key (repeatable).")
@click.option("--unit", "units", multiple=True, help="Member unit id (repeatable).")
@click.option("--street", "streets", multiple=True, help="Street id (repeatable).")
@click.option("--min-units", default="", help="At least this many capacity units.")
@click.option("--min-headcount", default="", help="At least this many people.")
@click.option("--near", default="", help="LON,LAT (WGS-84).")
@click.option("--radius-km", default="", help="Within this many km of --near.")
@click.option("--free-from", default="", help="Free from (YYYY-MM-DDTHH:MM, local time).")
@click.option("--free-to", default="", help="Free until (YYYY-MM-DDTHH:MM, local time).")
def map_export(
    fmt: str,
    output: str,
    committee_slug: str | None,
    q: str,
    types: tuple[str, ...],
    units: tuple[str, ...],
    streets: tuple[str, ...],
    min_units: str,
    min_headcount: str,
    near: str,
    radius_km: str,
    free_from: str,
    free_to: str,
) -> None:
    """Same filters as /map; the public venues only (what a visitor sees)."""
    from zoneinfo import ZoneInfo

    from mapservice.core.mapfilter import parse_filter
    from mapservice.operations.map_export import export_html, write_file
    from mapservice.operations.mapview import filter_choices

    args = {
        "q": [q],
        "types": list(types),
        "unit": list(units),
        "street": list(streets),
        "min_units": [min_units],
        "min_headcount": [min_headcount],
        "near": [near],
        "radius_km": [radius_km],
        "free_from": [free_from],
        "free_to": [free_to],
    }
    with transaction() as session:
        committee = get_committee(session, committee_slug)
        flt, errors = parse_filter(
            {k: [v for v in vs if v] for k, vs in args.items()}, ZoneInfo(committee.timezone)
        )
        known_units, known_streets = filter_choices(session, None, committee)
        unit_ids = {u for u, _name in known_units}
        street_ids = {s for s, _name, _approx in known_streets}
        for field, asked, known in (
            ("unit", flt.unit_ids, unit_ids),
            ("street", flt.street_ids, street_ids),
        ):
            unknown = sorted(asked - known)
            if unknown and field not in errors:
                errors[field] = i18n._("'%(value)s' is not a valid choice.", value=unknown[0])
        if errors:
            raise ValidationFailed(i18n._("Some filters are not valid."), errors)
        exported = export_html(session, committee, flt)
        slug = committee.slug
    try:
        write_file(Path(output), exported.html)
    except OSError as exc:
        _fail(i18n._("Cannot write %(path)s: %(reason)s", path=output, reason=exc.strerror or exc))
    click.echo(f"wrote the one map of {slug} ({exported.venues} venues, {fmt}) to {output}")


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


@click.group("token", help="Personal access tokens for the JSON API.")
def token_group() -> None:
    pass


@token_group.command("create", help="Create a token; it is printed once and stored hashed.")
@click.option("--user", "username", required=True)
@click.option("--scopes", default="read", help="Comma-separated: read,book,manage.")
@click.option("--name", default="cli")
def token_create(username: str, scopes: str, name: str) -> None:
    from mapservice.operations.tokens import create_token, parse_scopes

    with transaction() as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            _fail(f"no user {username!r}")
        assert user is not None
        _token, secret = create_token(session, None, user, parse_scopes(scopes), name)
    click.echo(secret)


@token_group.command("revoke", help="Revoke every token of a user whose secret starts with PREFIX.")
@click.option("--user", "username", required=True)
@click.option("--prefix", required=True)
def token_revoke(username: str, prefix: str) -> None:
    from mapservice.db import utcnow
    from mapservice.models import ApiToken

    with transaction() as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            _fail(f"no user {username!r}")
        assert user is not None
        rows = session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ).all()
        hits = [t for t in rows if t.prefix.startswith(prefix[:10]) or prefix.startswith(t.prefix)]
        if not hits:
            _fail(f"no active token of {username} starting with {prefix!r}")
        for t in hits:
            t.revoked_at = utcnow()
    click.echo(f"revoked {len(hits)} token(s)")


@click.command("backup", help="Write a consistent backup of the database to FILE.")
@click.option("--output", required=True, type=click.Path(dir_okay=False))
def backup_cmd(output: str) -> None:
    from mapservice.maintenance import backup

    try:
        backup(current_app.config["DATABASE_URL"], Path(output))
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        _fail(f"backup failed: {exc}")
    click.echo(f"backup written to {output}")


@click.command(
    "restore",
    help="Replace the database's contents with the backup in FILE (stop the service first).",
)
@click.argument("file", type=click.Path(dir_okay=False))
def restore_cmd(file: str) -> None:
    from mapservice.maintenance import restore
    from mapservice.migrate import upgrade

    url = current_app.config["DATABASE_URL"]
    try:
        restore(url, Path(file))
    except (OSError, ValueError) as exc:
        _fail(f"restore failed: {exc}")
    current_app.extensions["db_engine"].dispose()
    # A backup taken before a later release's migrations comes back up to date (on SQLite,
    # e.g., instants stored as text before 0008 become integers).
    upgrade(url)
    click.echo(f"restored from {file}; the schema is up to date")
