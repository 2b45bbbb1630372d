"""The owning unit's side: the queue of requests (confirm, decline, check-in, no-show) and a
venue's week calendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from mapservice import policy
from mapservice.booking import engine
from mapservice.booking.availability import week_slots
from mapservice.booking.loading import venue_tz
from mapservice.core.errors import NotAllowed, RuleViolation
from mapservice.core.i18n import _
from mapservice.core.opening import local_instant
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, User, Venue
from mapservice.operations.bookings import with_details
from mapservice.policy import can_run_venue, venues_run_by
from mapservice.web.bookings.common import (
    _actor,
    _back,
    _domain_error_back,
    _first_day,
    _now,
    bp,
    when_text,
)
from mapservice.web.bookings.form import booking_panel
from mapservice.web.database import get_db
from mapservice.web.forms import EmptyForm, ReasonForm


def _require_runner(actor: User) -> None:
    if not (actor.is_secretary or actor.is_admin) or not actor.active:
        raise NotAllowed("owner_only", _("Only the venue's unit may do this."))


@bp.route("/bookings/requests")
@login_required
def requests() -> Any:
    actor = _actor()
    _require_runner(actor)
    db = get_db()
    now = _now()
    base = select(Booking).join(Venue, Venue.id == Booking.venue_id).where(venues_run_by(actor))
    pending = list(
        db.scalars(
            with_details(base)
            .where(
                Booking.status == BookingStatus.PENDING.value,
                (Booking.hold_expires_at.is_(None)) | (Booking.hold_expires_at > now),
            )
            .order_by(Booking.start_at, Booking.id)
        )
    )
    tz = ZoneInfo(actor.committee.timezone)
    today = now.astimezone(tz).date()
    day_start, day_end = local_instant(today, 0, tz), local_instant(today, 1440, tz)
    todays = list(
        db.scalars(
            with_details(base)
            .where(
                Booking.start_at < day_end,
                Booking.end_at > day_start,
                Booking.status.in_(
                    (
                        BookingStatus.CONFIRMED.value,
                        BookingStatus.COMPLETED.value,
                        BookingStatus.NO_SHOW.value,
                    )
                ),
            )
            .order_by(Booking.start_at, Booking.id)
        )
    )
    return render_template(
        "bookings/requests.html",
        pending=pending,
        todays=todays,
        today=today,
        button_form=EmptyForm(),
        reason_form=ReasonForm(),
    )


def _decide(form_ok: bool, act: Callable[[], Booking], said: Callable[[Booking], str]) -> Any:
    """Run one of the owner's decisions on a booking, say what was done (or why not) and go
    back to the queue (or the page named by ``next``)."""
    if not form_ok:
        abort(400)
    back = _back(url_for("bookings.requests"))
    try:
        booking = act()
    except RuleViolation as exc:
        return _domain_error_back(exc, back)
    flash(said(booking), "success")
    return redirect(back, 303)


@bp.route("/bookings/<int:booking_id>/confirm", methods=["POST"])
@login_required
def confirm(booking_id: int) -> Any:
    actor = _actor()
    return _decide(
        EmptyForm().validate_on_submit(),
        lambda: engine.confirm(get_db(), actor, booking_id),
        lambda b: _("Confirmed: %(group)s, %(when)s.", group=b.group.name, when=when_text(b)),
    )


@bp.route("/bookings/<int:booking_id>/decline", methods=["POST"])
@login_required
def decline(booking_id: int) -> Any:
    actor = _actor()
    form = ReasonForm()
    return _decide(
        form.validate_on_submit(),
        lambda: engine.decline(get_db(), actor, booking_id, form.reason.data or ""),
        lambda b: _("Declined: %(group)s, %(when)s.", group=b.group.name, when=when_text(b)),
    )


@bp.route("/bookings/<int:booking_id>/check-in", methods=["POST"])
@login_required
def check_in(booking_id: int) -> Any:
    actor = _actor()
    no_show = request.form.get("no_show") == "1"
    return _decide(
        EmptyForm().validate_on_submit(),
        lambda: engine.check_in(get_db(), actor, booking_id, no_show=no_show),
        lambda b: (
            _("Marked as no-show: %(group)s.", group=b.group.name)
            if no_show
            else _("Checked in: %(group)s.", group=b.group.name)
        ),
    )


@bp.route("/venues/<int:venue_id>/calendar")
@login_required
def calendar(venue_id: int) -> Any:
    actor = _actor()
    db = get_db()
    venue = policy.get_venue(db, actor, venue_id)
    if not can_run_venue(actor, venue):
        raise NotAllowed("owner_only", _("Only the venue's unit may do this."))
    tz = venue_tz(venue)
    today = datetime.now(tz).date()
    first = _first_day(request.args.get("week"), today - timedelta(days=today.weekday()))
    start, end = local_instant(first, 0, tz), local_instant(first + timedelta(days=7), 0, tz)
    bookings = list(
        db.scalars(
            with_details(select(Booking))
            .where(Booking.venue_id == venue.id, Booking.start_at < end, Booking.end_at > start)
            .order_by(Booking.start_at, Booking.id)
        )
    )
    panel = booking_panel(venue)
    panel.update(days=week_slots(db, actor, venue, first, _now()), first=first)
    panel.update(prev=first - timedelta(days=7), next=first + timedelta(days=7))
    return render_template(
        "bookings/calendar.html",
        venue=venue,
        panel=panel,
        bookings=bookings,
    )
