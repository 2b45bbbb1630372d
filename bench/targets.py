"""The targets of ``bench/targets.toml``, judged on what the benchmarks measured.

A benchmark returns its measured values under stable keys (``{"search_p50_ms": [2.1, 2.3,
2.0]}``): a number, or one number per interleaved round; ``bench/run.py`` files them under the
database they were measured on (``"any"`` for a benchmark with a database of its own) and this
module judges them: a timing target on the median of >= ``MIN_ROUNDS`` rounds, a count as it
is. A target whose benchmark ran but returned no value for it is missed ("not measured"). The
table printed by the run and the one written into ``docs/performance.md`` are the same rows.
"""

from __future__ import annotations

import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS_FILE = Path(__file__).resolve().parent / "targets.toml"
MIN_ROUNDS = 3
ANY = "any"

MET, MISSED = "met", "MISSED"
NOT_JUDGED = "smoke — not judged"


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    bench: str
    limit: float
    at_least: bool  # True: the value must be >= limit; False: <= limit
    unit: str
    timing: bool
    on: tuple[str, ...]
    against: str

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    def fmt(self, value: float) -> str:
        if self.unit == "%":
            return f"{value:.0%}"
        if self.unit == "x":
            return f"{value:.1f}x"
        return f"{value:.0f}{self.unit}" if abs(value) >= 100 else f"{value:.3g}{self.unit}"

    def text(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.fmt(self.limit)}"


def load(path: Path = TARGETS_FILE) -> dict[str, Target]:
    """Every target of the file, by key."""
    with path.open("rb") as f:
        raw = tomllib.load(f)
    out = {}
    for key, t in raw.items():
        if ("min" in t) == ("max" in t):
            raise ValueError(f"{path.name} [{key}]: give exactly one of min and max")
        out[key] = Target(
            key=key,
            what=t["what"],
            bench=str(t["bench"]),
            limit=float(t["min"] if "min" in t else t["max"]),
            at_least="min" in t,
            unit=t.get("unit", ""),
            timing=bool(t.get("timing", False)),
            on=tuple(t.get("on", ["sqlite", "postgresql"])),
            against=t.get("against", ""),
        )
    return out


@dataclass(frozen=True)
class Row:
    target: Target
    where: str
    value: float | None
    rounds: list[float] | None
    verdict: str  # met / MISSED / smoke — not judged / not run

    @property
    def missed(self) -> bool:
        return self.verdict.startswith(MISSED)

    def measured_text(self) -> str:
        if self.value is None:
            return "not measured"
        text = self.target.fmt(self.value)
        if self.rounds is not None and len(self.rounds) > 1:
            text += f" (median of {', '.join(self.target.fmt(r) for r in self.rounds)})"
        return text


def _value(raw: Any) -> tuple[float | None, list[float] | None]:
    if raw is None:
        return None, None
    if isinstance(raw, list | tuple):
        rounds = [float(r) for r in raw]
        return (statistics.median(rounds) if rounds else None), rounds
    return float(raw), None


def judge(
    targets: dict[str, Target],
    measured: dict[str, dict[str, Any]],
    ran: set[str],
    databases: list[str],
    smoke: bool,
) -> list[Row]:
    """One row per target and place it is judged on, in the file's order. ``ran``: the
    benchmark numbers the run ran; ``databases``: the databases it ran them on."""
    rows = []
    for t in targets.values():
        for where in t.on:
            if t.bench not in ran or (where != ANY and where not in databases):
                rows.append(Row(t, where, None, None, "not run"))
                continue
            value, rounds = _value(measured.get(where, {}).get(t.key))
            if smoke:
                verdict = NOT_JUDGED
            elif value is None or value != value:
                verdict = f"{MISSED}: not measured"
            elif t.timing and (rounds is None or len(rounds) < MIN_ROUNDS):
                verdict = f"{MISSED}: {len(rounds or [])} round(s), a timing needs {MIN_ROUNDS}"
            else:
                verdict = MET if t.met(value) else MISSED
            rows.append(Row(t, where, value, rounds, verdict))
    return rows


def table(rows: list[Row], *, run_only: bool = True) -> list[str]:
    """The rows as a Markdown table (the same printed and written into the doc); rows of
    benchmarks not run left out unless ``run_only`` is False."""
    out = [
        "| target | on | limit | measured | met | baseline |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    if all(r.verdict == "not run" for r in rows):
        run_only = False  # nothing ran: the limits alone
    for r in rows:
        if run_only and r.verdict == "not run":
            continue
        cell = r.verdict if r.verdict != MET else "yes"
        out.append(
            f"| {r.target.what} (`{r.target.key}`) | {r.where} | {r.target.text()}"
            f" | {r.measured_text()} | {cell} | {r.target.against or '—'} |"
        )
    return out


def rows_of(results: dict[str, Any], targets: dict[str, Target] | None = None) -> list[Row]:
    """Judge a results file (``bench/results/*.json``) as its run did."""
    run = results.get("run", {"benchmarks": [], "databases": []})  # none: before targets.toml
    return judge(
        targets if targets is not None else load(),
        results.get("measured", {}),
        set(run["benchmarks"]),
        list(run["databases"]),
        results.get("size") == "smoke",
    )
