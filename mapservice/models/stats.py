"""The statistics' per-venue daily aggregates (``docs/stats.md``, "Daily aggregates") and
the log of what changed since they were counted.

``venue_day_usage`` holds, per venue, local day (in its committee's time zone) and the unit of
the group that booked (0: a group of no unit), what the figures of whole days are summed from.
``venue_day_stale`` is written by database triggers (migration 0022) in the same transaction as
every change the aggregates depend on — a booking inserted, changed or deleted, a venue's
opening hours or closures, a group's unit, a venue's committee or a committee's time zone —
and names what must be counted again; :func:`mapservice.stats.aggregates.refresh` recounts it
from the rows and clears it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, Table

from mapservice.db import Base, UTCDateTime

#: The heatmap's columns: booked unit-seconds by local hour of the day.
HOUR_COLUMNS = tuple(f"h{h:02d}" for h in range(24))
#: Bookings that start on the day: all, and by the statuses the figures count.
COUNT_COLUMNS = ("bookings", "cancelled", "completed", "no_show")

venue_day_usage = Table(
    "venue_day_usage",
    Base.metadata,
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
    #: Local days since 1970-01-01 in the committee's time zone.
    Column("day", Integer, primary_key=True, autoincrement=False),
    #: The unit of the group that booked; 0 for a group of no unit.
    Column("group_unit_id", Integer, primary_key=True, autoincrement=False),
    #: Confirmed and completed bookings: unit-seconds inside the day and the open intervals.
    Column("booked_s", BigInteger, nullable=False),
    #: The same, completed only.
    Column("realized_s", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in HOUR_COLUMNS),
    *(Column(name, Integer, nullable=False) for name in COUNT_COLUMNS),
    #: How many rows a range of days holds, counted from this index alone (migration 0026):
    #: :func:`mapservice.stats.monthly.split` reads a month's edge by whichever side holds
    #: fewer rows, and skips a range that holds none.
    Index("ix_venue_day_usage_day", "day"),
    # SQLite: rows stored in key order (a year of venues is read as ranges of the key).
    sqlite_with_rowid=False,
)

venue_day_stale = Table(
    "venue_day_stale",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    #: The venue whose days meeting ``[start_at, end_at)`` (all its days when both are NULL)
    #: are stale; NULL with ``group_id``: the days of that group's bookings; both NULL with no
    #: range: everything.
    Column("venue_id", Integer),
    Column("group_id", Integer),
    Column("start_at", UTCDateTime),
    Column("end_at", UTCDateTime),
)


def _summed_columns() -> list[Column[Any]]:
    """The values of a month or year row (fresh columns for each table)."""
    return [
        Column("booked_s", BigInteger, nullable=False),
        Column("realized_s", BigInteger, nullable=False),
        #: Booked by groups not of the venue's unit (as counted: a venue's unit changing is
        #: logged too).
        Column("shared_s", BigInteger, nullable=False),
        *(Column(name, Integer, nullable=False) for name in COUNT_COLUMNS),
        #: The heatmap: records (slot uint8 = weekday × 24 + local hour, Monday 0;
        #: unit-seconds int64 little-endian), the nonzero slots in slot order.
        Column("heat", LargeBinary, nullable=False),
        #: Cross-unit use: records (the booking group's unit int32, never 0 nor the venue's;
        #: unit-seconds int64), in unit order.
        Column("shared", LargeBinary, nullable=False),
    ]


#: The month level (migration 0024): what a year's figures are summed from, one row per venue
#: and local month (months since 1970-01 in the committee's time zone), all booking units
#: together; recounted from ``venue_day_usage`` by the same refresh (the months of the days
#: it recounts), so it equals the daily rows summed. The heatmap and the cross-unit use are
#: packed arrays in the row (:mod:`mapservice.stats.monthly`): a year of a city is read as
#: venues × 12 rows, however many units booked where.
venue_month_usage = Table(
    "venue_month_usage",
    Base.metadata,
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
    Column("month", Integer, primary_key=True, autoincrement=False),
    *_summed_columns(),
    Index("ix_venue_month_usage_month", "month"),  # rows per month, as the day's (0026)
    sqlite_with_rowid=False,
)

#: The year level: per venue and local calendar year (``year``: e.g. 2026), the month rows of
#: that year summed (sums, heatmap and cross-unit use packed as in ``venue_month_usage``),
#: recounted by the same refresh. A year-long period is read as about three rows a venue (a
#: year, less or plus the months at its edges), not twelve.
venue_year_usage = Table(
    "venue_year_usage",
    Base.metadata,
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    *_summed_columns(),
    Index("ix_venue_year_usage_year", "year"),  # rows per year, as the day's (0026)
    sqlite_with_rowid=False,
)

#: The month's booked seconds by day (the weekly trend), apart so that the figures without
#: a trend read narrower rows: records (local day int32, booked int64, realized int64), the
#: days with any, in day order.
venue_month_days = Table(
    "venue_month_days",
    Base.metadata,
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
    Column("month", Integer, primary_key=True, autoincrement=False),
    Column("days", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
