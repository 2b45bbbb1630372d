"""Shared fixtures: a real database (SQLite, or a PostgreSQL cluster the harness starts
itself, chosen with ``--db`` or ``MAPSERVICE_TEST_DB``), migrated once per run and emptied
after every test, the app, a client, and factories with sensible defaults."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flask
import jinja2
import jinja2.bccache
import pytest
import werkzeug.routing.rules
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking import heldmirror
from mapservice.core import geo
from mapservice.core.venue_io import VenueRow
from mapservice.db import Base, make_engine
from mapservice.migrate import upgrade
from mapservice.models import Committee, Group, Unit, UnitApplication, User, Venue
from mapservice.operations.areas import load_areas
from mapservice.operations.users import create_user
from mapservice.operations.venues import save_venue

ROOT = Path(__file__).resolve().parent.parent
GEODATA = ROOT / "geodata"
PASSWORD = "correct-horse-battery"

# Real argon2, with cheap parameters: the suite creates hundreds of users.
from argon2 import PasswordHasher  # noqa: E402

from mapservice.operations import users as _users  # noqa: E402

_users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# The suite builds a fresh app for almost every test (about 0.1 s each: werkzeug compiles each
# of ~130 routes' URL builders) and each app compiles afresh every template it renders. Both
# are the same for every app, so the harness shares them across apps (3,000 tests: minutes).
# What a test sees is unchanged: the same code, built once.
class _SharedBytecode(jinja2.BytecodeCache):
    """Compiled templates kept in memory for every app of the run; a template compiled with
    autoescaping off (the NO_ESCAPE negative control) is kept apart from the others."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> jinja2.bccache.Bucket:
        key = self.get_cache_key(name, filename) + ("/raw" if not environment.autoescape else "")
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _SharedBytecode()
_jinja_environment = flask.Flask.create_jinja_environment


def _shared_jinja_environment(self: flask.Flask) -> Any:
    env = _jinja_environment(self)
    env.bytecode_cache = _BYTECODE
    return env


flask.Flask.create_jinja_environment = _shared_jinja_environment  # type: ignore[method-assign]

_builders: dict[Any, Any] = {}
_compile_builder = werkzeug.routing.rules.Rule._compile_builder


def _shared_builder(self: werkzeug.routing.rules.Rule, append_unknown: bool = True) -> Any:
    """A route's URL builder depends only on its parsed parts, its defaults and the types of
    its converters: built once per distinct route for the whole run."""
    try:
        key = (
            tuple(self._trace),
            repr(sorted((self.defaults or {}).items())),
            tuple(sorted((k, type(v).__qualname__) for k, v in self._converters.items())),
            append_unknown,
        )
        hash(key)
    except TypeError:
        return _compile_builder(self, append_unknown)
    if key not in _builders:
        _builders[key] = _compile_builder(self, append_unknown)
    return _builders[key]


werkzeug.routing.rules.Rule._compile_builder = _shared_builder  # type: ignore[method-assign]
# A point inside Runzhou district (和平路 area), WGS-84.
RUNZHOU_POINT = (119.4253, 32.1975)


def pytest_sessionstart(session: pytest.Session) -> None:
    # The app compiles its catalogs when it is built; core tests that translate messages
    # without building an app (run alone, in a fresh checkout) need them compiled too.
    from mapservice.core import i18n

    i18n.compile_catalogs()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("MAPSERVICE_TEST_DB", "sqlite"),
        choices=["sqlite", "postgresql"],
        help="database to run the suite on",
    )
    parser.addoption(
        "--soak-seconds",
        default=15.0,
        type=float,
        help="how long tests/test_soak.py keeps its 32 clients busy (make soak: 300)",
    )
    parser.addoption(
        "--stateful-examples",
        default=30,
        type=int,
        help="sequences tests/test_booking_stateful.py runs against its oracle (make stress: 200)",
    )
    parser.addoption(
        "--stress-attempts",
        default=0,
        type=int,
        help="booking attempts of tests/test_stress.py, written to docs/reliability.md"
        " (make stress: 20000; 0: a few hundred, nothing written)",
    )


