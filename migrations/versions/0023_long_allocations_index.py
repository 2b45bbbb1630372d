"""allocations longer than a day get their own partial index, so that the availability search
reads a window's allocations over a day's width of (venue, start, end) plus the few long ones,
not every allocation of the venue that starts before the window ends
(mapservice.booking.availability, bench #2)

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-04 16:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None

NAME = "ix_booking_allocations_long"
# The same text as mapservice.models.bookings.LONG_ALLOCATION_SQL: a query uses a partial
# index only when its WHERE repeats the index's condition.
SQLITE = "end_at - start_at > 86400000000"
POSTGRESQL = "end_at - start_at > interval '1 day'"


def upgrade() -> None:
    op.create_index(
        NAME,
        "booking_allocations",
        ["venue_id", "start_at", "end_at"],
        sqlite_where=sa.text(SQLITE),
        postgresql_where=sa.text(POSTGRESQL),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="booking_allocations")
