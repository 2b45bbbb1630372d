"""Test-only fault switches: the negative controls that prove a check can fail.

Each switch breaks one guarantee on purpose, so that the test guarding it is seen to fail:

- ``NO_LOCK``: the booking engine checks capacity outside the venue's lock (a read of its own,
  before the locked transaction; PostgreSQL takes no row lock) — with the database's overlap
  guard dropped by the test, the concurrency test finds overlaps;
- ``REFUSE_FREE``: the engine refuses a request although its units are free — the
  false-refusal check fires;
- ``ANSWER_BEFORE_COMMIT``: a request that writes answers first and commits only after the
  answer has gone out (half a second later) — the kill -9 test finds an answered booking lost;
- ``NO_ESCAPE``: templates render without HTML escaping (an app created while it is on) — the
  XSS test, with the CSP switched off, sees a payload run.

**Never reachable in production**: the switches are set only by code, with :func:`enabled` in
a test or :func:`enable` in a process a test starts (``python -c "…faults.enable(…)…"``). No
environment variable, configuration key or command-line option reads them, so no deployment
setting can turn one on. Off, each costs one test of an empty set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

NO_LOCK = "no_lock"
REFUSE_FREE = "refuse_free"
ANSWER_BEFORE_COMMIT = "answer_before_commit"
NO_ESCAPE = "no_escape"
ALL = frozenset({NO_LOCK, REFUSE_FREE, ANSWER_BEFORE_COMMIT, NO_ESCAPE})

_on: set[str] = set()


def on(name: str) -> bool:
    """Whether the fault ``name`` is switched on in this process."""
    return bool(_on) and name in _on


def enable(*names: str) -> None:
    unknown = set(names) - ALL
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}")
    _on.update(names)


def disable(*names: str) -> None:
    _on.difference_update(names or ALL)


@contextmanager
def enabled(*names: str) -> Iterator[None]:
    """The faults ``names`` on inside the block (this process, every thread)."""
    enable(*names)
    try:
        yield
    finally:
        disable(*names)
