"""What keeps each process's mirror of live allocations current
(mapservice.booking.heldmirror): an availability search then reads no allocation from the
database.

PostgreSQL: statement triggers on ``booking_allocations`` (insert, update, delete) and on
``bookings`` (a change of status, hold or venue) send the venues changed on the channel
``mapservice_held`` (``pg_notify``: delivered at commit, in commit order, once per venue and
transaction); ``search_epoch`` sends ``epoch`` when its token changes, a TRUNCATE ``all``.

SQLite (no notifications; writers take turns): ``held_changes`` holds, per venue, the
sequence number of its last change, written by row triggers in the writing transaction; a
search reads the largest in the query that reads the catalogue's token, and the venues
changed since its mirror's number when it differs. The number is never below the time in
milliseconds, so it never comes back after the table is emptied.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

CHANNEL = "mapservice_held"

# SQLite: the venue's row set to the next number (UPDATE, then INSERT when missing: no
# conflict clause, which SQLite does not honour in a trigger fired by a foreign key's action;
# see migration 0023).
_NEXT = (
    "max((SELECT coalesce(max(seq), 0) FROM held_changes) + 1,"
    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"
)


def _touch(venue: str) -> str:
    return (
        f" UPDATE held_changes SET seq = {_NEXT} WHERE venue_id = {venue};"  # noqa: S608
        f" INSERT INTO held_changes (venue_id, seq) SELECT {venue}, {_NEXT}"
        f"  WHERE NOT EXISTS (SELECT 1 FROM held_changes WHERE venue_id = {venue});"
    )


SQLITE_TRIGGERS = {
    "tr_booking_allocations_held_insert": (
        f"AFTER INSERT ON booking_allocations BEGIN{_touch('NEW.venue_id')} END"
    ),
    "tr_booking_allocations_held_delete": (
        f"AFTER DELETE ON booking_allocations BEGIN{_touch('OLD.venue_id')} END"
    ),
    "tr_booking_allocations_held_update": (
        "AFTER UPDATE ON booking_allocations BEGIN"
        f"{_touch('OLD.venue_id')}{_touch('NEW.venue_id')} END"
    ),
    "tr_bookings_held_update": (
        "AFTER UPDATE OF status, hold_expires_at, venue_id ON bookings"
        " WHEN OLD.status IS NOT NEW.status OR OLD.hold_expires_at IS NOT NEW.hold_expires_at"
        "  OR OLD.venue_id IS NOT NEW.venue_id"
        f" BEGIN{_touch('OLD.venue_id')}{_touch('NEW.venue_id')} END"
    ),
}

# PostgreSQL: (trigger, table, event, transition tables, function).
PG_TRIGGERS = (
    ("tr_booking_allocations_held_insert", "booking_allocations", "INSERT",
     "NEW TABLE AS changed", "held_notify_rows"),
    ("tr_booking_allocations_held_delete", "booking_allocations", "DELETE",
     "OLD TABLE AS changed", "held_notify_rows"),
    ("tr_booking_allocations_held_update", "booking_allocations", "UPDATE",
     "OLD TABLE AS old_rows NEW TABLE AS changed", "held_notify_rows"),
    ("tr_bookings_held_update", "bookings", "UPDATE",
     "OLD TABLE AS old_rows NEW TABLE AS changed", "held_notify_bookings"),
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "held_changes",
        sa.Column("venue_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_held_changes_seq", "held_changes", ["seq"])
    if op.get_bind().dialect.name != "postgresql":
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        return
    op.execute(
        "CREATE FUNCTION held_notify_rows() RETURNS trigger AS $$"  # noqa: S608
        " BEGIN"
        "  IF TG_OP = 'UPDATE' THEN"
        f"   PERFORM pg_notify('{CHANNEL}', v::text) FROM"
        "    (SELECT venue_id AS v FROM changed UNION SELECT venue_id FROM old_rows) s;"
        "  ELSE"
        f"   PERFORM pg_notify('{CHANNEL}', v::text) FROM"
        "    (SELECT DISTINCT venue_id AS v FROM changed) s;"
        "  END IF;"
        "  RETURN NULL;"
        " END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE FUNCTION held_notify_bookings() RETURNS trigger AS $$"  # noqa: S608
        " BEGIN"
        f"  PERFORM pg_notify('{CHANNEL}', v::text) FROM ("
        "   SELECT n.venue_id AS v FROM changed n JOIN old_rows o ON o.id = n.id"
        "    WHERE n.status IS DISTINCT FROM o.status"
        "     OR n.hold_expires_at IS DISTINCT FROM o.hold_expires_at"
        "     OR n.venue_id IS DISTINCT FROM o.venue_id"
        "   UNION"
        "   SELECT o.venue_id FROM changed n JOIN old_rows o ON o.id = n.id"
        "    WHERE n.venue_id IS DISTINCT FROM o.venue_id) s;"
        "  RETURN NULL;"
        " END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE FUNCTION held_notify_word() RETURNS trigger AS $$"
        " BEGIN"
        f"  PERFORM pg_notify('{CHANNEL}', TG_ARGV[0]);"
        "  RETURN NULL;"
        " END $$ LANGUAGE plpgsql"
    )
    for name, table, event, tables, function in PG_TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    for table in ("booking_allocations", "bookings"):
        op.execute(
            f"CREATE TRIGGER tr_{table}_held_truncate AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION held_notify_word('all')"
        )
    op.execute(
        "CREATE TRIGGER tr_search_epoch_held AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        " ON search_epoch FOR EACH STATEMENT EXECUTE FUNCTION held_notify_word('epoch')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table, *_ in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for table in ("booking_allocations", "bookings"):
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_held_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS tr_search_epoch_held ON search_epoch")
        for function in ("held_notify_rows", "held_notify_bookings", "held_notify_word"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_held_changes_seq", table_name="held_changes")
    op.drop_table("held_changes")
