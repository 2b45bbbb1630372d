""" "My bookings": the bookings the actor may manage, upcoming and past."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_login import login_required
from sqlalchemy import false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from mapservice.models import Booking, Group, User, Venue
from mapservice.policy import manageable_bookings
from mapservice.web.bookings.common import ACTIVE, _actor, _loaded, _now, bp
from mapservice.web.database import get_db
from mapservice.web.forms import ReasonForm


def groups_condition(actor: User) -> ColumnElement[bool]:
    """Bookings "mine" for ``actor``: the group's (booker), the unit's groups' (secretary),
    the committee's (admin)."""
    if actor.is_booker:
        return Booking.group_id == (actor.group_id or 0)
    if actor.is_secretary:
        return Group.unit_id == actor.unit_id
    if actor.is_admin:
        return Group.committee_id == actor.committee_id
    return false()


@bp.route("/bookings/")
@login_required
def mine() -> Any:
    """The actor's bookings: its group's (booker), its unit's groups' (secretary), the
    committee's (admin), and those it took for other groups (a caller's, "一个电话") —
    each one the actor may still manage (the policy's :func:`manageable_bookings`)."""
    actor = _actor()
    db = get_db()
    now = _now()
    base = (
        select(Booking)
        .join(Group, Group.id == Booking.group_id)
        .join(Venue, Venue.id == Booking.venue_id)
        .where(
            or_(groups_condition(actor), Booking.entered_by_id == actor.id),
            manageable_bookings(actor),
        )
    )
    upcoming = list(
        db.scalars(
            _loaded(base)
            .where(Booking.end_at > now, Booking.status.in_(ACTIVE))
            .order_by(Booking.start_at, Booking.id)
            .limit(300)
        )
    )
    shown = {b.id for b in upcoming}
    past = [
        b
        for b in db.scalars(
            _loaded(base).order_by(Booking.start_at.desc(), Booking.id.desc()).limit(100)
        )
        if b.id not in shown
    ][:50]
    return render_template(
        "bookings/mine.html",
        upcoming=upcoming,
        past=past,
        now=now,
        cancel_form=ReasonForm(),
        # Taken by this user for a group not its own (the audit's "proxy").
        proxy={b.id for b in (*upcoming, *past) if is_proxy(actor, b)},
    )


def is_proxy(actor: User, booking: Booking) -> bool:
    """Whether ``actor`` took ``booking`` for another group than its own (a caller's)."""
    return booking.entered_by_id == actor.id and booking.group_id != actor.group_id
