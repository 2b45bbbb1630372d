"""venue ranges as the venue spec declares them (core/venue_spec.py): the database now also
bounds the maximum headcount (1-10000), the weekly quota (1-168 hours) and the durations
(15-1440 minutes), as the form, the import and the API always did. A row outside them (none
can have come through the service) stops the upgrade with its ids.

SQLite cannot alter a CHECK constraint, and rebuilding ``venues`` (batch mode) would, with
foreign keys on, cascade into its opening hours and drop its triggers; so the table's stored
definition is edited in place, the procedure SQLite documents for changing constraints
(https://www.sqlite.org/lang_altertable.html#otheralter), after checking every row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:10:00
"""

import re

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD = {
    "ck_venues_max_headcount": "max_headcount IS NULL OR max_headcount >= 1",
    "ck_venues_quota": "weekly_quota_hours IS NULL OR weekly_quota_hours >= 1",
    "ck_venues_durations": (
        "min_duration_minutes >= slot_minutes AND max_duration_minutes >= min_duration_minutes"
    ),
}
NEW = {
    "ck_venues_max_headcount": "max_headcount IS NULL OR max_headcount BETWEEN 1 AND 10000",
    "ck_venues_quota": "weekly_quota_hours IS NULL OR weekly_quota_hours BETWEEN 1 AND 168",
    "ck_venues_durations": (
        "min_duration_minutes >= slot_minutes AND max_duration_minutes >= min_duration_minutes"
        " AND min_duration_minutes BETWEEN 15 AND 1440"
        " AND max_duration_minutes BETWEEN 15 AND 1440"
    ),
}


def _refuse_bad_rows(checks: dict[str, str]) -> None:
    bind = op.get_bind()
    for name, sql in checks.items():
        bad = [row[0] for row in bind.exec_driver_sql(f"SELECT id FROM venues WHERE NOT ({sql})")]
        if bad:
            raise RuntimeError(
                f"venues {bad[:20]} break {name} ({sql}); correct them, then upgrade again"
            )


def _sqlite_replace(checks: dict[str, str]) -> None:
    """Rewrite the CHECKs named in ``checks`` in the table's stored CREATE TABLE."""
    bind = op.get_bind()
    (sql,) = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'venues'"
    ).one()
    for name, text in checks.items():
        match = re.search(rf"CONSTRAINT {name} CHECK \(", sql)
        if match is None:
            raise RuntimeError(f"venues has no constraint {name}")
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            end += 1
        sql = f"{sql[: match.start()]}CONSTRAINT {name} CHECK ({text}){sql[end:]}"
    (version,) = bind.exec_driver_sql("PRAGMA schema_version").one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'venues'", (sql,)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    (result,) = bind.exec_driver_sql("PRAGMA integrity_check").one()
    if result != "ok":  # pragma: no cover - the rows were checked above
        raise RuntimeError(f"venues: integrity check after the constraint change: {result}")


def _replace(checks: dict[str, str]) -> None:
    _refuse_bad_rows(checks)
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_replace(checks)
        return
    for name, sql in checks.items():
        op.execute(f"ALTER TABLE venues DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE venues ADD CONSTRAINT {name} CHECK ({sql})")


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    _replace(OLD)
