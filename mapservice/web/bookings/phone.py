"""The phone booking screen (一个电话, ``/bookings/phone``): a secretary or the admin picks a
time (the next whole hour by default), sees which venues are free then (the unit's, one click
further the committee's) and books one for the caller. The rules, the free check and the
booking are :mod:`mapservice.operations.phone_bookings`' and the engine's."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from mapservice.booking.engine import VenueOption
from mapservice.core.errors import BookingConflict, RuleViolation
from mapservice.core.i18n import _
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, User
from mapservice.operations import phone_bookings as ops
from mapservice.operations.booking_form import local_window
from mapservice.policy import can_run_venue
from mapservice.web.auth import current_actor
from mapservice.web.bookings.common import _actor, _now, bp, hhmm, units_text, when_text
from mapservice.web.database import end_read_phase, end_write_phase, get_db, resolve_after_rollback
from mapservice.web.forms import EmptyForm

HHMM = re.compile(r"^([01]?[0-9]|2[0-4]):[0-5][0-9]$")
Window = tuple[datetime, datetime]


def sees_caller(booking: Booking) -> bool:
    """Whether the page's viewer is shown who called for ``booking``: those who run its
    venue (a phone number is private)."""
    return bool(booking.caller_name or booking.caller_phone) and can_run_venue(
        current_actor(), booking.venue
    )


def _window(
    src: MultiDict[str, str], tz: ZoneInfo, now: datetime
) -> tuple[dict[str, str], Window | None, dict[str, str]]:
    """The time asked about as typed (defaults: the next whole hour, one hour), as instants
    (None when it cannot be read), and the messages by field."""
    start, end = ops.default_window(now, tz)
    typed = {
        "date": src.get("date") or start.strftime("%Y-%m-%d"),
        "start": src.get("start") or start.strftime("%H:%M"),
        "end": src.get("end") or hhmm(end, tz, start.date()),
    }
    errors: dict[str, str] = {}
    try:
        day = date.fromisoformat(typed["date"])
    except ValueError:
        errors["date"] = _("Enter a date as YYYY-MM-DD.")
    for name in ("start", "end"):
        if not HHMM.match(typed[name]):
            errors[name] = _("Enter a time as HH:MM.")
    if errors:
        return typed, None, errors
    window, errors = local_window(day, typed["start"], typed["end"], tz)
    if window is None:
        return typed, None, errors
    return typed, window, ops.window_problems(*window, now)


def _page(actor: User, status: int = 200, **extra: Any) -> Any:
    tz = ZoneInfo(actor.committee.timezone)
    now = _now()
    src = request.form if request.method == "POST" else request.args
    typed, window, errors = _window(src, tz, now)
    everywhere = actor.is_admin or src.get("all") == "1"
    errors.update(extra.pop("errors", {}))
    window_ok = window is not None and not errors.keys() & {"date", "start", "end"}
    free: list[ops.FreeVenue] = []
    if window is not None and window_ok:
        free = ops.free_venues(get_db(), actor, *window, now, everywhere=everywhere)
    caller = {k: src.get(k, "") for k in ("caller_name", "caller_phone", "group", "purpose")}

    def window_url(s: datetime, e: datetime) -> str:
        local = s.astimezone(tz)
        q = {
            "date": f"{local:%Y-%m-%d}",
            "start": f"{local:%H:%M}",
            "end": hhmm(e, tz, local.date()),
            **({"all": "1"} if everywhere else {}),
        }
        return url_for("bookings.phone") + "?" + urlencode(q)

    def venue_url(_option: VenueOption) -> str:
        """Another venue free then: the committee's list at the same time."""
        return url_for("bookings.phone") + "?" + urlencode({**typed, "all": "1"})

    return render_template(
        "bookings/phone.html",
        typed=typed,
        everywhere=everywhere,
        free=free,
        window_ok=window_ok,
        errors=errors,
        general=extra.pop("general", []),
        caller=caller,
        groups=ops.caller_groups(get_db(), actor),
        form=EmptyForm(),
        tz=tz,
        hhmm=hhmm,
        window_url=window_url,
        venue_url=venue_url,
        **extra,
    ), status if not errors or status != 200 else 422


@bp.route("/bookings/phone", methods=["GET", "POST"])
@login_required
def phone() -> Any:
    actor = ops.require_phone_staff(_actor())
    if request.method == "GET":
        return _page(actor)
    if not EmptyForm().validate_on_submit():
        abort(400)
    tz = ZoneInfo(actor.committee.timezone)
    typed, window, errors = _window(request.form, tz, _now())
    # The venue: the button pressed (or, from a link or a script, the query string).
    venue_id = request.form.get("venue_id") or request.args.get("venue_id", "")
    if not venue_id.isdigit():
        errors["venue_id"] = _("Choose a free venue.")
    form = request.form
    errors.update(ops.caller_problems(form.get("caller_name"), form.get("caller_phone")))
    if errors or window is None:
        return _page(actor, 422, errors=errors)
    group = request.form.get("group", "")
    req = ops.PhoneRequest(
        int(venue_id),
        *window,
        caller_name=request.form.get("caller_name", ""),
        caller_phone=request.form.get("caller_phone", ""),
        group_id=int(group) if group.isdigit() else None,
        purpose=request.form.get("purpose", "")[:2000],
    )
    end_read_phase()
    try:
        booking = ops.book_for_caller(get_db(), actor, req, now=_now())
    except RuleViolation as exc:
        get_db().rollback()
        fields = {v.field: v.message for v in exc.violations if v.field in FIELDS}
        general = [v.message for v in exc.violations if v.field not in FIELDS]
        return _page(actor, 422, errors=fields, general=general)
    except BookingConflict as exc:
        resolve_after_rollback(exc)
        return _page(actor, 409, conflict=exc)
    end_write_phase()
    _flash_booked(booking)
    query = {**typed, **({"all": "1"} if request.form.get("all") == "1" else {})}
    return redirect(url_for("bookings.phone") + "?" + urlencode(query), 303)


FIELDS = ("caller_name", "caller_phone", "date", "start", "end", "group")


def _flash_booked(booking: Booking) -> None:
    values = {
        "venue": booking.venue.name,
        "when": when_text(booking),
        "units": units_text(booking.unit_numbers),
        "caller": booking.caller_name,
        "phone": booking.caller_phone,
    }
    if booking.status == BookingStatus.PENDING.value:
        message = _(
            "Request sent for %(caller)s (%(phone)s): %(venue)s, %(when)s, %(units)s. The"
            " venue's unit has been told.",
            **values,
        )
    else:
        message = _("Booked for %(caller)s (%(phone)s): %(venue)s, %(when)s, %(units)s.", **values)
    flash(message, "success")
