"""the year's activity list (活动清单) and rotation, units' plan preferences, pairing (结对挂钩):
``plans``, ``plan_entries``, ``unit_plan_preferences``, ``pairings``

Revision ID: 0017
Revises: 0018
Create Date: 2026-12-03 19:10:40.239800
"""

import sqlalchemy as sa
from alembic import op

import mapservice.db

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("committee_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("period IN ('month', 'week')", name=op.f("ck_plans_period")),
        sa.CheckConstraint("status IN ('draft', 'published')", name=op.f("ck_plans_status")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name=op.f("ck_plans_year")),
        sa.ForeignKeyConstraint(
            ["committee_id"], ["committees.id"], name=op.f("fk_plans_committee_id_committees")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("committee_id", "year", name=op.f("uq_plans_committee_id")),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_committee_id"), ["committee_id"], unique=False)

    op.create_table(
        "pairings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("committee_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("partner_unit_id", sa.Integer(), nullable=True),
        sa.Column("partner_area_id", sa.Integer(), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(partner_unit_id IS NULL) <> (partner_area_id IS NULL)",
            name=op.f("ck_pairings_one_partner"),
        ),
        sa.CheckConstraint("end_on IS NULL OR end_on >= start_on", name=op.f("ck_pairings_dates")),
        sa.CheckConstraint(
            "partner_unit_id IS NULL OR partner_unit_id <> unit_id",
            name=op.f("ck_pairings_not_self"),
        ),
        sa.ForeignKeyConstraint(
            ["committee_id"], ["committees.id"], name=op.f("fk_pairings_committee_id_committees")
        ),
        sa.ForeignKeyConstraint(
            ["partner_area_id"],
            ["areas.id"],
            name=op.f("fk_pairings_partner_area_id_areas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_unit_id"],
            ["units.id"],
            name=op.f("fk_pairings_partner_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_pairings_unit_id_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pairings")),
    )
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pairings_committee_id"), ["committee_id"], unique=False
        )
        batch_op.create_index("ix_pairings_partner_unit_id", ["partner_unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pairings_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "plan_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("led_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('reading_club', 'social_mixer', 'salon', 'volunteer', 'sports', 'study', "
            "'other')",
            name=op.f("ck_plan_entries_kind"),
        ),
        sa.CheckConstraint("period BETWEEN 1 AND 53", name=op.f("ck_plan_entries_period")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_entries_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_plan_entries_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_entries")),
    )
    with op.batch_alter_table("plan_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_entries_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plan_entries_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "unit_plan_preferences",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("preferred_months", sa.String(length=40), nullable=False),
        sa.Column("blackout_months", sa.String(length=40), nullable=False),
        sa.Column("preferred_kinds", sa.String(length=200), nullable=False),
        sa.Column("updated_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_unit_plan_preferences_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_plan_preferences")),
    )


def downgrade() -> None:
    op.drop_table("unit_plan_preferences")
    with op.batch_alter_table("plan_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_entries_unit_id"))
        batch_op.drop_index(batch_op.f("ix_plan_entries_plan_id"))

    op.drop_table("plan_entries")
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairings_unit_id"))
        batch_op.drop_index("ix_pairings_partner_unit_id")
        batch_op.drop_index(batch_op.f("ix_pairings_committee_id"))

    op.drop_table("pairings")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_committee_id"))

    op.drop_table("plans")
