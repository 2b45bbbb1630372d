"""The "my bookings" page: the actor's bookings (operations.bookings.my_bookings, the same list
as the API's), upcoming and past."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_login import login_required

from mapservice.models import Booking, User
from mapservice.operations.bookings import my_bookings
from mapservice.web.bookings.common import ACTIVE, _actor, _now, bp
from mapservice.web.database import get_db
from mapservice.web.forms import ReasonForm


@bp.route("/bookings/")
@login_required
def mine() -> Any:
    """The actor's bookings (the one definition: :func:`operations.bookings.my_bookings`):
    coming ones, then the latest others."""
    actor, db, now = _actor(), get_db(), _now()
    upcoming = my_bookings(db, actor, statuses=ACTIVE, ending_after=now, limit=300)
    shown = {b.id for b in upcoming}
    latest = my_bookings(db, actor, newest_first=True, limit=100)
    past = [b for b in latest if b.id not in shown][:50]
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
