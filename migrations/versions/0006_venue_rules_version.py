"""venue rules version: a counter the database bumps on every change to a venue, its opening
hours, closures or paired units (triggers), so the booking engine can validate a request
before taking the venue's lock and, under the lock, see in one read whether the rules it
checked are still the venue's rules; a partial index on pending holds (expiry under the lock)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 02:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHILDREN = ("opening_hours", "closures", "venue_paired_units")
EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    with op.batch_alter_table("venues") as batch:
        batch.add_column(
            sa.Column("rules_version", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index(
        "ix_bookings_pending_hold",
        "bookings",
        ["venue_id", "hold_expires_at"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION venue_rules_version_bump() RETURNS trigger AS $$"
            " BEGIN NEW.rules_version := OLD.rules_version + 1; RETURN NEW; END $$"
            " LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER tr_venues_rules_version BEFORE UPDATE ON venues"
            " FOR EACH ROW EXECUTE FUNCTION venue_rules_version_bump()"
        )
        op.execute(
            "CREATE FUNCTION venue_child_rules_version_bump() RETURNS trigger AS $$"
            " BEGIN"
            "  IF TG_OP <> 'INSERT' THEN"
            "   UPDATE venues SET rules_version = rules_version + 1 WHERE id = OLD.venue_id;"
            "  END IF;"
            "  IF TG_OP <> 'DELETE' THEN"
            "   UPDATE venues SET rules_version = rules_version + 1 WHERE id = NEW.venue_id;"
            "  END IF;"
            "  RETURN NULL;"
            " END $$ LANGUAGE plpgsql"
        )
        for table in CHILDREN:
            op.execute(
                f"CREATE TRIGGER tr_{table}_rules_version AFTER INSERT OR UPDATE OR DELETE"
                f" ON {table} FOR EACH ROW EXECUTE FUNCTION venue_child_rules_version_bump()"
            )
    else:
        op.execute(
            "CREATE TRIGGER tr_venues_rules_version AFTER UPDATE ON venues"
            " WHEN NEW.rules_version = OLD.rules_version"
            " BEGIN UPDATE venues SET rules_version = OLD.rules_version + 1"
            " WHERE id = NEW.id; END"
        )
        for table in CHILDREN:
            for event in EVENTS:
                rows = {"INSERT": ("NEW",), "UPDATE": ("OLD", "NEW"), "DELETE": ("OLD",)}[event]
                bump = "UPDATE venues SET rules_version = rules_version + 1 WHERE id = "
                body = " ".join(f"{bump}{row}.venue_id;" for row in rows)
                op.execute(
                    f"CREATE TRIGGER tr_{table}_rules_version_{event.lower()} AFTER {event}"
                    f" ON {table} BEGIN {body} END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CHILDREN:
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_rules_version ON {table}")
        op.execute("DROP TRIGGER IF EXISTS tr_venues_rules_version ON venues")
        op.execute("DROP FUNCTION IF EXISTS venue_child_rules_version_bump()")
        op.execute("DROP FUNCTION IF EXISTS venue_rules_version_bump()")
    else:
        for table in CHILDREN:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_rules_version_{event.lower()}")
        op.execute("DROP TRIGGER IF EXISTS tr_venues_rules_version")
    op.drop_index("ix_bookings_pending_hold", table_name="bookings")
    with op.batch_alter_table("venues") as batch:
        batch.drop_column("rules_version")
