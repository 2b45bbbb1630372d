"""The search epoch: a token the database changes with every change to what a search keeps of
venues (migration 0023's triggers on venues, opening hours, closures, units, committees)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, case, func, null, true
from sqlalchemy.orm import Mapped, mapped_column

from mapservice.db import Base


class SearchEpoch(Base):
    """One row (id 1): ``token``, random, replaced by the triggers on every change (a counter
    could come back after a rollback); absent after the table is emptied until the next
    change. Written only by the database."""

    __tablename__ = "search_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[int] = mapped_column(BigInteger)


def token_seen(dialect: str) -> ColumnElement[Any]:
    """The token as a search may use it, in a query on :class:`SearchEpoch`: on PostgreSQL
    NULL in a transaction that has itself changed what the token watches (migration 0023's
    ``search_dirty``: its token is replaced only at its commit), so that such a transaction
    neither answers from the venues kept nor keeps what it has not committed. On SQLite the
    token is replaced in the writing transaction itself (writers take turns there)."""
    if dialect != "postgresql":
        return SearchEpoch.__table__.c.token
    return case(
        (func.current_setting("mapservice.search_dirty", true()) == "1", null()),
        else_=SearchEpoch.token,
    )


class HeldChange(Base):
    """Per venue, the sequence number of the last change to its live allocations (an
    allocation written or removed, its booking's status or hold changed): written by SQLite's
    triggers (migration 0027), read by :mod:`mapservice.booking.heldmirror`; empty on
    PostgreSQL, where the triggers send notifications instead."""

    __tablename__ = "held_changes"

    venue_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
