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
        op.execute(
            "CREATE FUNCTION search_epoch_bump() RETURNS trigger AS $$"
            " BEGIN"
            "  INSERT INTO search_epoch (id, token)"
            "   VALUES (1, floor(random() * 9.2e18 - 4.6e18)::bigint)"
            "   ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;"
            "  RETURN NULL;"
            " END $$ LANGUAGE plpgsql"
        )
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER tr_{table}_search_epoch"
                f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION search_epoch_bump()"
            )
        op.execute(
            "INSERT INTO search_epoch (id, token)"
            " VALUES (1, floor(random() * 9.2e18 - 4.6e18)::bigint)"
        )
    else:
        for table in WATCHED:
            for event in EVENTS:
                op.execute(
                    f"CREATE TRIGGER tr_{table}_search_epoch_{event.lower()} AFTER {event}"
                    f" ON {table} BEGIN INSERT OR REPLACE INTO search_epoch (id, token)"
                    " VALUES (1, random()); END"
                )
        op.execute("INSERT INTO search_epoch (id, token) VALUES (1, random())")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_search_epoch ON {table}")
        op.execute("DROP FUNCTION IF EXISTS search_epoch_bump()")
    else:
        for table in WATCHED:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_search_epoch_{event.lower()}")
    op.drop_table("search_epoch")
    op.drop_index(NAME, table_name="booking_allocations")
