"""venue_month_usage and venue_month_days: the statistics' month level (per venue × local
month, all booking units together: the sums, the heatmap and the cross-unit use packed in the
row; apart, the booked seconds by day packed), counted
from the daily rows by the same refresh; a venue's unit changing is logged in venue_day_stale
too (its shared seconds are counted against it). Filled from the daily rows here.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

COUNTS = ["bookings", "cancelled", "completed", "no_show"]


def upgrade() -> None:
    op.create_table(
        "venue_month_usage",
        sa.Column(
            "venue_id", sa.Integer(), sa.ForeignKey("venues.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("booked_s", sa.BigInteger(), nullable=False),
        sa.Column("realized_s", sa.BigInteger(), nullable=False),
        sa.Column("shared_s", sa.BigInteger(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS),
        sa.Column("heat", sa.LargeBinary(), nullable=False),
        sa.Column("shared", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("venue_id", "month"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "venue_month_days",
        sa.Column(
            "venue_id", sa.Integer(), sa.ForeignKey("venues.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("days", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("venue_id", "month"),
        sqlite_with_rowid=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER tr_venues_unit_day_stale AFTER UPDATE OF unit_id ON venues"
            " FOR EACH ROW EXECUTE FUNCTION venue_day_stale_mark()"
        )
    else:
        op.execute(
            "CREATE TRIGGER tr_venues_unit_day_stale AFTER UPDATE OF unit_id ON venues"
            " BEGIN INSERT INTO venue_day_stale (venue_id) VALUES (NEW.id); END"
        )
    from sqlalchemy.orm import Session

    from mapservice.stats.aggregates import rebuild_months

    session = Session(bind=op.get_bind())
    rebuild_months(session)
    session.flush()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tr_venues_unit_day_stale ON venues")
    else:
        op.execute("DROP TRIGGER IF EXISTS tr_venues_unit_day_stale")
    op.drop_table("venue_month_days")
    op.drop_table("venue_month_usage")
