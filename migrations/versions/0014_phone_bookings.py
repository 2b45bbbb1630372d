"""phone bookings (一个电话) and notices for a unit's secretaries.

- ``bookings.caller_name`` / ``bookings.caller_phone``: who called, for a booking a secretary
  or the admin took by phone (NULL otherwise);
- ``notifications.unit_id``: a notice for the secretaries of a unit (a new pending request
  to one of its venues); ``notifications.group_id`` becomes nullable, exactly one of the two
  is set (check ``recipient``).

Revision ID: 0014
Revises: 0018
Create Date: 2026-12-03 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("caller_name", sa.String(length=60), nullable=True))
    op.add_column("bookings", sa.Column("caller_phone", sa.String(length=30), nullable=True))
    # Nothing refers to notifications: rebuilding the table (SQLite) is safe.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
        batch.alter_column("group_id", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key(
            op.f("fk_notifications_unit_id_units"), "units", ["unit_id"], ["id"]
        )
        batch.create_index(op.f("ix_notifications_unit_id"), ["unit_id"], unique=False)
        batch.create_check_constraint(
            op.f("ck_notifications_recipient"), "(group_id IS NULL) <> (unit_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE group_id IS NULL")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(op.f("ck_notifications_recipient"), type_="check")
        batch.drop_index(op.f("ix_notifications_unit_id"))
        batch.drop_constraint(op.f("fk_notifications_unit_id_units"), type_="foreignkey")
        batch.drop_column("unit_id")
        batch.alter_column("group_id", existing_type=sa.Integer(), nullable=False)
    for column in ("caller_phone", "caller_name"):
        op.execute(f"ALTER TABLE bookings DROP COLUMN {column}")
