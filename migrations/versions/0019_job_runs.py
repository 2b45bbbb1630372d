"""the worker's scheduled jobs: ``job_leases`` (one runner per job) and ``job_runs`` (each
run's outcome)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:50:00
"""

import sqlalchemy as sa
from alembic import op

import mapservice.db

revision = "0019"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("expires_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("started_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("finished_at", mapservice.db.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_name_started_at", "job_runs", ["name", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_name_started_at", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_table("job_leases")
