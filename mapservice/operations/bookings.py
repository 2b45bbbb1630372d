"""Bookings as a person lists them: "my bookings", one definition for the web page and the
API (:func:`mapservice.policy.bookings_of`), and the bookings at the venues one runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from mapservice import policy
from mapservice.core.errors import NotAllowed
from mapservice.core.i18n import _
from mapservice.models import Booking, Group, User, Venue

Scope = Literal["mine", "unit", "all"]


def with_details(stmt: Select[Booking]) -> Select[Booking]:
    """``stmt`` loading what a list of bookings shows: the venue (and its committee), the
    group, the allocated units."""
    return stmt.options(
        selectinload(Booking.venue).selectinload(Venue.committee),
        selectinload(Booking.group),
        selectinload(Booking.allocations),
    )


def bookings_stmt(actor: User, scope: Scope = "mine") -> Select[Booking]:
    """The bookings ``actor`` lists, joined with their venue and group: its own ("mine":
    :func:`policy.bookings_of`), those at its unit's venues ("unit", a secretary) or at all
    the committee's ("all", the admin) — these two are the bookings at the venues the actor
    runs (:func:`policy.venues_run_by`). NotAllowed for a scope the actor has not."""
    stmt = (
        select(Booking)
        .join(Venue, Venue.id == Booking.venue_id)
        .join(Group, Group.id == Booking.group_id)
    )
    if scope == "mine":
        return stmt.where(policy.bookings_of(actor))
    if scope == "all" and not policy.can_admin_committee(actor):
        raise NotAllowed("admin_only", _("Only the committee admin may do this."))
    if scope == "unit" and not (actor.is_secretary and actor.active):
        raise NotAllowed("secretary_only", _("Only unit secretaries have a unit's venues."))
    return stmt.where(policy.venues_run_by(actor))


def my_bookings(
    session: Session,
    actor: User,
    *,
    scope: Scope = "mine",
    statuses: Sequence[str] = (),
    ending_after: datetime | None = None,
    newest_first: bool = False,
    limit: int = 1000,
) -> list[Booking]:
    """The bookings of :func:`bookings_stmt`, with ``statuses`` only (if given), ending after
    ``ending_after`` (if given), by start time (``newest_first``: the latest first), at most
    ``limit``; each with its venue (and committee), group and allocations loaded."""
    stmt = bookings_stmt(actor, scope)
    if statuses:
        stmt = stmt.where(Booking.status.in_(statuses))
    if ending_after is not None:
        stmt = stmt.where(Booking.end_at > ending_after)
    order = (
        (Booking.start_at.desc(), Booking.id.desc())
        if newest_first
        else (Booking.start_at, Booking.id)
    )
    return list(session.scalars(with_details(stmt).order_by(*order).limit(limit)))
