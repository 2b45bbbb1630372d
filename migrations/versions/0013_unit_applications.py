"""units' applications to join a committee (成员准入): ``unit_applications``

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:00:00
"""

import sqlalchemy as sa
from alembic import op

import mapservice.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("committee_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("contact_name", sa.String(length=60), nullable=False),
        sa.Column("phone", sa.String(length=30), nullable=False),
        sa.Column("email", sa.String(length=120), nullable=False),
        sa.Column("venues_plan", sa.Text(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_at", mapservice.db.UTCDateTime(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'admitted', 'declined')",
            name=op.f("ck_unit_applications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["committee_id"],
            ["committees.id"],
            name=op.f("fk_unit_applications_committee_id_committees"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_unit_applications_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_unit_applications_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_unit_applications_account_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_applications")),
    )
    for column in ("committee_id", "unit_id", "client_address", "submitted_at"):
        op.create_index(
            op.f(f"ix_unit_applications_{column}"), "unit_applications", [column], unique=False
        )


def downgrade() -> None:
    for column in ("committee_id", "unit_id", "client_address", "submitted_at"):
        op.drop_index(op.f(f"ix_unit_applications_{column}"), table_name="unit_applications")
    op.drop_table("unit_applications")
