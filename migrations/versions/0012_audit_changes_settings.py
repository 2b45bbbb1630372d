"""the audit log keeps what changed and whose unit a record is; committee settings.

- ``audit_log.changes``: field → [before, after] as JSON (NULL for older entries, which the
  service still reads from their ``details``);
- ``audit_log.unit_id``: the member unit whose record an entry concerns (a unit secretary sees
  those of its unit), filled for the existing entries from the venue, group, unit or booking
  they name;
- ``committees.print_title`` (the printed map's title, "" = the standard one) and
  ``committees.venue_defaults`` (the rules new venues start with, JSON).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BACKFILL = {
    "venue": "SELECT unit_id FROM venues WHERE venues.id = audit_log.object_id",
    "group": "SELECT unit_id FROM groups WHERE groups.id = audit_log.object_id",
    "unit": "SELECT id FROM units WHERE units.id = audit_log.object_id",
    "booking": (
        "SELECT venues.unit_id FROM bookings JOIN venues ON venues.id = bookings.venue_id"
        " WHERE bookings.id = audit_log.object_id"
    ),
}


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("changes", sa.Text(), nullable=True))
    op.add_column("audit_log", sa.Column("unit_id", sa.Integer(), nullable=True))
    op.create_index("ix_audit_log_unit_id", "audit_log", ["unit_id"])
    for kind, sql in BACKFILL.items():
        op.execute(f"UPDATE audit_log SET unit_id = ({sql}) WHERE object_type = '{kind}'")
    op.add_column(
        "committees",
        sa.Column("print_title", sa.String(length=200), nullable=False, server_default=""),
    )
    op.add_column(
        "committees",
        sa.Column("venue_defaults", sa.Text(), nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): batch mode would rebuild the tables and,
    # with foreign keys on, fail on the rows that point at them.
    op.drop_index("ix_audit_log_unit_id", table_name="audit_log")
    for table, column in (
        ("committees", "venue_defaults"),
        ("committees", "print_title"),
        ("audit_log", "unit_id"),
        ("audit_log", "changes"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
