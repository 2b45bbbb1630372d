"""venue_day_usage: per-venue daily aggregates of the bookings (what a whole day's statistics
are summed from), and venue_day_stale: what changed since they were counted, written by
triggers in the same transaction as the change (bookings; a venue's opening hours, closures,
committee; a group's unit; a committee's time zone). Filled from the existing rows here.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 17:00:00
"""

import sqlalchemy as sa
from alembic import op

from mapservice.db import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

HOURS = [f"h{h:02d}" for h in range(24)]
COUNTS = ["bookings", "cancelled", "completed", "no_show"]
BOOKING_COLUMNS = "venue_id, group_id, start_at, end_at, units, status"
INS = "INSERT INTO venue_day_stale (venue_id, group_id, start_at, end_at) VALUES"

#: (table, event, the rows written for it: SQL value lists of (venue_id, group_id, start_at,
#: end_at) over NEW / OLD), for the SQLite triggers; PostgreSQL's functions do the same.
SQLITE: list[tuple[str, str, str, list[str]]] = [
    ("bookings", "INSERT", "", ["NEW.venue_id, NULL, NEW.start_at, NEW.end_at"]),
    (
        "bookings",
        f"UPDATE OF {BOOKING_COLUMNS}",
        "",
        [
            "OLD.venue_id, NULL, OLD.start_at, OLD.end_at",
            "NEW.venue_id, NULL, NEW.start_at, NEW.end_at",
        ],
    ),
    ("bookings", "DELETE", "", ["OLD.venue_id, NULL, OLD.start_at, OLD.end_at"]),
    ("closures", "INSERT", "", ["NEW.venue_id, NULL, NEW.start_at, NEW.end_at"]),
    (
        "closures",
        "UPDATE",
        "",
        [
            "OLD.venue_id, NULL, OLD.start_at, OLD.end_at",
            "NEW.venue_id, NULL, NEW.start_at, NEW.end_at",
        ],
    ),
    ("closures", "DELETE", "", ["OLD.venue_id, NULL, OLD.start_at, OLD.end_at"]),
    ("opening_hours", "INSERT", "", ["NEW.venue_id, NULL, NULL, NULL"]),
    (
        "opening_hours",
        "UPDATE",
        "",
        ["OLD.venue_id, NULL, NULL, NULL", "NEW.venue_id, NULL, NULL, NULL"],
    ),
    ("opening_hours", "DELETE", "", ["OLD.venue_id, NULL, NULL, NULL"]),
    ("groups", "UPDATE OF unit_id", "", ["NULL, NEW.id, NULL, NULL"]),
    ("venues", "UPDATE OF committee_id", "", ["NEW.id, NULL, NULL, NULL"]),
]

PG_FUNCTION = """
CREATE FUNCTION venue_day_stale_mark() RETURNS trigger AS $$
BEGIN
  IF TG_TABLE_NAME = 'bookings' OR TG_TABLE_NAME = 'closures' THEN
    IF TG_OP <> 'INSERT' THEN
      INSERT INTO venue_day_stale (venue_id, start_at, end_at)
        VALUES (OLD.venue_id, OLD.start_at, OLD.end_at);
    END IF;
    IF TG_OP <> 'DELETE' THEN
      INSERT INTO venue_day_stale (venue_id, start_at, end_at)
        VALUES (NEW.venue_id, NEW.start_at, NEW.end_at);
    END IF;
  ELSIF TG_TABLE_NAME = 'opening_hours' THEN
    IF TG_OP <> 'INSERT' THEN
      INSERT INTO venue_day_stale (venue_id) VALUES (OLD.venue_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
      INSERT INTO venue_day_stale (venue_id) VALUES (NEW.venue_id);
    END IF;
  ELSIF TG_TABLE_NAME = 'groups' THEN
    INSERT INTO venue_day_stale (group_id) VALUES (NEW.id);
  ELSIF TG_TABLE_NAME = 'venues' THEN
    INSERT INTO venue_day_stale (venue_id) VALUES (NEW.id);
  ELSIF TG_TABLE_NAME = 'committees' THEN
    INSERT INTO venue_day_stale (venue_id) SELECT id FROM venues WHERE committee_id = NEW.id;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql
"""

PG_TRIGGERS = {
    "bookings": f"AFTER INSERT OR DELETE OR UPDATE OF {BOOKING_COLUMNS}",
    "closures": "AFTER INSERT OR UPDATE OR DELETE",
    "opening_hours": "AFTER INSERT OR UPDATE OR DELETE",
    "groups": "AFTER UPDATE OF unit_id",
    "venues": "AFTER UPDATE OF committee_id",
    "committees": "AFTER UPDATE OF timezone",
}


def _sqlite_name(table: str, event: str) -> str:
    return f"tr_{table}_day_stale_{event.split()[0].lower()}"


def upgrade() -> None:
    op.create_table(
        "venue_day_usage",
        sa.Column(
            "venue_id", sa.Integer(), sa.ForeignKey("venues.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("group_unit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("booked_s", sa.BigInteger(), nullable=False),
        sa.Column("realized_s", sa.BigInteger(), nullable=False),
        *(sa.Column(h, sa.BigInteger(), nullable=False) for h in HOURS),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS),
        sa.PrimaryKeyConstraint("venue_id", "day", "group_unit_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "venue_day_stale",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("venue_id", sa.Integer()),
        sa.Column("group_id", sa.Integer()),
        sa.Column("start_at", UTCDateTime()),
        sa.Column("end_at", UTCDateTime()),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table, when in PG_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER tr_{table}_day_stale {when} ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION venue_day_stale_mark()"
            )
    else:
        for table, event, _when, rows in SQLITE:
            body = " ".join(f"{INS} ({row});" for row in rows)
            op.execute(
                f"CREATE TRIGGER {_sqlite_name(table, event)} AFTER {event} ON {table}"
                f" BEGIN {body} END"
            )
        op.execute(
            "CREATE TRIGGER tr_committees_day_stale_update AFTER UPDATE OF timezone ON committees"
            " BEGIN INSERT INTO venue_day_stale (venue_id)"
            " SELECT id FROM venues WHERE committee_id = NEW.id; END"
        )
    # Fill from the existing rows: everything is stale, then counted (as `mapservice stats
    # rebuild` does).
    op.execute("INSERT INTO venue_day_stale (venue_id) VALUES (NULL)")
    from sqlalchemy.orm import Session

    from mapservice.stats.aggregates import refresh

    session = Session(bind=op.get_bind())
    refresh(session)
    session.flush()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_day_stale ON {table}")
        op.execute("DROP FUNCTION IF EXISTS venue_day_stale_mark()")
    else:
        for table, event, _when, _rows in SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {_sqlite_name(table, event)}")
        op.execute("DROP TRIGGER IF EXISTS tr_committees_day_stale_update")
    op.drop_table("venue_day_stale")
    op.drop_table("venue_day_usage")
