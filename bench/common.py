"""What every benchmark shares: timing summaries, the one-line report, the machine, a
throw-away PostgreSQL cluster (the test suite's), and the results file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS_DIR = ROOT / "bench" / "results"


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank, so it is a value that was measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary(seconds: list[float]) -> dict[str, float]:
    """Median, p95, p99 and mean in milliseconds, and how many samples."""
    return {
        "n": len(seconds),
        "p50_ms": statistics.median(seconds) * 1000 if seconds else float("nan"),
        "p95_ms": pct(seconds, 95) * 1000,
        "p99_ms": pct(seconds, 99) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000 if seconds else float("nan"),
    }


def fire(target: Callable[..., None], args: list[tuple[Any, ...]]) -> tuple[float, list[Any]]:
    """One forked process per ``args`` running ``target(*args, ready, go, out)``: each
    releases ``ready`` once set up, waits for ``go``, puts its list of results on ``out``.
    Returns the wall time from ``go`` to the last result, and every result."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, ready, go, out)) for a in args]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0 = time.perf_counter()
    go.set()
    results: list[Any] = []
    for _ in procs:
        results.extend(out.get(timeout=1800))
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return wall, results


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def load() -> str:
    """The 1/5/15-minute load averages (other engineers run tests on this machine too)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        return "?"


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
    }


class Report:
    """Collects each benchmark's line and figures; writes the results file at the end."""

    def __init__(self, size: str, command: str) -> None:
        self.data: dict[str, Any] = {
            "size": size,
            "command": command,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "load_at_start": load(),
            "datasets": {},
            "benchmarks": [],
            "measured": {},
        }

    def line(self, name: str, text: str, **figures: Any) -> None:
        """Print one benchmark line and keep it with its figures (and the load right now)."""
        out = f"{name}: {text}"
        print(out, flush=True)
        self.data["benchmarks"].append(
            {"name": name, "line": out, "load": load(), "figures": _clean(figures)}
        )

    def measure(self, where: str, values: dict[str, Any] | None) -> None:
        """File a benchmark's returned values (key -> number, or one number per round) under
        the database they were measured on (``"any"``: a database of the benchmark's own)."""
        if values:
            self.data["measured"].setdefault(where, {}).update(_clean(values))

    def dataset(self, key: str, info: dict[str, Any]) -> None:
        self.data["datasets"][key] = info

    def write(self, path: Path) -> None:
        self.data["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.data["load_at_end"] = load()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n")
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"written: {shown}", flush=True)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def ratio(baseline: float, ours: float) -> str:
    if ours <= 0 or baseline != baseline or ours != ours:
        return "n/a"
    return f"{baseline / ours:.1f}x"


@contextlib.contextmanager
def postgresql() -> Iterator[Any]:
    """A throw-away PostgreSQL cluster (the test suite's :class:`tests.pgcluster.PgCluster`)
    at production durability settings (``fsync``, ``synchronous_commit``,
    ``full_page_writes`` on), unlike the test suite's."""
    from tests.pgcluster import PgCluster

    cluster = PgCluster(durable=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip()
    except OSError:  # pragma: no cover
        return ""
