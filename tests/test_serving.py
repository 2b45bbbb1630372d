"""The server plumbing around requests: connections go back to the pool as they were taken;
the rate limiter's storage does not start a thread per request. (Serving with several worker
processes is exercised by tests/test_crash.py and tests/test_soak.py.)"""

from __future__ import annotations

import os
import sys
import time

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

import mapservice.db
from mapservice.api.ratelimit import SWEEP_EVERY, SweepingMemoryStorage
from mapservice.db import make_engine
from mapservice.models import ApiToken, Committee
from mapservice.operations.tokens import create_token
from tests.conftest import reload


@pytest.fixture
def api_token_headers(make, db):
    committee = make.committee(with_streets=False)
    booker = make.booker(
        make.group(committee, make.unit(committee, "移动公司"), "移动团支部"), username="booker"
    )
    _token, secret = create_token(db, None, booker, ["read"])
    db.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_noting_a_tokens_use_leaves_every_pooled_connection_patient(app, client, db, make, db_kind):
    """Noting a token's last use waits at most 100 ms for SQLite's write lock; that short busy
    timeout must not stay behind on a pooled connection, or a later booking's BEGIN IMMEDIATE
    on it fails with "database is locked" after 100 ms instead of waiting its turn (seen as
    500s under load before this was fixed)."""
    if db_kind != "sqlite":
        pytest.skip("SQLite's busy timeout")
    committee = make.committee(with_streets=False)
    unit = make.unit(committee, "移动公司")
    booker = make.booker(make.group(committee, unit, "移动团支部"), username="booker")
    token, secret = create_token(db, None, booker, ["read"])
    db.commit()
    engine = app.extensions["db_engine"]
    warm = [engine.connect() for _ in range(3)]  # a pool of several connections, as under load
    for conn in warm:
        conn.close()
    resp = client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200
    reload(db)
    assert db.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id)) is not None
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:
        timeouts = [c.exec_driver_sql("PRAGMA busy_timeout").scalar() for c in pooled]
    finally:
        for conn in pooled:
            conn.close()
    assert len(timeouts) >= 3
    assert set(timeouts) == {30000}, timeouts


def test_rate_limit_storage_starts_no_thread_per_request(database_url, tmp_path, api_token_headers):
    """limits' memory storage starts a sweeper thread 10 ms after every hit; ours sweeps at
    most once a second. 300 requests over more than 10 ms each would have started dozens.
    (Per-process counting, ``mapservice-memory://``: the chain's last resort.)"""
    from mapservice import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "INSTANCE_PATH": tmp_path,
            "RATELIMIT_STORAGE_URI": "mapservice-memory://",
        }
    )
    client = app.test_client()
    storage = app.extensions["api_limiter"].storage
    assert type(storage).__name__ == "SweepingMemoryStorage"
    timers = set()
    t0 = time.monotonic()
    for _ in range(300):
        assert client.get("/api/v1/venues", headers=api_token_headers).status_code == 200
        timers.add(id(storage.timer))
        time.sleep(0.001)
    elapsed = time.monotonic() - t0
    app.extensions["db_engine"].dispose()
    assert len(timers) <= elapsed / SWEEP_EVERY + 2, (len(timers), elapsed)


def test_rate_limit_still_counts_and_expires(app):
    """Expiry does not wait for the sweep: a counter past its window reads as zero."""
    storage = SweepingMemoryStorage()
    assert storage.incr("k", expiry=0.05) == 1
    assert storage.incr("k", expiry=0.05) == 2
    assert storage.get("k") == 2
    time.sleep(0.06)
    assert storage.get("k") == 0
    assert storage.incr("k", expiry=0.05) == 1


def _backend_pid(eng) -> int:
    with eng.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    other = make_engine(database_url, poolclass=NullPool)
    with other.begin() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
    other.dispose()


def test_an_idle_pooled_connection_whose_server_went_away_is_replaced(
    database_url, db_kind, monkeypatch
):
    """No ping per checkout on PostgreSQL (a round trip per request), but a connection idle
    past PING_AFTER_IDLE_S is pinged and replaced when its backend is gone: no error."""
    if db_kind != "postgresql":
        pytest.skip("SQLite connections are files, not servers")
    eng = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(eng)
        assert _backend_pid(eng) == first  # in steady use: the same connection
        _terminate(database_url, first)
        monkeypatch.setattr(mapservice.db, "PING_AFTER_IDLE_S", 0.0)
        time.sleep(0.05)
        second = _backend_pid(eng)  # pinged, found dead, replaced: no error
        assert second != first
    finally:
        eng.dispose()


