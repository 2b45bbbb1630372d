"""Indexes on the statistics levels' time column (venue_day_usage.day,
venue_month_usage.month, venue_year_usage.year): how many rows a range of days, months or
years holds is counted from the index alone, so that a period's partial months and years are
read from whichever side holds fewer rows (the days inside, or the month less the days
outside) and a range holding none is not read at all (mapservice.stats.monthly.split).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 06:45:00
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_venue_day_usage_day", "venue_day_usage", "day"),
    ("ix_venue_month_usage_month", "venue_month_usage", "month"),
    ("ix_venue_year_usage_year", "venue_year_usage", "year"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
