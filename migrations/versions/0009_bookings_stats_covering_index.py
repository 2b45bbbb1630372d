"""bookings' venue-time index covers the statistics' query: (venue, start, end) extended with
group, units, status and creation time, so that a year of bookings is read from the index
alone, not row by row from the table (bench/stats_bench.py, #5, SQLite: the bookings query
2.13 -> 1.47 s over 985,148 bookings on a slow 2-core machine). Every query that used the
index still can: its leading columns are the same.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 18:15:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NAME = "ix_bookings_venue_time"


def upgrade() -> None:
    op.drop_index(NAME, table_name="bookings")
    op.create_index(
        NAME,
        "bookings",
        ["venue_id", "start_at", "end_at", "group_id", "units", "status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="bookings")
    op.create_index(NAME, "bookings", ["venue_id", "start_at", "end_at"])