def test_without_the_idle_ping_a_dead_connection_fails_once(database_url, db_kind, monkeypatch):
    """The ping above is what saves that request: a connection not idle long enough is
    handed out unpinged, its first use fails, and the pool recovers on the next."""
    if db_kind != "postgresql":
        pytest.skip("SQLite connections are files, not servers")
    monkeypatch.setattr(mapservice.db, "PING_AFTER_IDLE_S", 3600.0)
    eng = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(eng)
        _terminate(database_url, first)
        with pytest.raises(OperationalError):
            _backend_pid(eng)
        assert _backend_pid(eng) != first
    finally:
        eng.dispose()


def test_a_rollback_keeps_the_prepared_statements_and_still_rolls_back(database_url, db_kind, db):
    """psycopg forgets its prepared statements at each rollback; ours sends the ROLLBACK
    itself so that statements run often stay prepared (PostgreSQL does not plan them again),
    and the rollback still undoes the transaction, including one an error aborted."""
    if db_kind != "postgresql":
        pytest.skip("prepared statements are psycopg's")
    eng = make_engine(database_url, pool_size=1, max_overflow=0)
    stmt = select(Committee.id).where(Committee.name == bindparam("name"))
    try:
        with eng.connect() as conn:
            for i in range(8):  # psycopg prepares from the 5th run on
                conn.execute(stmt, {"name": f"c{i}"}).all()
            conn.execute(insert(Committee).values(slug="rollback", name="回滚"))
            conn.rollback()
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements")
            assert prepared.scalar_one() >= 1
            assert conn.execute(stmt, {"name": "回滚"}).all() == []
            with pytest.raises(IntegrityError):
                conn.execute(insert(Committee).values(id=-1, name=None))
            conn.rollback()
            assert conn.execute(stmt, {"name": "回滚"}).all() == []
            conn.rollback()
    finally:
        eng.dispose()


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_both_servers_freeze_the_startup_heap_before_serving(app, monkeypatch, server):
    """Everything alive once the app is built (the imported libraries: ~200,000 objects) is
    out of the collector's reach before the first request, so no full collection walks it
    again (under load each such walk paused a worker for 150-200 ms)."""
    import gc

    import gunicorn.app.base
    import waitress

    from mapservice.web import serving

    seen: dict[str, int] = {}

    def record(*_args, **_kw):
        seen["frozen"] = gc.get_freeze_count()
        seen["still_tracked"] = len(gc.get_objects())

    monkeypatch.setattr(gunicorn.app.base.BaseApplication, "run", record)
    monkeypatch.setattr(waitress, "serve", record)
    monkeypatch.setattr(serving, "start_report_builder", lambda _app: None)  # no fork here
    # Serving caps malloc arenas in the environment too: undone after the test.
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    gc.unfreeze()
    tracked_before = len(gc.get_objects())
    try:
        if server == "gunicorn":
            serving.serve_gunicorn(app, "127.0.0.1", 0, 2, 4)
        else:
            serving.serve_waitress(app, "127.0.0.1", 0, 4)
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 0.9 * tracked_before > 100_000
    assert seen["still_tracked"] < 0.01 * tracked_before


ARENAS_SCRIPT = """
import ctypes, sys, threading
from mapservice.web.serving import limit_malloc_arenas
if sys.argv[1] == "cap":
    print(limit_malloc_arenas(), flush=True)
together = threading.Barrier(8)
def work():
    together.wait()  # all eight alive at once: each would take an arena of its own
    keep = [bytearray(2000 + i) for i in range(3000)]
    together.wait()
    del keep
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_serving_process_caps_malloc_arenas(monkeypatch, tmp_path):
    """``limit_malloc_arenas`` (called by ``mapservice serve`` before gunicorn forks): eight
    threads allocating at once share 2 arenas, where without it they take more; a value the
    environment already gives is kept."""
    import subprocess

    from mapservice.web.serving import MALLOC_ARENAS, limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    script = tmp_path / "arenas.py"
    script.write_text(ARENAS_SCRIPT)

    def arenas(mode: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, str(script), mode], capture_output=True, text=True, check=True
        )
        return sum(line.startswith("Arena ") for line in done.stderr.splitlines()), done.stdout

    capped, said = arenas("cap")
    assert said.strip() == str(MALLOC_ARENAS) == "2"
    assert 1 <= capped <= 2
    uncapped, _ = arenas("none")
    assert uncapped > 2  # the check can fail: without the cap the threads spread out
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() == 4 and os.environ["MALLOC_ARENA_MAX"] == "4"


HEAP_SCRIPT = """
import re, sys
from mapservice.core.memory import release_free_heap
from mapservice.web.serving import fix_mmap_threshold

