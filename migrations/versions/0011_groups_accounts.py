"""groups and accounts from the browser: a group's contact e-mail, one-time set-password links

``groups.contact_email`` is added with ALTER TABLE ADD COLUMN on both databases (no batch
rebuild: on SQLite that would recreate ``groups`` under the bookings that reference it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:00:00
"""

import sqlalchemy as sa
from alembic import op

import mapservice.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "groups",
        sa.Column("contact_email", sa.String(length=120), nullable=False, server_default=""),
    )
    op.create_table(
        "password_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", mapservice.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", mapservice.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_password_links_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_links_token_hash")),
    )
    op.create_index(op.f("ix_password_links_user_id"), "password_links", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_password_links_user_id"), table_name="password_links")
    op.drop_table("password_links")
    with op.batch_alter_table("groups") as batch_op:
        batch_op.drop_column("contact_email")
