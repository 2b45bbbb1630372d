"""venue_year_usage: the statistics' year level (per venue × local calendar year, the month
rows of the year summed: the sums, the heatmap and the cross-unit use packed as in
venue_month_usage), counted from the daily rows by the same refresh, so that a year-long
period reads about three rows a venue (a year, less or plus the months at its edges) instead
of twelve. Filled from the daily rows here.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

COUNTS = ["bookings", "cancelled", "completed", "no_show"]


def upgrade() -> None:
    op.create_table(
        "venue_year_usage",
        sa.Column(
            "venue_id", sa.Integer(), sa.ForeignKey("venues.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("booked_s", sa.BigInteger(), nullable=False),
        sa.Column("realized_s", sa.BigInteger(), nullable=False),
        sa.Column("shared_s", sa.BigInteger(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS),
        sa.Column("heat", sa.LargeBinary(), nullable=False),
        sa.Column("shared", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("venue_id", "year"),
        sqlite_with_rowid=False,
    )
    import pandas as pd
    from sqlalchemy.orm import Session

    from mapservice.stats.aggregates import day_year, replace_years

    session = Session(bind=op.get_bind())
    rows = session.execute(sa.text("SELECT DISTINCT venue_id, day FROM venue_day_usage")).all()
    if rows:
        frame = pd.DataFrame(rows, columns=["venue_id", "day"]).astype("int64")
        frame["year"] = day_year(frame["day"].to_numpy())
        pairs = frame[["venue_id", "year"]].drop_duplicates(ignore_index=True)
        replace_years(session, pairs, clear=False)
    session.flush()


def downgrade() -> None:
    op.drop_table("venue_year_usage")