def rss_mb():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024

if sys.argv[1] == "fix":
    print("threshold=" + str(fix_mmap_threshold()))
if sys.argv[1] in ("fix", "climb"):
    del bytearray(24 << 20)[:]  # a 24 MB block freed: glibc's threshold climbs to it unless fixed
    base = rss_mb()
    big, small = [], []
    for i in range(40):  # 40 columns of 2 MB, a long-lived small object after each
        column = bytearray(2 << 20)
        column[::4096] = b"x" * 512  # every page touched: resident
        big.append(column)
        small.append(bytearray(b"y" * 1000))
    del big
    print("kept=" + str(rss_mb() - base))
else:  # "trim" / "keep": 200 MB of 2 kB blocks, one in 50 kept (the last one too)
    blocks = [bytearray(b"z" * 2000) for _ in range(100_000)]
    kept = blocks[::50] + blocks[-1:]
    del blocks
    before = rss_mb()
    if sys.argv[1] == "trim":
        print("released=" + str(release_free_heap()))
    print("given back=" + str(before - rss_mb()))
"""


def _heap_script(tmp_path, mode: str) -> dict[str, str]:
    import subprocess

    script = tmp_path / "heap.py"
    script.write_text(HEAP_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, check=True, env=env
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_serving_process_keeps_the_mmap_threshold_so_freed_columns_leave(tmp_path):
    """``fix_mmap_threshold`` (called by ``mapservice serve`` before gunicorn forks): after a
    large block was freed, 40 columns of 2 MB each followed by a small object that stays
    (a dashboard's frames beside what a request keeps) leave nothing resident once freed;
    without it glibc carves them from the heap, which keeps them (the check can fail)."""
    from mapservice.web.serving import MMAP_THRESHOLD

    fixed = _heap_script(tmp_path, "fix")
    assert fixed["threshold"] == str(MMAP_THRESHOLD)
    assert int(fixed["kept"]) < 10
    assert int(_heap_script(tmp_path, "climb")["kept"]) > 50


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_releasing_the_free_heap_gives_its_holes_back(tmp_path):
    """``release_free_heap`` (after each streamed download and dashboard build): of 200 MB of
    small blocks with one in 50 still alive, freeing the rest gives nothing back by itself
    (the check can fail); released, well over half of it goes back to the system."""
    assert int(_heap_script(tmp_path, "keep")["given back"]) < 20
    trimmed = _heap_script(tmp_path, "trim")
    assert trimmed["released"] == "True"
    assert int(trimmed["given back"]) > 100


def test_a_connection_that_read_a_large_value_is_closed_when_given_back(database_url, db_kind):
    """libpq keeps its input buffer as large as the largest message it received, for the
    connection's life: a pooled connection that read a city's statistics in one value kept
    megabytes in its worker. It is closed when its session ends (after serving the rest of
    its transaction), and the pool's next user gets a new one; a small read keeps it."""
    if db_kind != "postgresql":
        pytest.skip("libpq's buffer: PostgreSQL's connections")
    from sqlalchemy import LargeBinary, func, select
    from sqlalchemy.orm import Session

    from mapservice.stats.frames import LARGE_READ, fetch_binary

    def value(size: int):  # noqa: ANN202 - a statement
        return select(func.decode(func.repeat("ab", size // 2), "escape", type_=LargeBinary))

    eng = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(eng)
        with Session(eng) as session:
            (small,) = fetch_binary(session, value(1000))
            assert len(small) == 1000
        assert _backend_pid(eng) == first  # kept
        with Session(eng) as session:
            (big,) = fetch_binary(session, value(2 * LARGE_READ))
            assert len(big) == 2 * LARGE_READ
            # the transaction goes on, on the same connection
            assert session.execute(select(func.pg_backend_pid())).scalar_one() == first
        second = _backend_pid(eng)
        assert second != first  # closed when given back; a new one made
        assert _backend_pid(eng) == second
    finally:
        eng.dispose()
