"""Cancelling and rescheduling a booking (from "my bookings")."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from mapservice.booking import engine
from mapservice.booking.loading import venue_tz
from mapservice.core.errors import BookingConflict, RuleViolation
from mapservice.core.i18n import _
from mapservice.models import Booking
from mapservice.web.bookings.common import (
    _actor,
    _attach_violations,
    _back,
    _domain_error_back,
    _first_day,
    _local_range,
    bp,
    hhmm,
    units_text,
    when_text,
)
from mapservice.web.database import get_db, resolve_after_rollback
from mapservice.web.forms import ReasonForm, RescheduleForm


@bp.route("/bookings/<int:booking_id>/cancel", methods=["POST"])
@login_required
def cancel(booking_id: int) -> Any:
    """Cancel after a confirmation: the form on "my bookings" asks in a dialog and sends
    ``confirmed=1``; without that (no JavaScript) this answers with a page listing exactly
    what would be cancelled, whose button sends the same request confirmed."""
    actor = _actor()
    form = ReasonForm()
    back = _back(url_for("bookings.mine"))
    if not form.validate_on_submit():
        if not (form.reason.errors or form.scope.errors):
            abort(400)
        for message in form.reason.errors:
            flash(message, "danger")
        if form.scope.errors:
            flash(_("Choose which dates to cancel."), "danger")
        return redirect(back, 303)
    scope = form.scope.data or "one"
    reason = form.reason.data or ""
    try:
        if request.form.get("confirmed") != "1":
            targets = engine.cancel_preview(get_db(), actor, booking_id, scope=scope)
            return render_template(
                "bookings/cancel.html",
                booking_id=booking_id,
                targets=targets,
                scope=scope,
                reason=reason,
                back=back,
                cancel_form=form,
            )
        cancelled = engine.cancel(get_db(), actor, booking_id, scope=scope, reason=reason)
    except RuleViolation as exc:
        return _domain_error_back(exc, back)
    flash(_("%(n)s booking(s) cancelled.", n=len(cancelled)), "success")
    return redirect(back, 303)


@bp.route("/bookings/<int:booking_id>/reschedule", methods=["GET", "POST"])
@login_required
def reschedule(booking_id: int) -> Any:
    actor = _actor()
    db = get_db()
    booking = engine.managed_booking(db, actor, booking_id)  # the engine's access-checked loader
    venue = booking.venue
    tz = venue_tz(venue)
    if request.method == "GET":
        start = booking.start_at.astimezone(tz)
        args = request.args
        form = RescheduleForm(
            data={
                "date": _first_day(args.get("date"), start.date()),
                "start": args.get("start") or start.strftime("%H:%M"),
                "end": args.get("end") or hhmm(booking.end_at, tz, start.date()),
            }
        )
        return _reschedule_page(booking, form, 200)
    form = RescheduleForm()
    if not form.validate_on_submit():
        return _reschedule_page(booking, form, 422)
    window = _local_range(form, tz)
    if window is None:
        return _reschedule_page(booking, form, 422)
    general: list[str] = []
    try:
        moved = engine.reschedule(db, actor, booking.id, *window)
    except RuleViolation as exc:
        _attach_violations(form, exc, general)
        return _reschedule_page(booking, form, 422, general=general)
    except BookingConflict as exc:
        resolve_after_rollback(exc)
        return _reschedule_page(booking, form, 409, conflict=exc)
    flash(
        _(
            "Moved to %(when)s, %(units)s.",
            when=when_text(moved),
            units=units_text(moved.unit_numbers),
        ),
        "success",
    )
    return redirect(url_for("bookings.mine"), 303)


def _reschedule_page(booking: Booking, form: RescheduleForm, status: int, **extra: Any) -> Any:
    tz = venue_tz(booking.venue)

    def window_url(s: datetime, e: datetime) -> str:
        local = s.astimezone(tz)
        q = {"date": local.date().isoformat(), "start": f"{local:%H:%M}"}
        q["end"] = hhmm(e, tz, local.date())
        return url_for("bookings.reschedule", booking_id=booking.id) + "?" + urlencode(q)

    return render_template(
        "bookings/reschedule.html",
        booking=booking,
        form=form,
        tz=tz,
        hhmm=hhmm,
        general=extra.get("general", []),
        conflict=extra.get("conflict"),
        window_url=window_url,
    ), status
