"""availability search (bench #2): allocations longer than a day get their own partial index,
so a search reads a window's allocations over a day's width of (venue, start, end) plus the
few long ones, not every allocation of the venue that starts before the window ends; and the
search epoch, a token the database changes (triggers) with every change to a venue, its
opening hours or closures, a unit or a committee, so each process may keep what a search
reads of venues (mapservice.booking.catalogue) and know in one read whether it still holds.
Bookings are never kept: a search reads them every time.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 16:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

NAME = "ix_booking_allocations_long"
# The same text as mapservice.models.bookings.LONG_ALLOCATION_SQL: a query uses a partial
# index only when its WHERE repeats the index's condition.
SQLITE = "end_at - start_at > 86400000000"
POSTGRESQL = "end_at - start_at > interval '1 day'"

#: What a search keeps of venues is read from these tables (mapservice.booking.catalogue).
WATCHED = ("venues", "opening_hours", "closures", "units", "committees")
EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    op.create_index(
        NAME,
        "booking_allocations",
        ["venue_id", "start_at", "end_at"],
        sqlite_where=sa.text(SQLITE),
        postgresql_where=sa.text(POSTGRESQL),
    )
    op.create_table(
        "search_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_epoch")),
    )
    # A random token, never a counter: a change rolled back must not come back as the token
    # of another change. Upserted, so a table emptied (tests) starts again at the next change.
    if op.get_bind().dialect.name == "postgresql":
        # The token is replaced once per writing transaction, at its commit: from a
        # constraint trigger deferred to the commit, after every other lock the transaction
        # takes, so the token's row is locked only for the commit itself and never while
        # waiting for another row (two writers editing venues in opposite orders wait only on
        # each other's rows, as without the token), and the new token becomes visible with
        # the data, in the same commit. Until then the writing transaction itself reads no
        # token (search_dirty, set at once by a statement trigger that takes no lock), so it
        # neither answers from nor keeps what it has not committed.
        op.execute(
            "CREATE FUNCTION search_epoch_bump() RETURNS trigger AS $$"
            " BEGIN"
            "  IF current_setting('mapservice.search_epoch_bumped', true)"
            "     IS DISTINCT FROM '1' THEN"
            "   PERFORM set_config('mapservice.search_epoch_bumped', '1', true);"
            "   INSERT INTO search_epoch (id, token)"
            "    VALUES (1, floor(random() * 9.2e18 - 4.6e18)::bigint)"
            "    ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;"
            "  END IF;"
            "  RETURN NULL;"
            " END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE FUNCTION search_epoch_dirty() RETURNS trigger AS $$"
            " BEGIN"
            "  PERFORM set_config('mapservice.search_dirty', '1', true);"
            "  RETURN NULL;"
            " END $$ LANGUAGE plpgsql"
        )
        for table in WATCHED:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER tr_{table}_search_epoch"
                f" AFTER INSERT OR UPDATE OR DELETE ON {table}"
                " DEFERRABLE INITIALLY DEFERRED"
                " FOR EACH ROW EXECUTE FUNCTION search_epoch_bump()"
            )
            op.execute(
                f"CREATE TRIGGER tr_{table}_search_dirty"
                f" AFTER INSERT OR UPDATE OR DELETE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION search_epoch_dirty()"
            )
            # TRUNCATE (no constraint trigger for it) locks the whole table anyway.
            op.execute(
                f"CREATE TRIGGER tr_{table}_search_epoch_truncate AFTER TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION search_epoch_bump()"
            )
        op.execute(
            "INSERT INTO search_epoch (id, token)"
            " VALUES (1, floor(random() * 9.2e18 - 4.6e18)::bigint)"
        )
    else:
        for table in WATCHED:
            for event in EVENTS:
                # UPDATE, then INSERT only when the row is missing: no conflict clause, which
                # SQLite does not honour in a trigger fired by a foreign key's action (deleting
                # an area sets its venues' street to NULL: INSERT OR REPLACE then failed with
                # "UNIQUE constraint failed: search_epoch.id").
                op.execute(
                    f"CREATE TRIGGER tr_{table}_search_epoch_{event.lower()} AFTER {event}"
                    f" ON {table} BEGIN"
                    " UPDATE search_epoch SET token = random() WHERE id = 1;"
                    " INSERT INTO search_epoch (id, token) SELECT 1, random()"
                    "  WHERE NOT EXISTS (SELECT 1 FROM search_epoch WHERE id = 1);"
                    " END"
                )
        op.execute("INSERT INTO search_epoch (id, token) VALUES (1, random())")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            for name in ("search_epoch", "search_dirty", "search_epoch_truncate"):
                op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_{name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS search_epoch_bump()")
        op.execute("DROP FUNCTION IF EXISTS search_epoch_dirty()")
    else:
        for table in WATCHED:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_search_epoch_{event.lower()}")
    op.drop_table("search_epoch")
    op.drop_index(NAME, table_name="booking_allocations")
