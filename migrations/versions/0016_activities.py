"""activities and their sign-ups (活动 · 举手加入): ``activities``, ``activity_cohosts``,
``activity_signups``

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-03 19:20:00
"""

import sqlalchemy as sa
from alembic import op

import mapservice.db

revision = "0016"
down_revision = "0017"
branch_labels = None
depends_on = None

KINDS = "'reading_club', 'social_mixer', 'salon', 'volunteer', 'sports', 'study', 'other'"
STATUSES = "'draft', 'open', 'full', 'closed', 'done', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("committee_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("lead_unit_id", sa.Integer(), nullable=False),
        sa.Column("start_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("end_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("signup_deadline", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cancel_reason", sa.String(length=200), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("site_lon", sa.Float(), nullable=True),
        sa.Column("site_lat", sa.Float(), nullable=True),
        sa.Column("site_area", sa.Text(), nullable=True),
        sa.Column("site_name", sa.String(length=120), nullable=False),
        sa.Column("site_street", sa.String(length=120), nullable=False),
        sa.Column("plan_entry_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_activities_range")),
        sa.CheckConstraint("capacity >= 1", name=op.f("ck_activities_capacity")),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_activities_kind")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_activities_status")),
        sa.CheckConstraint(
            "(venue_id IS NOT NULL AND booking_id IS NOT NULL)"
            " OR (venue_id IS NULL AND booking_id IS NULL"
            " AND site_lon IS NOT NULL AND site_lat IS NOT NULL)",
            name=op.f("ck_activities_place"),
        ),
        sa.ForeignKeyConstraint(
            ["committee_id"], ["committees.id"], name=op.f("fk_activities_committee_id_committees")
        ),
        sa.ForeignKeyConstraint(
            ["lead_unit_id"], ["units.id"], name=op.f("fk_activities_lead_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venues.id"], name=op.f("fk_activities_venue_id_venues")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_activities_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_activities_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["plan_entry_id"],
            ["plan_entries.id"],
            name=op.f("fk_activities_plan_entry_id_plan_entries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index(
        "ix_activities_committee_start", "activities", ["committee_id", "start_at"], unique=False
    )
    for column in ("lead_unit_id", "venue_id", "plan_entry_id"):
        op.create_index(op.f(f"ix_activities_{column}"), "activities", [column], unique=False)
    op.create_table(
        "activity_cohosts",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_cohosts_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_activity_cohosts_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("activity_id", "unit_id", name=op.f("pk_activity_cohosts")),
    )
    op.create_table(
        "activity_signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("attended", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("headcount >= 1", name=op.f("ck_activity_signups_headcount")),
        sa.CheckConstraint(
            "attended IS NULL OR attended >= 0", name=op.f("ck_activity_signups_attended")
        ),
        sa.CheckConstraint(
            "unit_id IS NOT NULL OR group_id IS NOT NULL", name=op.f("ck_activity_signups_who")
        ),
        sa.CheckConstraint(
            "state IN ('confirmed', 'waitlisted', 'withdrawn')",
            name=op.f("ck_activity_signups_state"),
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_signups_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_activity_signups_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_activity_signups_group_id_groups")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_activity_signups_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_signups")),
        sa.UniqueConstraint("activity_id", "seq", name=op.f("uq_activity_signups_activity_id")),
    )
    op.create_index(
        "ix_activity_signups_activity_state",
        "activity_signups",
        ["activity_id", "state", "seq"],
        unique=False,
    )
    for column in ("unit_id", "group_id"):
        op.create_index(
            op.f(f"ix_activity_signups_{column}"), "activity_signups", [column], unique=False
        )


def downgrade() -> None:
    op.drop_table("activity_signups")
    op.drop_table("activity_cohosts")
    op.drop_table("activities")
