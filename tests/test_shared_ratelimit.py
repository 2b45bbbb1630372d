"""The API rate limit counts where it should (issue 21 item 1, issue 23 item 4): across app
instances in Redis; without Redis across the worker processes of one machine (a counter file
in the instance folder); with Redis down — at start, mid-run, or a URL that can never work —
on this machine, with one warning in the log, and requests still served; with Redis back,
shared again. Real servers (``mapservice serve --workers 2``) and a real ``redis-server``."""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from mapservice.api.ratelimit import ChainStorage, LocalFileStorage
from mapservice.models import LoginAttempt
from mapservice.operations import throttle
from tests.pgcluster import free_port
from tests.test_crash import listens

LIMIT = 20
RETRY = 1.0  # seconds before a server tries a Redis found down again


def _serve(database_url: str, tmp: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAPSERVICE_INSTANCE": str(tmp),
        "MAPSERVICE_SECRET_KEY": "shared-limit",
        # Per hour, not per minute: a window begins at its first request, and a burst slowed
        # past a minute on a loaded machine would otherwise span two windows (2x served).
        "MAPSERVICE_API_RATE_LIMIT": f"{LIMIT} per hour",
        "MAPSERVICE_TRUSTED_PROXIES": "1",  # each phase is its own client (X-Forwarded-For)
        "MAPSERVICE_REDIS_URL": redis_url,
        "MAPSERVICE_REDIS_RETRY_SECONDS": str(RETRY),
    }
    env.pop("MAPSERVICE_RATELIMIT_STORAGE", None)
    port = free_port()
    with (tmp / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mapservice"), "serve", "--port", str(port)]
            + ["--threads", "4", "--workers", "2"],
            env=env,
            stdout=log,
            stderr=log,
        )
    return proc, port


def _wait(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            if listens(proc.pid, port):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def servers(
    database_url: str, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[int, Path]]]:
    """``a`` and ``b``: two instances on Redis, each with its own instance folder (two
    machines); ``solo``: one instance without Redis. Each ``--workers 2``."""
    started: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name, url in (("a", redis_server.url), ("b", redis_server.url), ("solo", "")):
            tmp = tmp_path_factory.mktemp(name)
            proc, port = _serve(database_url, tmp, url)
            started[name] = (proc, port, tmp)
        for proc, port, tmp in started.values():
            _wait(proc, port, tmp / "server.log")
        yield {name: (port, tmp) for name, (_p, port, tmp) in started.items()}
    finally:
        for proc, _port, _tmp in started.values():
            proc.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
        for proc, _port, _tmp in started.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis_server.start()  # as the session found it, whatever happened


def _get(port: int, client: str, path: str = "/api/v1/venues") -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"X-Forwarded-For": client}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _burst(ports: list[int], n: int = 3 * LIMIT) -> list[int]:
    """``n`` anonymous requests from one new client, spread over ``ports`` in turn, 8 at a
    time (each its own connection, so every worker process takes some)."""
    client = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: _get(ports[i % len(ports)], client), range(n)))


def _served(codes: list[int]) -> int:
    assert set(codes) <= {200, 429}, codes  # every request answered, none failed
    return codes.count(200)


def test_instances_share_the_limit_in_redis_and_fall_back_to_the_machine(
    servers: dict[str, tuple[int, Path]], redis_server: Any
) -> None:
    (a, a_dir), (b, b_dir) = servers["a"], servers["b"]
    # Four worker processes in two instances: the limit, not 2x or 4x it.
    assert _served(_burst([a, b])) == LIMIT
    assert urllib.request.urlopen(f"http://127.0.0.1:{a}/readyz").read().count(b'"redis":"ok"')

    redis_server.stop()  # killed mid-run
    codes = _burst([a, b])
    # Still served, still limited: each instance counts on its machine (never "no limit").
    assert _served(codes) == 2 * LIMIT
    ready = urllib.request.urlopen(f"http://127.0.0.1:{a}/readyz")
    assert ready.status == 200 and b"unreachable" in ready.read()
    for folder in (a_dir, b_dir):  # said once per worker process, not once per request
        warnings = (folder / "server.log").read_text().count("unreachable (")
        assert 1 <= warnings <= 2, warnings

    redis_server.start()  # back, empty, on the same port
    time.sleep(RETRY + 0.2)
    assert _served(_burst([a, b])) == LIMIT  # shared again
    assert "reachable again" in (a_dir / "server.log").read_text()


def test_without_redis_the_workers_of_one_instance_share_the_limit(
    servers: dict[str, tuple[int, Path]],
) -> None:
    port, folder = servers["solo"]
    assert _served(_burst([port])) == LIMIT
    assert (folder / "ratelimit.db").exists()
    assert b"redis" not in urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").read()


def test_the_login_throttle_counts_across_instances(
    servers: dict[str, tuple[int, Path]], engine: Engine
) -> None:
    """The log-in throttle counts in the database both instances share: an address's
    failures on either instance add up (and it never needed Redis)."""
    ports = [servers["a"][0], servers["b"][0]]
    client = {"X-Forwarded-For": f"10.{random.randrange(256)}.0.{random.randrange(1, 255)}"}
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(urllib.request.Request(f"http://127.0.0.1:{ports[0]}/login", headers=client))
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode())
    assert match is not None
    codes = []
    try:
        for i in range(throttle.ADDRESS_MAX + 1):
            form = {"csrf_token": match.group(1), "username": f"nobody{i}", "password": "x"}
            req = urllib.request.Request(
                f"http://127.0.0.1:{ports[i % 2]}/login",
                data=urlencode(form).encode(),
                headers=client,
            )
            try:
                codes.append(opener.open(req).status)
            except urllib.error.HTTPError as err:
                codes.append(err.code)
    finally:
        with engine.begin() as conn:
            conn.execute(
                delete(LoginAttempt).where(LoginAttempt.address == client["X-Forwarded-For"])
            )
    assert codes == [401] * throttle.ADDRESS_MAX + [429]


