"""The search epoch: a token the database changes with every change to what a search keeps of
venues (migration 0023's triggers on venues, opening hours, closures, units, committees)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from mapservice.db import Base


class SearchEpoch(Base):
    """One row (id 1): ``token``, random, replaced by the triggers on every change (a counter
    could come back after a rollback); absent after the table is emptied until the next
    change. Written only by the database."""

    __tablename__ = "search_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[int] = mapped_column(BigInteger)
