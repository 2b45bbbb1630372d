"""HTTP through nginx (#10, issue 21): the HTTP benchmark's interactive mix
(:data:`bench.http_bench.MIX`: map data around a point, a venue's week, bookings) from 32
clients through the shipped nginx site (deploy/nginx/mapservice.conf, adapted to loopback
ports by :mod:`tests.nginx`; plain HTTP between the load client and nginx, whose TLS would be
paid as much by the Python client on the same cores) to one app instance, then to two
(``mapservice serve --workers 2`` each), on PostgreSQL at production settings (``fsync`` and
``synchronous_commit`` on, unlike the other benchmarks' cluster).

Reported: requests per second and p99 over all requests with one instance and with two, their
ratio, errors (any answer the mix does not expect, a 502 included), and overlapping allocations
afterwards. On one 2-core machine two instances share the same cores: expect little gain — the
point is that nothing breaks and p99 stays low.

    .venv/bin/python bench/nginx_bench.py [--venues N --bookings N --seconds S]
    .venv/bin/python bench/run.py --only 10 --db none     # through the runner
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS_DIR, Report  # noqa: E402
from bench.generate import count_overlaps, generate  # noqa: E402
from bench.http_bench import MIX, _mix_text, _phase, _plan  # noqa: E402
from mapservice.db import make_engine  # noqa: E402


def nginx_load(
    report: Report, venues: int, bookings: int, seconds: float, clients: int = 32
) -> None:
    """#10: one instance, then two, behind nginx, each phase ``seconds`` long."""
    from tests.nginx import start_nginx
    from tests.pgcluster import PgCluster
    from tests.test_crash import start_server, wait_for_workers

    cluster = PgCluster(durable=True)
    cluster.start()
    instances: list[Any] = []
    nginx = None
    tmp = Path(tempfile.mkdtemp(prefix="mapservice-bench-nginx-"))
    try:
        url = cluster.create_database("bench_nginx")
        ds = generate(url, venues, bookings)
        engine = make_engine(url)
        plan = _plan(engine, ds)
        env = {"MAPSERVICE_TRUSTED_PROXIES": "1", "MAPSERVICE_SECRET_KEY": "bench"}
        phases: dict[int, dict[str, Any]] = {}
        for n in (1, 2):
            place = tmp / f"instance{n}"
            place.mkdir()
            instances.append(start_server(url, place, workers=2, env=env))
            wait_for_workers(instances[-1][0].pid, 2)
            if nginx is not None:
                nginx.stop()
            nginx = start_nginx([port for _proc, port in instances], tls=False)
            phases[n] = _phase(nginx.port, plan, list(MIX), seconds, clients)
        overlaps = count_overlaps(engine)
        engine.dispose()
    finally:
        if nginx is not None:
            nginx.stop()
        for proc, _port in instances:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(timeout=30)
        cluster.stop()
    one, two = phases[1], phases[2]
    gain = two["per_s"] / one["per_s"] if one["per_s"] else float("nan")
    report.line(
        "10 HTTP through nginx [postgresql, fsync on]",
        f"{clients} clients, interactive mix, {seconds:.0f} s each:"
        f" one instance (gunicorn 2 workers): {_mix_text(one, MIX)}"
        f" | two instances: {_mix_text(two, MIX)}"
        f" | two/one {gain:.2f}x requests per second,"
        f" p99 over all {one['all']['p99_ms']:.0f} -> {two['all']['p99_ms']:.0f} ms"
        f" | overlaps {overlaps} | target: 0 errors, p99 <= 250 ms",
        one=one,
        two=two,
        ratio=gain,
        overlaps=overlaps,
        clients=clients,
        venues=venues,
        bookings=bookings,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venues", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "nginx.json")
    args = parser.parse_args()
    os.environ.setdefault("MAPSERVICE_SECRET_KEY", "bench")
    report = Report("custom", " ".join(["bench/nginx_bench.py", *sys.argv[1:]]))
    nginx_load(report, args.venues, args.bookings, args.seconds)
    report.write(args.output)
    figures = report.data["benchmarks"][-1]["figures"]
    errors = figures["one"]["errors"] + figures["two"]["errors"]
    return 1 if figures["overlaps"] or errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