# In-process: the counters, a Redis down at start, a URL that can never work.


def test_the_machine_file_counts_across_processes_and_expires(tmp_path: Path) -> None:
    path = str(tmp_path / "ratelimit.db")
    first, second = LocalFileStorage(path=path), LocalFileStorage(path=path)
    assert [first.incr("k", 60), second.incr("k", 60), first.incr("k", 60)] == [1, 2, 3]
    assert second.get("k") == 3 and 59 < second.get_expiry("k") - time.time() <= 60
    read, write = os.pipe()
    child = os.fork()  # another process (it opens its own connection)
    if child == 0:
        os.write(write, str(first.incr("k", 60)).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 16) == b"4"  # counted on from the other process
    os.close(read)
    os.close(write)
    assert [first.incr("short", 1), second.incr("short", 1)] == [1, 2]
    time.sleep(1.05)
    assert first.get("short") == 0 and second.incr("short", 1) == 1  # a new window


def _first_look(path: str, start: Any, out: Any) -> None:
    """One worker process's first requests: four threads at once, two counting, two reading
    (Flask-Limiter reads after counting); what each raised is put in ``out``."""
    storage, raised = LocalFileStorage(path=path), []

    def request(i: int) -> None:
        try:
            storage.incr("k", 3600) if i % 2 == 0 else storage.get("k")
        except Exception as exc:  # noqa: BLE001 - any failure is what the test reports
            raised.append(repr(exc))

    start.wait()
    threads = [threading.Thread(target=request, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(raised)


def test_workers_opening_a_new_counter_file_together_all_count(tmp_path: Path) -> None:
    """When Redis goes down every worker process opens the machine's file at once; on a new
    file that raced SQLite's switch to WAL ("database is locked", past its busy wait) and the
    process fell back to counting in its memory: more served than the limit (seen in CI).
    Twelve processes, fifteen new files: every request counted in the file, none refused."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for trial in range(15):
        path = str(tmp_path / f"ratelimit-{trial}.db")
        start, out = ctx.Barrier(12), ctx.Queue()
        procs = [ctx.Process(target=_first_look, args=(path, start, out)) for _ in range(12)]
        for proc in procs:
            proc.start()
        raised = [e for _ in procs for e in out.get(timeout=60)]
        for proc in procs:
            proc.join(timeout=60)
        assert raised == [], (trial, raised[:3])
        assert LocalFileStorage(path=path).get("k") == 12 * 2  # every count in the file


def _app(database_url: str, tmp_path: Path, redis_url: str) -> Any:
    from mapservice import create_app

    return create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "INSTANCE_PATH": tmp_path,
            "REDIS_URL": redis_url,
            "API_RATE_LIMIT": "3 per minute",
        }
    )


@pytest.mark.parametrize(
    ("url", "said", "status"),
    [
        ("redis://127.0.0.1:{closed}/0", "unreachable (ConnectionError", "unreachable"),
        ("http://127.0.0.1:{closed}/", "MAPSERVICE_REDIS_URL cannot be used", "misconfigured"),
        ("redis://127.0.0.1:notaport/0", "MAPSERVICE_REDIS_URL cannot be used", "misconfigured"),
    ],
    ids=["down-at-start", "not-redis", "bad-port"],
)
def test_a_redis_that_cannot_be_reached_is_said_once_and_counting_goes_on(
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    url: str,
    said: str,
    status: str,
) -> None:
    caplog.set_level(logging.WARNING, "mapservice.api.ratelimit")
    app = _app(database_url, tmp_path, url.format(closed=free_port()))
    try:
        client = app.test_client()
        codes = [client.get("/api/v1/venues").status_code for _ in range(6)]
        assert codes == [200, 200, 200, 429, 429, 429]  # served, and limited
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1 and said in messages[0], messages  # once, at start
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["redis"].startswith(status)
    finally:
        app.extensions["db_engine"].dispose()


def test_a_failed_store_is_retried_and_concurrent_failures_warn_once(
    redis_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "mapservice.api.ratelimit")
    chain = ChainStorage(redis_url=redis_server.url, path=str(tmp_path / "r.db"), retry_after=0.2)
    key = f"chain-{random.random()}"
    assert chain.incr(key, 60) == 1 and chain.redis_status() == "ok"
    redis_server.stop()
    try:
        threads = [threading.Thread(target=chain.incr, args=(key, 60)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert chain.get(key) == 8  # in the machine's file meanwhile
    finally:
        redis_server.start()
    time.sleep(0.25)
    try:
        assert chain.incr(key, 60) == 1  # Redis again (restarted empty)
    finally:
        chain.close()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0].split(" after")[0] for m in messages] == [
        f"API rate limit: Redis at redis://127.0.0.1:{redis_server.port}/0 unreachable",
        f"API rate limit: Redis at redis://127.0.0.1:{redis_server.port}/0 reachable again",
    ]
