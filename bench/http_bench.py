"""HTTP under load (#7) and a worker's peak memory (#8).

The app is served by its production server (``mapservice serve --workers N``: gunicorn, N worker
processes with a few threads each) on loopback, on a database :mod:`bench.generate` filled. A
separate client process runs 32 threads, each with a keep-alive connection, for a bounded time:
first the mix (map data around a point and a page of the whole venue list through
``/api/v1/venues``, a venue's availability, bookings through ``POST /api/v1/bookings`` with a
personal access token), then the trivial ``/healthz`` on the same server for comparison.
Afterwards the database is checked for overlapping allocations, and the largest worker's peak
resident memory (``VmHWM``) is read from ``/proc``, after it has also served the whole
10,000-venue map (``/map`` and the ``/map/data.json`` its page draws from) and the whole city
as GeoJSON (``/map/data.geojson``).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.common import ROOT, Report, summary
from bench.generate import COMMITTEE_SLUG, TZ_NAME, Dataset, count_overlaps
from mapservice.core.opening import local_instant
from mapservice.db import make_engine
from mapservice.models import User, Venue
from mapservice.operations.tokens import create_token
from mapservice.policy import venues_public

TZ = ZoneInfo(TZ_NAME)
#: The interactive mix: map data around a point, a venue's week, a booking.
MIX = (("near", 0.40), ("availability", 0.40), ("book", 0.20))
#: The same with 5 % pages of the whole venue list (an API client paging through the city).
MIX_PAGES = (("near", 0.35), ("list_page", 0.05), ("availability", 0.40), ("book", 0.20))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM", "VmRSS")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _rss_kb(pid: int) -> dict[str, int]:
    """The largest worker's resident memory (now, and its peak): gunicorn's workers are the
    master's children; a single-process server is its own worker."""
    children = _children(pid)
    workers = [_status_kb(c) for c in children] or [_status_kb(pid)]
    return {k: max(w[k] for w in workers) for k in ("VmRSS", "VmHWM")} | {
        "workers": len(children) or 1
    }


def _mix_text(d: dict[str, Any], mix: Any) -> str:
    by = d["by_kind"]
    parts = []
    for k, _w in mix:
        v = by.get(k)
        parts.append(
            f"{k} {v['per_s']:.1f}/s p50 {v['p50_ms']:.0f} p99 {v['p99_ms']:.0f} ms"
            if v
            else f"{k} -"
        )
    booked = by.get("book", {}).get("statuses", {})
    return (
        f"{d['per_s']:.1f} req/s, p50 {d['all']['p50_ms']:.0f} ms, p99 {d['all']['p99_ms']:.0f} ms,"
        f" errors {d['errors']} ({'; '.join(parts)};"
        f" bookings 201×{booked.get('201', 0)} 409×{booked.get('409', 0)}"
        f" 422×{booked.get('422', 0)};"
        f" load client {d['client_cpu_s'] / d['seconds']:.0%} of a core)"
    )


