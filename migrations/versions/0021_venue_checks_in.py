"""venues.checks_in: the venue's unit checks groups in, and the worker marks a booking nobody
checked in as no-show after the grace period (``mark_no_shows``). Set at the venues where
someone has already recorded a check-in or a no-show (what the job went by until now).

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-03 22:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD / DROP COLUMN on both databases: a batch's table copy on SQLite would drop
    # the venue's rules_version triggers.
    op.add_column(
        "venues", sa.Column("checks_in", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(
        "UPDATE venues SET checks_in = TRUE WHERE id IN (SELECT venue_id FROM bookings"
        " WHERE status IN ('completed', 'no_show') AND decided_by_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE venues DROP COLUMN checks_in")
