"""HTTP through nginx (#10, issue 21): the HTTP benchmark's interactive mix
(:data:`bench.http_bench.MIX`: map data around a point, a venue's week, bookings) from 32
clients through the shipped nginx site (deploy/nginx/mapservice.conf, adapted to loopback
ports by :mod:`tests.nginx`; plain HTTP between the load client and nginx, whose TLS would be
paid as much by the Python client on the same cores) to one app instance, then to two, on
PostgreSQL at production settings (``fsync`` and ``synchronous_commit`` on, unlike the other
benchmarks' cluster). Each set-up is sized as docs/deployment.md sizes a machine, as many
worker processes in all as it has cores, each with 2 threads (the shipped unit's, and
benchmark 7's; 4 until 2026-12-06): one instance with ``--workers`` the cores, two with half
as many each. (Until 2026-12-05 both set-ups ran two instances of 2 workers × 8 threads,
four processes and 32 threads on two cores: p99 through nginx 372–454 ms with two
instances, 266–317 with one.)

All three instances run throughout, one nginx in front of the first alone and one in front
of the other two;
the rounds interleave the two set-ups (one then two, then two then one, …) so the machine's
drift falls on both alike. Returned (``bench/targets.toml`` judges them): ``nginx_p99_ms``, p99
over all requests with two instances, one per round (judged on the median);
``nginx_errors``, any answer the mix does not expect (a 502 included) in every phase; and
``nginx_two_vs_one``, requests per second two / one per round, reported, not judged. Reported
besides: each set-up's requests per second and p99 per kind, overlapping allocations
afterwards. On one 2-core machine two instances share the same cores: expect little gain — the
point is that nothing breaks and p99 stays low.

    .venv/bin/python bench/nginx_bench.py [--venues N --bookings N --seconds S --rounds R]
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
from mapservice.web.serving import WORKER_THREADS  # noqa: E402

#: Threads per worker process, as ``mapservice serve`` and the shipped unit run them
#: (deploy/systemd/mapservice-web@.service) and benchmark 7 serves.
THREADS = WORKER_THREADS
#: The machine's cores: the worker processes of a set-up in all.
CORES = os.cpu_count() or 2


def nginx_load(
    report: Report,
    venues: int,
    bookings: int,
    seconds: float,
    clients: int = 32,
    rounds: int = 3,
) -> dict[str, Any]:
    """#10: two app instances started side by side, and two nginx in front of them — one
    sending to the first instance only, one to both; then ``rounds`` interleaved rounds (one
    instance then two, the next round two then one, …) of the interactive mix, ``seconds``
    of load in all per set-up (``seconds / rounds`` a phase). Returns ``nginx_p99_ms`` (p99
    over all requests with two instances, each round), ``nginx_errors`` (every phase, any
    answer the mix does not expect, a 502 included) and ``nginx_two_vs_one`` (requests per
    second, two instances / one, each round: reported, not judged)."""
    from tests.nginx import start_nginx
    from tests.pgcluster import PgCluster
    from tests.test_crash import start_server, wait_for_workers

    cluster = PgCluster(durable=True)
    cluster.start()
    instances: list[Any] = []
    fronts: dict[int, Any] = {}
    phases: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    tmp = Path(tempfile.mkdtemp(prefix="mapservice-bench-nginx-"))
    try:
        url = cluster.create_database("bench_nginx")
        ds = generate(url, venues, bookings)
        engine = make_engine(url)
        plan = _plan(engine, ds)
        env = {"MAPSERVICE_TRUSTED_PROXIES": "1", "MAPSERVICE_SECRET_KEY": "bench"}
        # Each set-up sized as docs/deployment.md sizes a machine: as many worker processes
        # in all as it has cores. One instance with CORES workers; two with CORES // 2 each.
        workers = {1: CORES, 2: max(1, CORES // 2)}
        for n, count in ((1, 1), (2, 2)):
            for k in range(count):
                place = tmp / f"setup{n}-instance{k + 1}"
                place.mkdir()
                server = start_server(url, place, workers=workers[n], env=env, threads=THREADS)
                instances.append((n, *server))
        for _n, proc, _port in instances:
            wait_for_workers(proc.pid, workers[_n])
        fronts = {
            n: start_nginx([port for m, _proc, port in instances if m == n], tls=False)
            for n in (1, 2)
        }
        for r in range(rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                phases[n].append(_phase(fronts[n].port, plan, list(MIX), seconds / rounds, clients))
        overlaps = count_overlaps(engine)
        engine.dispose()
    finally:
        for front in fronts.values():
            front.stop()
        for _n, proc, _port in instances:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(timeout=30)
        cluster.stop()
    p99s = [p["all"]["p99_ms"] for p in phases[2]]
    p99s_one = [p["all"]["p99_ms"] for p in phases[1]]
    ratios = [
        two["per_s"] / one["per_s"] if one["per_s"] else float("nan")
        for one, two in zip(phases[1], phases[2], strict=True)
    ]
    errors = sum(p["errors"] for p in [*phases[1], *phases[2]])
    middle = rounds // 2
    report.line(
        "10 HTTP through nginx [postgresql, fsync on]",
        f"{clients} clients, interactive mix, {rounds} interleaved rounds of"
        f" {seconds / rounds:.1f} s per set-up:"
        f" p99 over all, one instance (gunicorn {CORES} workers × {THREADS} threads)"
        f" {', '.join(f'{x:.0f}' for x in p99s_one)} ms,"
        f" two instances ({max(1, CORES // 2)} × {THREADS} each)"
        f" {', '.join(f'{x:.0f}' for x in p99s)} ms"
        f" | two/one {', '.join(f'{x:.2f}' for x in ratios)}x requests per second"
        f" | round {middle + 1}: one {_mix_text(phases[1][middle], MIX)}"
        f" | two {_mix_text(phases[2][middle], MIX)}"
        f" | errors {errors} | overlaps {overlaps}",
        one=phases[1],
        two=phases[2],
        ratios=ratios,
        errors=errors,
        overlaps=overlaps,
        clients=clients,
        rounds=rounds,
        venues=venues,
        bookings=bookings,
    )
    return {"nginx_p99_ms": p99s, "nginx_errors": errors, "nginx_two_vs_one": ratios}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venues", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="load per set-up, split over the rounds"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "nginx.json")
    args = parser.parse_args()
    os.environ.setdefault("MAPSERVICE_SECRET_KEY", "bench")
    report = Report("custom", " ".join(["bench/nginx_bench.py", *sys.argv[1:]]))
    measured = nginx_load(report, args.venues, args.bookings, args.seconds, rounds=args.rounds)
    report.measure("any", measured)
    report.write(args.output)
    figures = report.data["benchmarks"][-1]["figures"]
    return 1 if figures["overlaps"] or measured["nginx_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