#: A Chromium journey marked ``@pytest.mark.sqlite_only`` runs in the SQLite run only. What it
#: checks is what a person sees and does in the browser (layout on a phone, a form filled in,
#: a popup, a printed page), over server code whose every query the PostgreSQL run exercises
#: without a browser (the web, API and engine tests). Driving Chromium again against the other
#: database cost ~7 minutes of the PostgreSQL run and could find nothing the SQLite run and the
#: PostgreSQL non-browser tests do not. Journeys that exercise booking conflicts, locking,
#: closures over bookings or time-dependent availability stay on both (one size each, where
#: desktop and phone differ only in layout). Only tests marked ``browser`` may carry it (checked
#: below); ``MAPSERVICE_TEST_ALL=1`` runs them on PostgreSQL anyway.
SQLITE_ONLY = "sqlite_only"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SQLITE_ONLY}: a Chromium journey with no database-specific behaviour: SQLite run"
        " only (see tests/conftest.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that touch a database: a test that asks for no
    database fixture (``database_url``, which every database fixture builds on, or
    ``db_kind``) cannot tell the two runs apart, so the SQLite run has already run it — the
    parsers, geometry, layers, the printed map's layout. Chromium journeys marked
    ``sqlite_only`` (see :data:`SQLITE_ONLY`) are left out there too. ``MAPSERVICE_TEST_ALL=1``
    runs them again anyway."""
    misplaced = [
        item.nodeid
        for item in items
        if item.get_closest_marker(SQLITE_ONLY) and not item.get_closest_marker("browser")
    ]
    if misplaced:
        raise pytest.UsageError(
            f"@pytest.mark.{SQLITE_ONLY} is for Chromium journeys (marked browser) only: "
            + ", ".join(misplaced)
        )
    if config.getoption("--db") != "postgresql" or os.environ.get("MAPSERVICE_TEST_ALL"):
        return
    keep, once = [], []
    for item in items:
        uses = getattr(item, "fixturenames", ())
        on_both = "database_url" in uses or "db_kind" in uses
        on_both = on_both and not item.get_closest_marker(SQLITE_ONLY)
        (keep if on_both else once).append(item)
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = keep


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def pg_cluster(db_kind: str) -> Iterator[Any]:
    if db_kind != "postgresql":
        yield None
        return
    from tests.pgcluster import PgCluster

    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A running ``tests.redisserver.RedisServer`` (``.url``, ``.port``, ``.stop()`` kills it,
    ``.start()`` brings it back empty on the same port), for the whole run; a test that stops
    it starts it again before it ends. Skipped when ``redis-server`` is not installed."""
    from tests.redisserver import RedisServer, find_redis_server

    if find_redis_server() is None:
        pytest.skip(
            "redis-server is not installed: `make system-deps` (part of make test) installs it"
        )
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def database_url(db_kind: str, pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    if db_kind == "postgresql":
        url = os.environ.get("MAPSERVICE_TEST_PG_URL") or pg_cluster.create_database(
            "mapservice_test"
        )
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def empty_database(engine: Engine) -> None:
    """Every table emptied and (on PostgreSQL) every sequence back at 1, as a fresh database.

    On PostgreSQL only the tables that hold rows are emptied, with triggers and foreign-key
    checks off for that transaction (``session_replication_role``): a TRUNCATE of all ~45
    tables cost 0.25 s after every test, most of which touch a handful of tables."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            probe = " UNION ALL ".join(
                f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables
            )
            full = [row[0] for row in conn.execute(text(probe))]
            if full:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for name in full:
                    conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(
                text(
                    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false)"
                    " FROM pg_sequences WHERE last_value IS NOT NULL"
                )
            )
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    # Emptied with PostgreSQL's triggers off, and the change numbers gone on SQLite: what this
    # process mirrors of the allocations is read again (mapservice.booking.heldmirror).
    heldmirror.forget(engine)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on the test database; everything is deleted after the test."""
    with wiped_session(engine) as session:
        yield session


@pytest.fixture
def app(db: Session, database_url: str, tmp_path: Path) -> Iterator[Any]:
    from mapservice import create_app

    application = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "INSTANCE_PATH": tmp_path,
            "WTF_CSRF_ENABLED": False,
        }
    )
    yield application
    application.extensions["db_engine"].dispose()


