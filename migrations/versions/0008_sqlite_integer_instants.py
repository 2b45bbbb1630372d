"""SQLite instants as integer microseconds: every instant column on SQLite held ISO text
(``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC) and now holds integer microseconds since the Unix
epoch (UTC), as ``mapservice.db.UTCDateTime`` writes them. The declared type stays
``DATETIME`` (NUMERIC affinity keeps integers integers), so no table is rebuilt; only the
values change. PostgreSQL is untouched (``timestamp``).

Why: the statistics read a year of bookings' instants as epoch seconds, and parsing three
texts per booking was a quarter of their time (bench/stats_bench.py, #5).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Callable

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Every instant column at this revision, by table.
INSTANTS = {
    "audit_log": ("at",),
    "bookings": (
        "start_at",
        "end_at",
        "hold_expires_at",
        "decided_at",
        "created_at",
        "updated_at",
    ),
    "booking_allocations": ("start_at", "end_at"),
    "notifications": ("created_at", "read_at"),
    "feed_tokens": ("created_at", "revoked_at"),
    "committees": ("created_at",),
    "login_attempts": ("at",),
    "api_tokens": ("created_at", "last_used_at", "revoked_at"),
    "units": ("created_at",),
    "groups": ("created_at",),
    "users": ("created_at", "last_login_at"),
    "venues": ("created_at", "updated_at"),
    "closures": ("start_at", "end_at"),
}


def _to_micros(c: str) -> str:
    # Whole seconds (strftime's %s floors) plus the fraction's digits, padded to six.
    return (
        f"CAST(strftime('%s', {c}) AS INTEGER) * 1000000"
        f" + CAST(substr({c} || '000000', 21, 6) AS INTEGER)"
    )


def _to_text(c: str) -> str:
    # Floor division (SQLite's truncates towards zero) and the non-negative remainder.
    seconds = f"(CASE WHEN {c} < 0 THEN ({c} - 999999) / 1000000 ELSE {c} / 1000000 END)"
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch')"
        f" || printf('.%06d', {c} - {seconds} * 1000000)"
    )


def _convert(kind: str, convert: Callable[[str], str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in INSTANTS.items():
        sets = ", ".join(
            f"{c} = CASE WHEN typeof({c}) = '{kind}' THEN {convert(c)} ELSE {c} END"
            for c in columns
        )
        op.execute(f"UPDATE {table} SET {sets}")  # noqa: S608 - our own names


def upgrade() -> None:
    _convert("text", _to_micros)


def downgrade() -> None:
    _convert("integer", _to_text)
