"""HTTP under load (#7) and a worker's peak memory (#8).

The app is served by its production server (``mapservice serve --workers N``: gunicorn, N worker
processes with a few threads each) on loopback, on a database :mod:`bench.generate` filled (on
PostgreSQL at production durability settings, :func:`bench.common.postgresql`). First every
worker is made to serve what makes a worker big: the whole map (``/map``, ``/map/data.json``,
``/map/data.geojson``), the dashboard over the dataset's whole year (every booking), each of its
tables as CSV and all of them as XLSX, the full venue list, the map's venues and the audit log
as CSV, as the bench's committee admin logged in (the CSVs with a row per venue must hold
>= 98 % of the venues). Then a
separate client process runs 32 threads, each with a keep-alive connection, in rounds: the
interactive mix (map data around a point through ``/api/v1/venues``, a venue's availability,
bookings through ``POST /api/v1/bookings`` with a personal access token) then the trivial
``/healthz`` on the same server (the machine's rate beside each round); last the mix with 5 %
pages of the whole venue list. Every answer but the expected ones (a 409 or 422 to a booking is
an answer) is an error, in every phase. Afterwards the database is checked for overlapping
allocations, and the largest worker's peak resident memory (``VmHWM``) is read from ``/proc``
for the workers alive and from the server's log for those that retired (a worker that grew by
more than ``--max-worker-growth-mb`` is replaced and logs its peak as it exits); the report
builder's children (:mod:`mapservice.stats.isolated`), which build the dashboard's reports and
exit, are not workers: their peak is reported beside.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from mapservice.stats.isolated import is_builder
from mapservice.web.serving import WORKER_THREADS

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


_EXITED = re.compile(r"worker (\d+) exits: peak (\d+) MB")
_RETIRED = re.compile(r"worker (\d+) retires: (\d+) MB")
_BUILT = re.compile(r"report built by builder child (\d+) in ([\d.]+) s, peak (\d+) MB")


def logged_memory(log: str) -> dict[str, Any]:
    """What a server's log says of its processes' memory: each worker's peak when it exited
    (those retired for their growth, and the rest when the server stopped), how many
    retired, and the report builder's children's peaks (a child per report built)."""
    exits = {int(pid): float(mb) for pid, mb in _EXITED.findall(log)}
    built = [(float(s), float(mb)) for _pid, s, mb in _BUILT.findall(log)]
    return {
        "worker_exit_peaks_mb": sorted(exits.values()),
        "workers_retired": len(_RETIRED.findall(log)),
        "reports_built": len(built),
        "builder_peak_mb": max((mb for _s, mb in built), default=0.0),
        "builder_slowest_s": max((s for s, _mb in built), default=0.0),
    }


def _rss_kb(pid: int) -> dict[str, int]:
    """The largest worker's resident memory (now, and its peak) among the workers alive:
    gunicorn's workers are the master's children (but its report builder); a single-process
    server is its own worker. Workers that retired are in the server's log
    (:func:`logged_memory`)."""
    children = [c for c in _children(pid) if not is_builder(c)]
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


@contextmanager
def served(url: str, workers: int, threads: int, tmp: str) -> Iterator[tuple[int, int, Path]]:
    """``mapservice serve`` (gunicorn) on ``url``, every worker booted: (port, master pid,
    server log)."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MAPSERVICE_INSTANCE": tmp,
        "MAPSERVICE_SECRET_KEY": "bench",
        "MAPSERVICE_API_RATE_LIMIT": "1000000 per minute",
    }
    log_path = Path(tmp) / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: a full pipe would stall the server
    cmd = [str(Path(sys.executable).parent / "mapservice"), "serve", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*cmd, "--port", str(port), "--threads", str(threads), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    tail = log_path.read_text()[-2000:]
                    raise RuntimeError(f"server did not start: {tail}") from None
                time.sleep(0.2)
        while len([c for c in _children(server.pid) if not is_builder(c)]) < workers:
            if time.time() > deadline:
                break
            time.sleep(0.1)  # every worker booted before the first measure
        yield port, server.pid, log_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def healthz_rate(
    seconds: float, *, clients: int = 32, workers: int = 2, threads: int = WORKER_THREADS
) -> float:
    """The machine's rate: requests/s of the trivial ``/healthz`` served as #7 serves (on an
    empty database of its own), ``clients`` clients for ``seconds``. Recorded beside the
    run's figures: a busy machine shows here first."""
    from mapservice.migrate import upgrade

    tmp = tempfile.mkdtemp(prefix="mapservice-bench-healthz-")
    try:
        url = f"sqlite:///{tmp}/empty.db"
        upgrade(url)
        with served(url, workers, threads, tmp) as (port, _pid, _log):
            plan = {"token": ""}
            rate: float = _phase(port, plan, [("healthz", 1.0)], seconds, clients)["per_s"]
        return rate
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _opener_as(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """A browser's session: the log-in form (its CSRF token) posted, the cookie kept."""
    import http.cookiejar

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = opener.open(f"{base}/login", timeout=60).read().decode()
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert found is not None, "no CSRF token on the log-in form"
    body = urllib.parse.urlencode(
        {"csrf_token": found.group(1), "username": username, "password": password}
    ).encode()
    after = opener.open(f"{base}/login", data=body, timeout=60)
    assert "/login" not in after.geturl(), "the bench's admin could not log in"
    return opener


#: The dashboard's tables (each exported as CSV by #8).
DASHBOARD_TABLES = ("grouped", "idle", "top", "sharing", "streets", "coverage", "trend", "heatmap")
#: The exports with a row per venue: each must hold >= 98 % of the generated venues (the
#: rest are the unpublished and retired ones the map leaves out).
VENUE_CSVS = ("dashboard_grouped_csv", "venues_csv", "map_csv")


def _csv_rows(body: bytes) -> int:
    """Data rows of a CSV export (its header not counted; quoted newlines kept in their row)."""
    import csv
    import io

    return max(0, sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8-sig")))) - 1)


def _public_venues(ds: Dataset) -> int:
    """The dataset's public venues (published, not retired, of an admitted unit), counted in
    the database with the app's own rule."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from mapservice.db import make_engine
    from mapservice.models import Venue
    from mapservice.policy import venues_public

    engine = make_engine(ds.url)
    try:
        with Session(engine) as session:
            return int(
                session.scalar(
                    select(func.count(Venue.id)).where(
                        Venue.committee_id == ds.committee_id, venues_public()
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


def _stale_days(engine: Any) -> int:
    """Entries in the statistics' log of stale days (what the next dashboard recounts)."""
    from sqlalchemy import func, select

    from mapservice.models import venue_day_stale

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(venue_day_stale)).scalar_one())


def _heavy_pages(
    base: str, ds: Dataset, times: int, pid: int, only: Sequence[str] = ()
) -> dict[str, Any]:
    """What makes a worker big, on every worker (a new connection per request, ``times``
    times each, twice the workers in a full run: the stats' cache is per process): the whole
    map and its GeoJSON, the dashboard over the dataset's whole year (every booking) with
    every chart image its page shows, each of its tables as CSV and all of them as one XLSX,
    the full venue list, the map's venues and the audit log as CSV, as the committee admin
    logged in; the CSVs with a row per venue checked to hold >= 98 % of the public venues.
    Size and slowest time of each, and the largest worker's peak (``VmHWM``, MB) once it has
    been asked (what makes the peak)."""

    from bench.generate import PASSWORD

    year = urllib.parse.urlencode(
        {"period": "custom", "start": ds.first_day.isoformat(), "end": ds.last_day.isoformat()}
    )
    opener = _opener_as(base, "bench-admin", PASSWORD)
    paths = {
        "map": "/map",
        "map_data": f"/map/data.json?committee={COMMITTEE_SLUG}",
        "geojson": f"/map/data.geojson?committee={COMMITTEE_SLUG}",
        "dashboard": f"/dashboard/?{year}",
        # Every export a committee admin can ask for: each of the dashboard's tables as CSV,
        # all of them as one XLSX, the venue registry, the map's venues, the audit log.
        **{f"dashboard_{t}_csv": f"/dashboard/export/{t}.csv?{year}" for t in DASHBOARD_TABLES},
        "dashboard_xlsx": f"/dashboard/export/all.xlsx?{year}",
        "venues_csv": "/venues/export.csv",
        "map_csv": f"/map/export.csv?committee={COMMITTEE_SLUG}",
        "audit_csv": "/audit/export.csv",
    }
    if only:
        paths = {k: v for k, v in paths.items() if k in only}
    out: dict[str, Any] = {}

    def fetch(name: str, path: str) -> bytes:
        worst, body = 0.0, b""
        for _ in range(times):
            req = urllib.request.Request(base + path, headers={"Connection": "close"})
            t0 = time.perf_counter()
            with opener.open(req, timeout=600) as resp:
                body = resp.read()
                assert resp.status == 200 and "/login" not in resp.geturl(), (path, resp.status)
            worst = max(worst, time.perf_counter() - t0)
        out[name] = {
            "bytes": len(body),
            "slowest_s": worst,
            "peak_mb_after": _rss_kb(pid)["VmHWM"] / 1024,
        }
        return body

    public = _public_venues(ds)
    for name, path in paths.items():
        body = fetch(name, path)
        if name in VENUE_CSVS:
            # Every CSV holds at least the public venues (published, unit admitted: what the
            # map and the stats count); the registry's holds the others too.
            out[name]["rows"] = _csv_rows(body)
            assert out[name]["rows"] >= 0.98 * public, (
                f"{path} holds {out[name]['rows']} venues of {public} public ({ds.venues} in all)"
            )
        if name == "dashboard_xlsx":
            assert body[:2] == b"PK", "the XLSX export is not a workbook"
        if name == "dashboard":
            charts = re.findall(r'src="(/dashboard/chart/[^"]+\.png[^"]*)"', body.decode())
            assert charts, "the dashboard shows no chart"
            for k, chart in enumerate(dict.fromkeys(charts)):
                fetch(f"chart_{k}", chart.replace("&amp;", "&"))
    charts_out = [out.pop(k) for k in [k for k in out if k.startswith("chart_")]]
    out["charts"] = {
        "count": len(charts_out),
        "bytes": sum(c["bytes"] for c in charts_out),
        "slowest_s": max(c["slowest_s"] for c in charts_out),
        "peak_mb_after": charts_out[-1]["peak_mb_after"],
    }
    return out


def http_load(
    report: Report,
    url: str,
    ds: Dataset,
    label: str,
    *,
    http: float = 60.0,
    trivial: float = 20.0,
    pages: float = 30.0,
    clients: int = 32,
    workers: int = 2,
    threads: int = WORKER_THREADS,
    rounds: int = 3,
    heavy_times: int | None = None,
) -> dict[str, Any]:
    """#7 and #8: the heavy pages (each asked ``heavy_times`` times, by default twice per
    worker; the smoke run asks each once, to check they answer), then ``rounds`` rounds of
    the interactive mix (``http`` seconds in all), each followed by ``/healthz`` (``trivial``
    seconds in all) on the same server; then ``pages`` seconds of the mix with whole-list
    pages; then the dashboard again on every worker, its first reader recounting the days
    the mixes' bookings made stale (the largest worker's peak is taken after it). Returns
    ``http_p99_ms`` (p99 over all requests of each round's mix), ``http_errors`` (every
    phase), ``http_healthz_per_s`` (each round) and ``worker_peak_rss_mb``."""
    engine = make_engine(url)
    plan = _plan(engine, ds)
    tmp = tempfile.mkdtemp(prefix="mapservice-bench-http-")
    mixes: list[dict[str, Any]] = []
    healthz: list[dict[str, Any]] = []
    with served(url, workers, threads, tmp) as (port, pid, log_path):
        base = f"http://127.0.0.1:{port}"
        rss_start = _rss_kb(pid)
        heavy = _heavy_pages(base, ds, heavy_times or 2 * workers, pid)
        rss_heavy = _rss_kb(pid)
        for _r in range(rounds):
            mixes.append(_phase(port, plan, list(MIX), http / rounds, clients))
            healthz.append(_phase(port, plan, [("healthz", 1.0)], trivial / rounds, clients))
        rss_mix = _rss_kb(pid)
        pg = _phase(port, plan, list(MIX_PAGES), pages, clients)
        # The dashboard again, as its first reader after a busy day: the mixes' bookings
        # left days stale, which it recounts before it answers.
        rss_pages = _rss_kb(pid)
        stale = _stale_days(engine)
        again = _heavy_pages(base, ds, heavy_times or 2 * workers, pid, only=("dashboard",))
        rss_end = _rss_kb(pid)
    server_log = log_path.read_text(errors="replace")
    server_errors = _error_kinds(server_log)
    memory = logged_memory(server_log)
    peak_mb = max([rss_end["VmHWM"] / 1024, *memory["worker_exit_peaks_mb"]])
    shutil.rmtree(tmp, ignore_errors=True)
    overlaps = count_overlaps(engine)
    engine.dispose()
    logged = ", ".join(f"{k} ×{v}" for k, v in server_errors.items())
    errors = sum(p["errors"] for p in [*mixes, *healthz, pg])
    p99s = [m["all"]["p99_ms"] for m in mixes]
    rates = [t["per_s"] for t in healthz]
    m = mixes[len(mixes) // 2]
    report.line(
        f"7 HTTP under load [{label}]",
        f"gunicorn ({workers} workers × {threads} threads), {clients} clients, {rounds} rounds"
        f" of {http / rounds:.1f} s interactive mix, each followed by /healthz:"
        f" p99 over all requests {', '.join(f'{x:.0f}' for x in p99s)} ms"
        f" | /healthz {', '.join(f'{x:.0f}' for x in rates)} req/s"
        f" | round {len(mixes) // 2 + 1}: {_mix_text(m, MIX)}"
        f" | then {pg['seconds']:.0f} s with 5 % whole-list pages: {_mix_text(pg, MIX_PAGES)}"
        f" | errors in every phase {errors} | overlaps {overlaps}"
        f" | server errors logged: {logged or 'none'}",
        server_errors=server_errors,
        mixes=mixes,
        trivial=healthz,
        mix_with_pages=pg,
        overlaps=overlaps,
        errors=errors,
        workers=workers,
        threads=threads,
        clients=clients,
    )
    heavy_text = ", ".join(
        f"{k} {v['bytes'] / 1e3:.0f} kB in {v['slowest_s']:.2f} s, peak then"
        f" {v['peak_mb_after']:.0f} MB"
        for k, v in heavy.items()
    )
    report.line(
        f"8 peak memory [{label}]",
        f"largest of {rss_start['workers']} server workers:"
        f" {rss_start['VmRSS'] / 1024:.0f} MB after start,"
        f" peak (VmHWM) {rss_heavy['VmHWM'] / 1024:.0f} MB after each worker served"
        f" (in this order: {heavy_text}; slowest of each),"
        f" {rss_mix['VmHWM'] / 1024:.0f} MB after the interactive mix,"
        f" {rss_pages['VmHWM'] / 1024:.0f} MB after the mix with whole-list pages,"
        f" {again['dashboard']['peak_mb_after']:.0f} MB after the dashboard again"
        f" ({stale:,} stale days logged by the mixes' bookings, recounted first: slowest"
        f" {again['dashboard']['slowest_s']:.2f} s; its charts then"
        f" {again['charts']['peak_mb_after']:.0f} MB)"
        f" (now {rss_end['VmRSS'] / 1024:.0f} MB)"
        f" | every worker's peak, those retired included: {peak_mb:.0f} MB;"
        f" {memory['workers_retired']} retired for their growth"
        f" | report builder: {memory['reports_built']} reports built, its children's peak"
        f" {memory['builder_peak_mb']:.0f} MB, slowest {memory['builder_slowest_s']:.2f} s",
        rss_start_kb=rss_start,
        logged=memory,
        rss_after_heavy_kb=rss_heavy,
        rss_after_mix_kb=rss_mix,
        rss_after_pages_kb=rss_pages,
        rss_end_kb=rss_end,
        heavy=heavy,
        dashboard_again={**again["dashboard"], "stale_logged": stale},
    )
    return {
        "http_p99_ms": p99s,
        "http_errors": errors,
        "http_healthz_per_s": rates,
        "worker_peak_rss_mb": peak_mb,
    }
