"""The benchmarks' target plumbing (bench/targets.toml, bench/targets.py, bench/run.py): a
missed target makes the run exit non-zero, met ones exit 0, a timing needs three rounds, the
smoke run judges nothing, and docs/performance.md's table is generated from a results file.
No database: results files are written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import run
from bench import targets as t

TOML = """
[speed_ms]
bench = 2
what = "search p50"
max = 5
unit = " ms"
timing = true
on = ["sqlite", "postgresql"]

[vs_fair]
bench = 2
what = "fair / ours"
min = 8
unit = "x"
timing = true
on = ["sqlite"]
against = "one SQL query per request"

[errors]
bench = 7
what = "HTTP errors"
max = 0
on = ["sqlite"]

[map_ratio]
bench = 4
what = "map ratio"
min = 30
unit = "x"
on = ["any"]
"""

DOC = "# Performance\n\nProse.\n\n<!-- bench:begin -->\ntyped\n<!-- bench:end -->\n\nMore prose.\n"


def results(measured: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "size": "full",
        "command": "bench/run.py",
        "started_at": "2026-12-03T23:00:00+00:00",
        "finished_at": "2026-12-03T23:30:00+00:00",
        "load_at_start": "1.0 1.0 1.0",
        "load_at_end": "2.0 2.0 2.0",
        "machine": {"cpus": 2, "cpu": "CPU", "memory_gb": 8, "platform": "Linux", "python": "3"},
        "healthz_per_s": {"at start": 1500.0, "at end": 1400.0},
        "datasets": {},
        "benchmarks": [{"name": "2 search [sqlite]", "line": "2 search: measured", "load": "1"}],
        "run": {"benchmarks": ["2", "4", "7"], "databases": ["sqlite", "postgresql"]},
        "measured": measured,
        "problems": [],
        **over,
    }


MET = {
    "sqlite": {"speed_ms": [3.0, 4.0, 6.0], "vs_fair": [9.0, 8.5, 12.0], "errors": 0},
    "postgresql": {"speed_ms": [4.9, 5.0, 4.0]},
    "any": {"map_ratio": 41.0},
}


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "targets.toml").write_text(TOML)
    (tmp_path / "performance.md").write_text(DOC)
    return {
        "targets": tmp_path / "targets.toml",
        "doc": tmp_path / "performance.md",
        "dir": tmp_path,
    }


def run_on(files: dict[str, Path], data: dict[str, Any]) -> int:
    path = files["dir"] / "results.json"
    path.write_text(json.dumps(data))
    args = ["--doc-from", str(path), "--doc", str(files["doc"]), "--targets", str(files["targets"])]
    return run.main(args)


def test_every_target_met_exits_0_and_the_doc_table_is_generated(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_on(files, results(MET)) == 0
    doc = files["doc"].read_text()
    assert "typed" not in doc and doc.startswith("# Performance\n\nProse.")
    assert doc.endswith("More prose.\n")
    table = [line for line in doc.splitlines() if line.startswith("| ")]
    assert table[0] == "| target | on | limit | measured | met | baseline |"
    # Judged on the median of the rounds, the rounds shown, the baseline named.
    assert "| search p50 (`speed_ms`) | sqlite | <= 5 ms | 4 ms (median of 3 ms, 4 ms, 6 ms)" in doc
    assert "| fair / ours (`vs_fair`) | sqlite | >= 8.0x | 9.0x" in doc
    assert doc.count("| yes |") == 5 and "| one SQL query per request |" in doc
    assert "every target met" in doc and "/healthz rate" in doc and "1500 req/s" in doc
    assert "2 search: measured" in doc  # the benchmarks' lines below the table
    assert "every target met" in capsys.readouterr().out  # the same table printed


@pytest.mark.parametrize(
    ("where", "key", "value", "why"),
    [
        ("postgresql", "speed_ms", [5.1, 6.0, 4.0], "MISSED |"),  # median 5.1 > 5
        ("sqlite", "vs_fair", [7.9, 7.0, 30.0], "MISSED |"),  # median 7.9 < 8
        ("sqlite", "errors", 1, "MISSED |"),  # a count: as returned
        ("sqlite", "speed_ms", [1.0, 1.0], "2 round(s)"),  # a timing needs 3 rounds
        ("sqlite", "speed_ms", 1.0, "0 round(s)"),
        ("any", "map_ratio", None, "not measured"),  # the benchmark ran, the key is absent
    ],
)
def test_a_missed_target_exits_non_zero(
    files: dict[str, Path], where: str, key: str, value: Any, why: str
) -> None:
    measured = json.loads(json.dumps(MET))
    if value is None:
        del measured[where][key]
    else:
        measured[where][key] = value
    assert run_on(files, results(measured)) == run.MISSED_TARGET
    doc = files["doc"].read_text()
    assert "1 target(s) missed" in doc and why in doc


def test_smoke_judges_no_target_but_correctness_fails(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {"sqlite": {"speed_ms": [99.0]}}
    assert run_on(files, results(bad, size="smoke")) == 0
    out = capsys.readouterr().out
    assert "smoke — not judged" in out and "MISSED" not in out
    assert "typed" in files["doc"].read_text()  # a smoke run writes no doc
    assert run_on(files, results(MET, problems=["2 search: answers differ"])) == run.FAILED_CHECK


def test_targets_of_benchmarks_not_run_are_not_judged(files: dict[str, Path]) -> None:
    only_search = results(MET, run={"benchmarks": ["2"], "databases": ["sqlite"]})
    only_search["measured"] = {"sqlite": MET["sqlite"]}
    assert run_on(files, only_search) == 0
    assert "| postgresql |" not in files["doc"].read_text()


def test_the_real_targets_file() -> None:
    """Every target of issue 22 is in bench/targets.toml, each with one limit."""
    targets = t.load()
    assert {
        "search_p50_ms",
        "search_vs_fair",
        "stats_1m_s",
        "stats_vs_fair_loop",
        "stats_5m_s",
        "booking_api_share_of_bare",
        "map_server_uncached_ratio",
        "map_cold_drawn_s",
        "http_p99_ms",
        "http_errors",
        "worker_peak_rss_mb",
        "signup_share_of_bare",
    } <= set(targets)
    assert all(x.against for x in targets.values() if x.unit in ("x", "%"))


def test_a_partial_run_says_that_only_what_ran_was_judged(files: dict[str, Path]) -> None:
    """A rerun of some benchmarks on one database (``--only 2 --db sqlite``) meets its
    targets, and the table says that only those were judged, not that every target is met."""
    partial = results({"sqlite": MET["sqlite"]}, run={"benchmarks": ["2"], "databases": ["sqlite"]})
    assert run_on(files, partial) == 0
    doc = files["doc"].read_text()
    assert "every target met (2 judged: only those of what ran, benchmarks 2 on sqlite;" in doc
    assert "the other targets were not measured by this run)" in doc
    assert run_on(files, results(MET)) == 0
    assert "only those of what ran" not in files["doc"].read_text()