@contextmanager
def wiped_session(engine: Engine) -> Iterator[Session]:
    """A session on the test database; everything is deleted after it."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        empty_database(engine)


def module_world(build_world: Any, build_clients: Any, *, csrf: bool) -> tuple[Any, Any]:
    """The ``world`` and ``web`` fixtures of a module whose world is built once:
    ``build_world(session, engine, areas)``, ``build_clients(app, world)`` (an app with CSRF
    on or off). Assign them to ``world, web`` in the module."""

    @pytest.fixture(scope="module")
    def world(engine: Engine, runzhou_areas: Any) -> Iterator[Any]:
        with wiped_session(engine) as session:
            yield build_world(session, engine, runzhou_areas)

    @pytest.fixture(scope="module")
    def web(
        world: Any, database_url: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Any]:
        from mapservice import create_app

        app = create_app(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "module-secret",
                "TESTING": True,
                "INSTANCE_PATH": tmp_path_factory.mktemp("module"),
                "WTF_CSRF_ENABLED": csrf,
            }
        )
        try:
            yield build_clients(app, world)
        finally:
            app.extensions["db_engine"].dispose()

    return world, web


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password})


@pytest.fixture(scope="session")
def runzhou_areas() -> tuple[list[geo.Area], list[geo.Area]]:
    districts = geo.read_areas(GEODATA / "runzhou" / "district.geojson", level="district")
    streets = geo.read_areas(GEODATA / "runzhou" / "streets.geojson", level="street")
    return districts, streets


class Factory:
    """Builds valid objects with defaults; every keyword can be overridden. Commits, so the
    app (its own connections) sees them."""

    def __init__(self, session: Session, areas: tuple[list[geo.Area], list[geo.Area]]) -> None:
        self.session = session
        self.areas = areas
        self.seq = itertools.count(1)

    def committee(self, slug: str = "runzhou", with_streets: bool = True, **kw: Any) -> Committee:
        committee = Committee(
            slug=slug,
            name=kw.pop("name", f"{slug} 青工委"),
            timezone=kw.pop("timezone", "Asia/Shanghai"),
            **kw,
        )
        self.session.add(committee)
        self.session.flush()
        load_areas(self.session, None, committee, self.areas[0], "district")
        if with_streets:
            load_areas(self.session, None, committee, self.areas[1], "street")
        self.session.commit()
        return committee

    def unit(
        self, committee: Committee, name: str | None = None, status: str = "active", **kw: Any
    ) -> Unit:
        unit = Unit(
            committee_id=committee.id,
            name=name or f"单位{next(self.seq)}",
            status=status,
            kind=kw.pop("kind", "soe"),
            **kw,
        )
        self.session.add(unit)
        self.session.commit()
        return unit

    def group(
        self, committee: Committee, unit: Unit | None = None, name: str | None = None
    ) -> Group:
        group = Group(
            committee_id=committee.id,
            unit_id=unit.id if unit else None,
            name=name or f"团支部{next(self.seq)}",
        )
        self.session.add(group)
        self.session.commit()
        return group

    def user(
        self,
        committee: Committee,
        role: str = "committee_admin",
        username: str | None = None,
        **kw: Any,
    ) -> User:
        user = create_user(
            self.session,
            None,
            committee,
            username=username or f"user{next(self.seq)}",
            password=kw.pop("password", PASSWORD),
            role=role,
            **kw,
        )
        self.session.commit()
        return user

    def admin(self, committee: Committee, **kw: Any) -> User:
        return self.user(committee, "committee_admin", **kw)

    def secretary(self, unit: Unit, **kw: Any) -> User:
        return self.user(unit.committee, "unit_secretary", unit=unit, **kw)

    def booker(self, group: Group, **kw: Any) -> User:
        committee = self.session.get(Committee, group.committee_id)
        assert committee is not None
        return self.user(committee, "booker", group=group, **kw)

    def row(self, unit: Unit, **kw: Any) -> VenueRow:
        defaults: dict[str, Any] = {
            "name": f"场地{next(self.seq)}",
            "unit": unit.name,
            "type": "badminton",
            "lon": RUNZHOU_POINT[0],
            "lat": RUNZHOU_POINT[1],
            "hours": "Mon-Sun 08:00-22:00",
        }
        defaults.update(kw)
        return VenueRow(**defaults)

    def venue(self, unit: Unit, actor: User | None = None, **kw: Any) -> Venue:
        """A venue saved through ``save_venue``. ``hours=""`` on a published venue (which
        ``save_venue`` refuses: nobody could book it) gives one as saved before that rule:
        registered with hours, which are then removed."""
        if kw.get("hours") == "" and kw.get("published", True):
            venue = self.venue(unit, actor, **{**kw, "hours": "Mon 09:00-10:00"})
            venue.hours = []
            self.session.commit()
            return venue
        committee = unit.committee
        actor = actor or User(
            id=None,
            committee_id=committee.id,
            username="factory",
            role="committee_admin",
            active=True,
        )
        venue = save_venue(self.session, actor, committee, self.row(unit, **kw))
        self.session.commit()
        return venue


@pytest.fixture
def make(db: Session, runzhou_areas: tuple[list[geo.Area], list[geo.Area]]) -> Factory:
    return Factory(db, runzhou_areas)


def pending_application(session: Session, committee_id: int, name: str) -> UnitApplication:
    """A pending application to join the committee, its unit applied (committed)."""
    unit = Unit(committee_id=committee_id, name=name, status="applied")
    session.add(unit)
    session.flush()
    application = UnitApplication(
        committee_id=committee_id,
        unit_id=unit.id,
        name=unit.name,
        kind="soe",
        address="南山路 1 号",
        lon=119.4253,
        lat=32.1975,
        contact_name="联系人",
        phone="0511-8888 0000",
        client_address="192.0.2.1",
    )
    session.add(application)
    session.commit()
    return application


def reload(session: Session) -> None:
    """Forget what ``session`` has loaded and end its read transaction, so the next read sees
    what other connections (the app's requests) committed since."""
    session.rollback()
    session.expire_all()


@pytest.fixture
def wdb(engine: Engine, db: Session) -> Iterator[Session]:
    """A writer session (SQLite: BEGIN IMMEDIATE) for the booking engine. Commit or roll back
    promptly: while its transaction is open it holds SQLite's write lock."""
    from mapservice.db import writer

    session = Session(writer(engine), expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


class Snapshot:
    """Every row of the test database, taken once and put back exactly in a later test (whose
    database is empty), for tests that only need a world that an expensive, already tested
    step built (the demo seed: ~30 s). Exact copies, below any mapping: SQLite's own backup
    of the whole file; on PostgreSQL each table COPYed out and in with triggers and
    foreign-key checks off (``session_replication_role``: the rows are already what the
    triggers made them) and every sequence set back where it was."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        raw = engine.raw_connection()
        try:
            if self.dialect == "sqlite":
                import sqlite3

                self.copy: Any = sqlite3.connect(":memory:")
                raw.driver_connection.backup(self.copy)  # type: ignore[union-attr]
            else:
                with raw.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                    self.tables: dict[str, bytes] = {}
                    for table in Base.metadata.sorted_tables:
                        with cur.copy(f"COPY {table.name} TO STDOUT (FORMAT binary)") as out:
                            self.tables[table.name] = b"".join(bytes(b) for b in out)
                    cur.execute(
                        "SELECT format('%I.%I', schemaname, sequencename), last_value"
                        " FROM pg_sequences"
                    )
                    self.sequences = cur.fetchall()
                raw.driver_connection.rollback()  # type: ignore[union-attr]
        finally:
            raw.close()

    def restore(self, engine: Engine) -> None:
        raw = engine.raw_connection()
        try:
            if self.dialect == "sqlite":
                self.copy.backup(raw.driver_connection)
                return
            conn = raw.driver_connection
            with conn.cursor() as cur:  # type: ignore[union-attr]
                cur.execute("SET LOCAL session_replication_role = replica")
                for name, data in self.tables.items():
                    if data:
                        with cur.copy(f"COPY {name} FROM STDIN (FORMAT binary)") as into:
                            into.write(data)
                for sequence, last in self.sequences:
                    if last is None:
                        cur.execute("SELECT setval(%s::regclass, 1, false)", (sequence,))
                    else:
                        cur.execute("SELECT setval(%s::regclass, %s, true)", (sequence, last))
            conn.commit()  # type: ignore[union-attr]
        finally:
            raw.close()
