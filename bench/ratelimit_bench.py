"""Per-request cost of the API rate limit's stores (mapservice/api/ratelimit.py): what
flask-limiter does per request on a fixed window with headers on (one hit: ``incr``; the
headers: ``get`` and ``get_expiry``), ``--n`` times on one thread, for each store.

    python bench/ratelimit_bench.py [REDIS_URL] [--n 5000]

Without REDIS_URL, Redis is left out. Prints microseconds per request; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from limits import parse
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from mapservice.api.ratelimit import ChainStorage, LocalFileStorage, SweepingMemoryStorage


def per_request(store: Storage, n: int) -> float:
    limiter = FixedWindowRateLimiter(store)
    limit = parse("1000000000 per minute")
    for _ in range(200):  # connections opened, statements prepared
        limiter.hit(limit, "warm")
        limiter.get_window_stats(limit, "warm")
    started = time.perf_counter()
    for _ in range(n):
        limiter.hit(limit, "addr:198.51.100.1")
        limiter.get_window_stats(limit, "addr:198.51.100.1")
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("redis_url", nargs="?", default="")
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ratelimit-bench-")
    stores: dict[str, Storage] = {
        "process memory": SweepingMemoryStorage(),
        "machine file (SQLite, WAL)": LocalFileStorage(path=f"{tmp}/file.db"),
        "chain, no Redis: machine file": ChainStorage(path=f"{tmp}/chain.db"),
    }
    if args.redis_url:
        stores["chain: Redis"] = ChainStorage(redis_url=args.redis_url, path=f"{tmp}/redis.db")
    for name, store in stores.items():
        seconds = per_request(store, args.n)
        print(f"{name:32s} {seconds * 1e6:8.1f} µs per request ({1 / seconds:9,.0f} per second)")


if __name__ == "__main__":
    main()