def _error_kinds(log: str) -> dict[str, int]:
    """The last line of each traceback in the server's log, counted (why requests failed)."""
    out: dict[str, int] = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            k = j + 1
            while k < len(lines) and not lines[k].strip():
                k += 1
            after = lines[k].strip() if k < len(lines) else ""
            if after.startswith(("The above exception", "During handling")):
                continue  # chained: count the final exception only
            last = lines[j][:160] if j < len(lines) else "?"
            out[last] = out.get(last, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _plan(engine: Any, ds: Dataset, seed: int = 5) -> dict[str, Any]:
    """Points, venues to ask about and to book, and a booker's token (committed)."""
    with Session(engine) as s:
        rows = s.execute(
            # The venues a booker may see: public ones (of admitted units too).
            select(Venue.id, Venue.lon, Venue.lat, Venue.type, Venue.bookable_by).where(
                venues_public()
            )
        ).all()
        booker = s.get(User, ds.booker_ids[-1])
        assert booker is not None
        _token, secret = create_token(s, booker, booker, ["read", "book"], "bench")
        s.commit()
    bookable = [r.id for r in rows if r.type in ("badminton", "table_tennis", "gym")]
    return {
        "token": secret,
        "points": [(r.lon, r.lat) for r in rows],
        "venue_ids": [r.id for r in rows],
        "bookable": bookable,
        "types": ["badminton", "table_tennis", "meeting_room", "youth_home"],
    }


def _request(kind: str, plan: dict[str, Any], rnd: random.Random) -> tuple[str, str, bytes | None]:
    today = datetime.now(TZ).date()
    if kind == "near":
        lon, lat = rnd.choice(plan["points"])
        t = rnd.choice(plan["types"])
        return (
            "GET",
            f"/api/v1/venues?near={lon:.6f},{lat:.6f}&radius_km=2&type={t}&per_page=100",
            None,
        )
    if kind == "list_page":
        return "GET", f"/api/v1/venues?per_page=100&page={rnd.randrange(1, 50)}", None
    if kind == "availability":
        day = today + timedelta(days=rnd.randrange(0, 14))
        a = local_instant(day, 0, TZ).isoformat()
        b = local_instant(day + timedelta(days=7), 0, TZ).isoformat()
        vid = rnd.choice(plan["venue_ids"])
        q = urllib.parse.urlencode({"from": a, "to": b})
        return "GET", f"/api/v1/venues/{vid}/availability?{q}", None
    if kind == "book":
        day = today + timedelta(days=rnd.randrange(2, 26))
        start = local_instant(day, rnd.randrange(10, 17) * 60, TZ)
        body = {
            "venue_id": rnd.choice(plan["bookable"]),
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "units": 1,
            "purpose": "bench",
        }
        return "POST", "/api/v1/bookings", json.dumps(body).encode()
    return "GET", "/healthz", None


def _client(
    port: int,
    plan: dict[str, Any],
    kinds: list[tuple[str, float]],
    seconds: float,
    clients: int,
    out: Any,
) -> None:
    """``clients`` threads hammering the server until the deadline; results to ``out``."""
    deadline = time.perf_counter() + seconds
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    names = [k for k, _ in kinds]
    weights = [w for _, w in kinds]
    headers = {"Authorization": f"Bearer {plan['token']}", "Content-Type": "application/json"}

    def run(seed: int) -> None:
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[tuple[str, int, float]] = []
        while time.perf_counter() < deadline:
            kind = rnd.choices(names, weights)[0]
            method, path, body = _request(kind, plan, rnd)
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append((kind, status, time.perf_counter() - t0))
        conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    out.put((time.perf_counter() - t0, results, cpu.ru_utime + cpu.ru_stime))


def _phase(
    port: int, plan: dict[str, Any], kinds: list[tuple[str, float]], seconds: float, clients: int
) -> dict[str, Any]:
    """One bounded phase; its figures, with the CPU time the load client itself used (it
    shares the machine's cores with the server)."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_client, args=(port, plan, kinds, seconds, clients, q))
    p.start()
    wall, results, cpu = q.get(timeout=seconds + 600)
    p.join()
    return {**_describe(wall, results), "client_cpu_s": cpu}


OK = {
    "near": {200},
    "list_page": {200},
    "availability": {200},
    "book": {201, 409, 422},
    "healthz": {200},
}


def _describe(wall: float, results: list[tuple[str, int, float]]) -> dict[str, Any]:
    by: dict[str, Any] = {}
    for kind in sorted({r[0] for r in results}):
        rs = [r for r in results if r[0] == kind]
        statuses: dict[str, int] = {}
        for r in rs:
            statuses[str(r[1])] = statuses.get(str(r[1]), 0) + 1
        by[kind] = {
            "requests": len(rs),
            "per_s": len(rs) / wall,
            "statuses": statuses,
            "errors": sum(1 for r in rs if r[1] not in OK[kind]),
            **summary([r[2] for r in rs]),
        }
    return {
        "seconds": wall,
        "requests": len(results),
        "per_s": len(results) / wall,
        "errors": sum(v["errors"] for v in by.values()),
        "all": summary([r[2] for r in results]),
        "by_kind": by,
    }


def http_load(
    report: Report,
    url: str,
    ds: Dataset,
    label: str,
    *,
    seconds: float = 60.0,
    trivial_seconds: float = 20.0,
    pages_seconds: float = 30.0,
    clients: int = 32,
    workers: int = 2,
    threads: int = 4,
) -> None:
    """#7 and #8."""
    engine = make_engine(url)
    plan = _plan(engine, ds)
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="mapservice-bench-http-")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MAPSERVICE_INSTANCE": tmp,
        "MAPSERVICE_SECRET_KEY": "bench",
        "MAPSERVICE_API_RATE_LIMIT": "1000000 per minute",
    }
    log_path = Path(tmp) / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mapservice"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5).read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    tail = log_path.read_text()[-2000:]
                    raise RuntimeError(f"server did not start: {tail}") from None
                time.sleep(0.2)
        while len(_children(server.pid)) < workers and time.time() < deadline:
            time.sleep(0.1)  # every worker booted before the first measure
        rss_start = _rss_kb(server.pid)
        # The whole map, as a visitor opens it: the page, then all venues' data (gzipped).
        map_times = []
        map_bytes = 0
        for path in ("/map", f"/map/data.json?committee={COMMITTEE_SLUG}"):
            req = urllib.request.Request(base + path, headers={"Accept-Encoding": "gzip"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as resp:
                map_bytes += len(resp.read())
            map_times.append(time.perf_counter() - t0)
        # And the whole city as GeoJSON (the download, the heaviest answer), on every worker.
        for _ in range(max(1, workers)):
            url = f"{base}/map/data.geojson?committee={COMMITTEE_SLUG}"
            urllib.request.urlopen(url, timeout=120).read()
        rss_map = _rss_kb(server.pid)
        m = _phase(port, plan, list(MIX), seconds, clients)
        rss_mix = _rss_kb(server.pid)
        t = _phase(port, plan, [("healthz", 1.0)], trivial_seconds, clients)
        pg = _phase(port, plan, list(MIX_PAGES), pages_seconds, clients)
        rss_end = _rss_kb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    server_errors = _error_kinds(log_path.read_text(errors="replace"))
    shutil.rmtree(tmp, ignore_errors=True)
    overlaps = count_overlaps(engine)
    engine.dispose()
    logged = ", ".join(f"{k} ×{v}" for k, v in server_errors.items())
    report.line(
        f"7 HTTP under load [{label}]",
        f"gunicorn ({workers} workers × {threads} threads), {clients} clients,"
        f" {m['seconds']:.0f} s interactive mix:"
        f" {_mix_text(m, MIX)}"
        f" | trivial /healthz {t['per_s']:.0f} req/s, p50 {t['all']['p50_ms']:.0f} ms,"
        f" p99 {t['all']['p99_ms']:.0f} ms, errors {t['errors']}"
        f" | then {pg['seconds']:.0f} s with 5 % whole-list pages: {_mix_text(pg, MIX_PAGES)}"
        f" | overlaps {overlaps}"
        f" | server errors logged (both mixes): {logged or 'none'}"
        f" | target: 0 errors, availability p99 <= 250 ms",
        server_errors=server_errors,
        mix=m,
        trivial=t,
        mix_with_pages=pg,
        overlaps=overlaps,
        workers=workers,
        threads=threads,
        clients=clients,
    )
    report.line(
        f"8 peak memory [{label}]",
        f"largest of {rss_start['workers']} server workers:"
        f" {rss_start['VmRSS'] / 1024:.0f} MB after start,"
        f" {rss_map['VmRSS'] / 1024:.0f} MB after serving the {ds.venues}-venue map"
        f" ({map_bytes / 1e3:.0f} kB gzipped; page {map_times[0] * 1000:.0f} ms,"
        f" data {map_times[1] * 1000:.0f} ms cold) and its GeoJSON,"
        f" peak (VmHWM) {rss_mix['VmHWM'] / 1024:.0f} MB after the interactive mix,"
        f" {rss_end['VmHWM'] / 1024:.0f} MB after the mix with whole-list pages"
        f" | target <= 300 MB",
        rss_start_kb=rss_start,
        rss_after_mix_kb=rss_mix,
        rss_after_map_kb=rss_map,
        rss_end_kb=rss_end,
        map_gzip_bytes=map_bytes,
        map_seconds=map_times,
    )
