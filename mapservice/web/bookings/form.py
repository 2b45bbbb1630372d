"""The venue page's booking panel (the week of slots and the booking form) and booking from
it. The checks and the engine call are :func:`mapservice.operations.booking_form.book_from_form`;
this module turns the form into a request and the answer into a page."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required

from mapservice import policy
from mapservice.booking.availability import week_slots
from mapservice.booking.loading import venue_tz
from mapservice.booking.results import SeriesRejected
from mapservice.core.dates import parse_day
from mapservice.core.errors import BookingConflict, RuleViolation
from mapservice.core.i18n import _
from mapservice.core.ids import as_id
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, User, Venue
from mapservice.operations.booking_form import (
    BookingRequest,
    OverlapQuestion,
    Refused,
    book_from_form,
    bookable_groups,
    local_window,
)
from mapservice.policy import can_run_venue
from mapservice.web.auth import current_actor
from mapservice.web.bookings.common import (
    _actor,
    _attach_errors,
    _attach_violations,
    _first_day,
    _now,
    bp,
    hhmm,
    units_text,
    when_text,
)
from mapservice.web.database import end_read_phase, end_write_phase, get_db, resolve_after_rollback
from mapservice.web.errors import wants_json
from mapservice.web.forms import BookingForm, options

TIME_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def booking_prefill(args: Any, today: date) -> dict[str, str]:
    """What the venue page's booking form is filled with from the link that opened it (the
    map's popup carries the filter's "free between" window as ``date``/``start``/``end``):
    each value kept only when valid — a date from today on, times as HH:MM, an end after the
    start (00:00: midnight) — and a bad one dropped without a word. The form's other fields
    (units, headcount, purpose, group) pass through; the booking form checks them."""
    out = {k: str(args[k]) for k in ("units", "headcount", "purpose", "group") if args.get(k)}
    try:
        day = parse_day(str(args.get("date", "")).strip())
    except ValueError:
        return out
    if day < today:
        return out
    out["date"] = day.isoformat()
    for key in ("start", "end"):
        found = TIME_RE.fullmatch(str(args.get(key, "")).strip())
        if found:
            out[key] = f"{int(found[1]):02d}:{found[2]}"
    ends_at_midnight = out.get("end") == "00:00"
    if "start" in out and "end" in out and not ends_at_midnight and out["end"] <= out["start"]:
        del out["end"]
    return out


def booking_form(venue: Venue, actor: User | None, prefill: Any = None) -> BookingForm:
    """The form, its group choices set; on GET filled from query parameters (a slot picked
    in the week view, an alternative proposed after a conflict, the map's window), each
    checked by :func:`booking_prefill`."""
    data: dict[str, Any] = {}
    if prefill is not None:
        today = datetime.now(venue_tz(venue)).date()
        checked = booking_prefill(prefill, today)
        if checked.get("date"):
            data["date"] = date.fromisoformat(checked["date"])
        for key in ("start", "end", "purpose", "group"):
            if checked.get(key):
                data[key] = checked[key][:2000]
        for key in ("units", "headcount"):
            if checked.get(key, "").isdigit():
                data[key] = int(checked[key])
    form = BookingForm(data=data) if request.method == "GET" else BookingForm()
    groups = bookable_groups(get_db(), actor, venue) if actor is not None else []
    form.group.choices = options([(g.id, g.name) for g in groups])
    return form


def booking_panel(venue: Venue, **extra: Any) -> dict[str, Any]:
    """What the venue page's availability block shows: the week of slots (outsiders see only
    how much is free) and the booking form."""
    actor = current_actor()
    tz = venue_tz(venue)
    today = datetime.now(tz).date()
    first = _first_day(request.args.get("week"), today)
    form = extra.pop("form", None) or booking_form(venue, actor, request.args)
    window = extra.pop("window", None)

    def window_url(s: datetime, e: datetime) -> str:
        return prefill_url(venue.id, s, e, tz, form)

    def venue_url(option: Any) -> str:
        s, e = window if window else (_now(), _now())
        return prefill_url(option.venue_id, s, e, tz, form)

    return {
        "venue": venue,
        "tz": tz,
        "days": week_slots(get_db(), actor, venue, first, _now()),
        "first": first,
        "prev": first - timedelta(days=7),
        "next": first + timedelta(days=7),
        "today": today,
        "owner": can_run_venue(actor, venue),
        # Its staff still see a venue that is not open: say so before they fill the form.
        "open": policy.can_book_venue(actor, venue) or actor is None,
        "form": form,
        "actor": actor,
        "general": [],
        "conflict": None,
        "outcomes": None,
        "hhmm": hhmm,
        "window_url": window_url,
        "venue_url": venue_url if window else None,
        **extra,
    }


def prefill_url(venue_id: int, start: datetime, end: datetime, tz: ZoneInfo, form: Any) -> str:
    """A link to the booking form filled with this window and the rest of the request."""
    local = start.astimezone(tz)
    params = {
        "date": local.date().isoformat(),
        "start": local.strftime("%H:%M"),
        "end": hhmm(end, tz, local.date()),
        "units": form.units.data or 1,
    }
    if form.headcount.data:
        params["headcount"] = form.headcount.data
    if form.purpose.data:
        params["purpose"] = form.purpose.data
    if form.group.data and form.group.choices:
        params["group"] = form.group.data
    return url_for("bookings.book", venue_id=venue_id) + "?" + urlencode(params) + "#book"


def _book_page(venue: Venue, status: int, **extra: Any) -> Any:
    form = extra.get("form")
    if status == 422 and not extra.get("general") and form is not None:
        if any(field.errors for field in form):
            # On a phone the marked field may be far below; say so where the eye lands.
            extra["general"] = [_("Please correct the marked fields.")]
    return render_template(
        "bookings/book.html", panel=booking_panel(venue, **extra), venue=venue
    ), status


def _request_of(form: BookingForm) -> BookingRequest:
    assert form.date.data is not None
    picked = form.group.data or ""
    return BookingRequest(
        day=form.date.data,
        start=form.start.data or "",
        end=form.end.data or "",
        units=form.units.data or 1,
        headcount=form.headcount.data,
        purpose=form.purpose.data or "",
        group_id=as_id(picked),
        repeat=form.repeat.data or "",
        count=form.count.data,
        until=form.until.data,
        policy=form.policy.data or "all_or_nothing",
        confirm_overlap=request.form.get("confirm_overlap") == "1",
    )


def _overlap_json(asked: OverlapQuestion) -> Any:
    held = [
        {"id": b.id, "start": b.start_at.isoformat(), "end": b.end_at.isoformat()}
        for b in asked.bookings
    ]
    error = {"code": "own_overlap", "message": asked.question, "fields": {}, "bookings": held}
    return jsonify({"error": error}), 409


@bp.route("/venues/<int:venue_id>/book", methods=["GET", "POST"])
@login_required
def book(venue_id: int) -> Any:
    actor = _actor()
    venue = policy.get_venue(get_db(), actor, venue_id)
    form = booking_form(venue, actor, request.args)
    if request.method == "GET" or not form.validate_on_submit():
        return _book_page(venue, 200 if request.method == "GET" else 422, form=form, general=[])
    req = _request_of(form)
    try:
        done = book_from_form(get_db(), actor, venue, req, before_write=end_read_phase)
    except (RuleViolation, BookingConflict, SeriesRejected) as exc:
        return _refused_by_engine(venue, form, req, exc)
    if isinstance(done, Refused):
        _attach_errors(form, done.fields, done.general)
        return _book_page(venue, 422, form=form, general=done.general)
    if isinstance(done, OverlapQuestion):
        if wants_json():
            return _overlap_json(done)
        kept = {"overlaps": done.bookings, "overlap_question": done.question}
        return _book_page(venue, 409, form=form, **kept)
    end_write_phase()
    _flash_booked(form, actor, venue, done.series if done.series is not None else done.booking)
    return redirect(url_for("bookings.mine"), 303)


def _refused_by_engine(
    venue: Venue,
    form: BookingForm,
    req: BookingRequest,
    exc: RuleViolation | BookingConflict | SeriesRejected,
) -> Any:
    """The engine's refusal on the page (scripts get the error mapping's JSON)."""
    if isinstance(exc, SeriesRejected):
        return _book_page(venue, 409, form=form, outcomes=exc.outcomes, general=[exc.message])
    if wants_json():
        raise exc
    if isinstance(exc, RuleViolation):
        general: list[str] = []
        _attach_violations(form, exc, general)
        return _book_page(venue, 422, form=form, general=general)
    resolve_after_rollback(exc)
    window, _errors = local_window(req.day, req.start, req.end, venue_tz(venue))
    return _book_page(venue, 409, form=form, conflict=exc, window=window)


def _flash_booked(form: BookingForm, actor: User, venue: Venue, done: Any) -> None:
    """Say what was booked; a booking taken for another group (a caller's) names it."""
    tz = venue_tz(venue)
    if form.repeat.data:
        booked = done.booked
        skipped = [o for o in done.outcomes if o.error is not None]
        group = booked[0].group if booked and booked[0].group_id != actor.group_id else None
        flash(
            _(
                "%(n)s of %(total)s dates booked at %(venue)s for %(group)s.",
                n=len(booked),
                total=len(done.outcomes),
                venue=venue.name,
                group=group.name,
            )
            if group is not None
            else _(
                "%(n)s of %(total)s dates booked at %(venue)s.",
                n=len(booked),
                total=len(done.outcomes),
                venue=venue.name,
            ),
            "success",
        )
        for o in skipped:
            when = o.start.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            flash(
                _("Not booked: %(when)s — %(reason)s", when=when, reason=o.error.message)
                if o.error
                else when,
                "warning",
            )
        return
    booking: Booking = done
    values = {
        "venue": venue.name,
        "when": when_text(booking),
        "units": units_text(booking.unit_numbers),
    }
    proxy = booking.group_id != actor.group_id
    if booking.status == BookingStatus.PENDING.value:
        message = (
            _(
                "Request sent for %(group)s: %(venue)s, %(when)s, %(units)s. It holds the slot"
                " until the venue's unit answers.",
                group=booking.group.name,
                **values,
            )
            if proxy
            else _(
                "Request sent: %(venue)s, %(when)s, %(units)s. It holds the slot until the"
                " venue's unit answers.",
                **values,
            )
        )
    else:
        message = (
            _(
                "Booked for %(group)s: %(venue)s, %(when)s, %(units)s.",
                group=booking.group.name,
                **values,
            )
            if proxy
            else _("Booked: %(venue)s, %(when)s, %(units)s.", **values)
        )
    flash(message, "success")
