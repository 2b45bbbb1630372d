"""Booking pages: the venue page's week view and booking form, "my bookings" (cancel,
reschedule), the owning unit's queue (confirm, decline, check-in, no-show), a venue's week
calendar for its owners, in-app notifications (and e-mail), and iCalendar feeds.

Routes parse the form, call one engine operation and render; the engine judges every rule.
Times are typed in the venue's local time (its committee's zone)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from sqlalchemy import event, false, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from mapservice import policy
from mapservice.booking import engine, feeds, notices
from mapservice.booking.availability import week_slots
from mapservice.booking.engine import SeriesRejected
from mapservice.booking.loading import venue_tz
from mapservice.core.errors import BookingConflict, NotAllowed, NotFound, RuleViolation
from mapservice.core.i18n import _, lang
from mapservice.core.opening import local_instant
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, Group, Notification, User, Venue
from mapservice.policy import (
    group_is_active,
    group_may_book,
    is_owner,
    manageable_bookings,
    may_act_for_group,
    owned_venues_condition,
)
from mapservice.web.auth import _safe_next, current_actor
from mapservice.web.database import (
    end_read_phase,
    end_write_phase,
    get_db,
    resolve_after_rollback,
)
from mapservice.web.errors import wants_json
from mapservice.web.forms import BookingForm, EmptyForm, ReasonForm, RescheduleForm, options

bp = Blueprint("bookings", __name__)

ACTIVE = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)
# Which form field a rule's message is shown at (others go above the form).
FIELD_OF = {
    "start": "start",
    "end": "end",
    "units": "units",
    "headcount": "headcount",
    "group": "group",
    "count": "count",
    "date": "date",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _actor() -> User:
    actor = current_actor()
    if actor is None:
        abort(401)
    return actor


# ---------------------------------------------------------------- local times


def hhmm(instant: datetime, tz: ZoneInfo, day: date | None = None) -> str:
    """Local wall-clock time; midnight ending ``day`` is written 24:00."""
    local = instant.astimezone(tz)
    if day is not None and local.date() > day and local.hour == 0 and local.minute == 0:
        return "24:00"
    return local.strftime("%H:%M")


def parse_local(day: date, text: str, tz: ZoneInfo) -> datetime | None:
    """The instant of wall-clock ``text`` (HH:MM, 24:00 = next midnight) on ``day`` in ``tz``;
    None when that time does not exist that day (the hour skipped when clocks go forward).
    A time that exists twice (clocks go back) is its first occurrence."""
    hours, minutes = (int(p) for p in text.strip().split(":"))
    if hours * 60 + minutes >= 1440:
        return local_instant(day + timedelta(days=1), hours * 60 + minutes - 1440, tz)
    naive = datetime.combine(day, time(hours, minutes))
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return aware


def _add_error(field: Any, message: str) -> None:
    field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]


def _local_range(
    form: BookingForm | RescheduleForm, tz: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The form's date/start/end as aware instants, or None with the field errors attached.
    An end at 00:00 means midnight at the end of the day."""
    day = form.date.data
    assert day is not None
    got: dict[str, datetime] = {}
    for field in (form.start, form.end):
        text = (field.data or "").strip()
        if field is form.end and text in ("00:00", "0:00"):
            text = "24:00"
        instant = parse_local(day, text, tz)
        if instant is None:
            _add_error(
                field,
                _(
                    "%(time)s does not exist on %(date)s: the clocks go forward that night."
                    " Please choose another time.",
                    time=text,
                    date=day.isoformat(),
                ),
            )
        else:
            got[field.name] = instant
    if len(got) < 2:
        return None
    return got["start"], got["end"]


def _attach_violations(form: Any, exc: RuleViolation, general: list[str]) -> None:
    for v in exc.violations:
        name = FIELD_OF.get(v.field)
        field = getattr(form, name, None) if name else None
        if field is not None and (name != "group" or form.group.choices):
            _add_error(field, v.message)
        else:
            general.append(v.message)


def units_text(numbers: list[int]) -> str:
    """ "第 2、3 号场地" / "units 2, 3"."""
    sep = "、" if lang() == "zh" else ", "
    return _("units %(numbers)s", numbers=sep.join(str(n) for n in numbers))


def local_dt(instant: datetime | None, venue: Venue) -> str:
    """An instant as the venue's local date and time."""
    if instant is None:
        return ""
    return instant.astimezone(venue_tz(venue)).strftime("%Y-%m-%d %H:%M")


def when_text(booking: Booking) -> str:
    tz = venue_tz(booking.venue)
    start = booking.start_at.astimezone(tz)
    return f"{start:%Y-%m-%d} {start:%H:%M}–{hhmm(booking.end_at, tz, start.date())}"


# ---------------------------------------------------------------- the booking form


def bookable_groups(actor: User, venue: Venue) -> list[Group]:
    """Groups ``actor`` may pick for a booking here: those the engine lets the actor act for
    (any group of the committee for the venue's owners and the admin — proxy booking,
    "一个电话" —, the unit's own groups for another unit's secretary) that are active and
    that the venue's "who may book" rule admits. Bookers book for their own group (no
    picker)."""
    if actor.is_booker:
        return []
    groups = get_db().scalars(
        select(Group)
        .where(Group.committee_id == actor.committee_id, Group.active.is_(True))
        .options(selectinload(Group.unit))
        .order_by(Group.name)
    )
    return [
        g
        for g in groups
        if may_act_for_group(actor, g, venue) and group_is_active(g) and group_may_book(g, venue)
    ]


TIME_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def booking_prefill(args: Any, today: date) -> dict[str, str]:
    """What the venue page's booking form is filled with from the link that opened it (the
    map's popup carries the filter's "free between" window as ``date``/``start``/``end``):
    each value kept only when valid — a date from today on, times as HH:MM, an end after the
    start (00:00: midnight) — and a bad one dropped without a word. The form's other fields
    (units, headcount, purpose, group) pass through; the booking form checks them."""
    out = {k: str(args[k]) for k in ("units", "headcount", "purpose", "group") if args.get(k)}
    try:
        day = date.fromisoformat(str(args.get("date", "")).strip())
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
    groups = bookable_groups(actor, venue) if actor is not None else []
    form.group.choices = options([(g.id, g.name) for g in groups])
    return form


def _first_day(arg: str | None, default: date) -> date:
    try:
        return date.fromisoformat(arg) if arg else default
    except ValueError:
        return default


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
        "owner": is_owner(actor, venue),
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


def _form_group_id(form: BookingForm, actor: User, general: list[str]) -> int | None:
    """The group the booking is for: a booker's own; otherwise the one picked (None, with
    the message at the field or above the form, when none is)."""
    if actor.is_booker:
        return actor.group_id or 0
    if (form.group.data or "").isdigit():
        return int(form.group.data or 0)
    if form.group.choices:
        _add_error(form.group, _("Choose the group the booking is for."))
    else:
        general.append(no_group_message())
    return None


def no_group_message() -> str:
    return _("None of the groups you book for may book this venue (see 'who may book').")


def _series_error(form: BookingForm) -> bool:
    """Attach the repeat fields' errors across fields; True if there were any."""
    if not form.repeat.data:
        return False
    if (form.count.data is None) == (form.until.data is None):
        _add_error(form.count, _("Give either the number of dates or the last date."))
        return True
    if form.until.data is not None and form.date.data and form.until.data < form.date.data:
        _add_error(form.until, _("The last date cannot be before the first date."))
        return True
    return False


def _own_overlaps(
    form: BookingForm, actor: User, venue: Venue, group_id: int, start: datetime, end: datetime
) -> list[Booking]:
    """The group's own bookings here at the requested time(s), if the actor may act for the
    group (nobody learns another group's bookings this way)."""
    group = get_db().get(Group, group_id)
    if group is None or not may_act_for_group(actor, group, venue):
        return []
    if form.repeat.data:
        until = form.until.data if form.count.data is None else None
        windows = [
            (s, e)
            for s, e, exists in engine.occurrences(
                start, end, venue_tz(venue), form.repeat.data, count=form.count.data, until=until
            )
            if exists
        ]
    else:
        windows = [(start, end)]
    return engine.own_overlaps(get_db(), group_id, venue.id, windows, _now())


@bp.route("/venues/<int:venue_id>/book", methods=["GET", "POST"])
@login_required
def book(venue_id: int) -> Any:
    actor = _actor()
    db = get_db()
    venue = policy.get_venue(db, actor, venue_id)
    form = booking_form(venue, actor, request.args)
    if request.method == "GET":
        return _book_page(venue, 200, form=form)
    general: list[str] = []
    if not form.validate_on_submit():
        return _book_page(venue, 422, form=form, general=general)
    tz = venue_tz(venue)
    window = _local_range(form, tz)
    group_id = _form_group_id(form, actor, general)
    if _series_error(form) or group_id is None or window is None:
        return _book_page(venue, 422, form=form, general=general)
    start, end = window
    if request.form.get("confirm_overlap") != "1":
        held = _own_overlaps(form, actor, venue, group_id, start, end)
        if held:
            question = _(
                "%(group)s already holds this venue at this time:", group=held[0].group.name
            )
            if wants_json():
                return jsonify(
                    {
                        "error": {
                            "code": "own_overlap",
                            "message": question,
                            "fields": {},
                            "bookings": [
                                {
                                    "id": b.id,
                                    "start": b.start_at.isoformat(),
                                    "end": b.end_at.isoformat(),
                                }
                                for b in held
                            ],
                        }
                    }
                ), 409
            return _book_page(venue, 409, form=form, overlaps=held, overlap_question=question)
    common: dict[str, Any] = {
        "units": form.units.data or 1,
        "purpose": form.purpose.data or "",
        "headcount": form.headcount.data,
    }
    try:
        if form.repeat.data:
            result = engine.book_series(
                db,
                actor,
                venue.id,
                group_id,
                start,
                end,
                freq=form.repeat.data,
                count=form.count.data,
                until=form.until.data if form.count.data is None else None,
                policy=form.policy.data or "all_or_nothing",
                **common,
            )
        else:
            end_read_phase()
            booking = engine.book(db, actor, venue.id, group_id, start, end, **common)
    except RuleViolation as exc:
        if wants_json():
            raise  # the error mapping answers scripts with JSON (fields, alternatives)
        _attach_violations(form, exc, general)
        return _book_page(venue, 422, form=form, general=general)
    except BookingConflict as exc:
        if wants_json():
            raise
        resolve_after_rollback(exc)
        return _book_page(venue, 409, form=form, conflict=exc, window=window)
    except SeriesRejected as exc:
        return _book_page(venue, 409, form=form, outcomes=exc.outcomes, general=[exc.message])
    end_write_phase()
    _flash_booked(form, actor, venue, result if form.repeat.data else booking)
    return redirect(url_for("bookings.mine"), 303)


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


# ---------------------------------------------------------------- my bookings


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


def _loaded(stmt: Any) -> Any:
    return stmt.options(
        selectinload(Booking.venue).selectinload(Venue.committee),
        selectinload(Booking.group),
        selectinload(Booking.allocations),
    )


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


def _domain_error_back(exc: RuleViolation | BookingConflict | NotAllowed, target: str) -> Any:
    """Undo anything half-done (a series cancel stopped part-way), say why, go back."""
    get_db().rollback()
    messages = (
        [v.message for v in exc.violations] if isinstance(exc, RuleViolation) else [exc.message]
    )
    for message in messages:
        flash(message, "danger")
    return redirect(target, 303)


def _back(default: str) -> str:
    nxt = request.form.get("next")
    return _safe_next(nxt) if nxt else default


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


# ---------------------------------------------------------------- the owner's queue


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
    base = (
        select(Booking)
        .join(Venue, Venue.id == Booking.venue_id)
        .where(owned_venues_condition(actor))
    )
    pending = list(
        db.scalars(
            _loaded(base)
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
            _loaded(base)
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


@bp.route("/bookings/<int:booking_id>/confirm", methods=["POST"])
@login_required
def confirm(booking_id: int) -> Any:
    actor = _actor()
    if not EmptyForm().validate_on_submit():
        abort(400)
    back = _back(url_for("bookings.requests"))
    try:
        booking = engine.confirm(get_db(), actor, booking_id)
    except RuleViolation as exc:
        return _domain_error_back(exc, back)
    flash(
        _("Confirmed: %(group)s, %(when)s.", group=booking.group.name, when=when_text(booking)),
        "success",
    )
    return redirect(back, 303)


@bp.route("/bookings/<int:booking_id>/decline", methods=["POST"])
@login_required
def decline(booking_id: int) -> Any:
    actor = _actor()
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    back = _back(url_for("bookings.requests"))
    try:
        booking = engine.decline(get_db(), actor, booking_id, form.reason.data or "")
    except RuleViolation as exc:
        return _domain_error_back(exc, back)
    flash(
        _("Declined: %(group)s, %(when)s.", group=booking.group.name, when=when_text(booking)),
        "success",
    )
    return redirect(back, 303)


@bp.route("/bookings/<int:booking_id>/check-in", methods=["POST"])
@login_required
def check_in(booking_id: int) -> Any:
    actor = _actor()
    if not EmptyForm().validate_on_submit():
        abort(400)
    no_show = request.form.get("no_show") == "1"
    back = _back(url_for("bookings.requests"))
    try:
        booking = engine.check_in(get_db(), actor, booking_id, no_show=no_show)
    except RuleViolation as exc:
        return _domain_error_back(exc, back)
    flash(
        _("Marked as no-show: %(group)s.", group=booking.group.name)
        if no_show
        else _("Checked in: %(group)s.", group=booking.group.name),
        "success",
    )
    return redirect(back, 303)


# ---------------------------------------------------------------- the owner's calendar


@bp.route("/venues/<int:venue_id>/calendar")
@login_required
def calendar(venue_id: int) -> Any:
    actor = _actor()
    db = get_db()
    venue = policy.get_venue(db, actor, venue_id)
    if not is_owner(actor, venue):
        raise NotAllowed("owner_only", _("Only the venue's unit may do this."))
    tz = venue_tz(venue)
    today = datetime.now(tz).date()
    first = _first_day(request.args.get("week"), today - timedelta(days=today.weekday()))
    start, end = local_instant(first, 0, tz), local_instant(first + timedelta(days=7), 0, tz)
    bookings = list(
        db.scalars(
            _loaded(select(Booking))
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


# ---------------------------------------------------------------- notifications


def notifications_condition(actor: User) -> ColumnElement[bool]:
    """Notices are for a group: its bookers and its unit's secretary read them."""
    if actor.is_booker:
        return Notification.group_id == (actor.group_id or 0)
    if actor.is_secretary:
        return Notification.group_id.in_(select(Group.id).where(Group.unit_id == actor.unit_id))
    return false()


def unread_count() -> int:
    actor = current_actor()
    if actor is None or actor.is_admin:
        return 0
    return int(
        get_db().scalar(
            select(func.count(Notification.id)).where(
                notifications_condition(actor), Notification.read_at.is_(None)
            )
        )
        or 0
    )


@bp.route("/notifications")
@login_required
def notifications() -> Any:
    actor = _actor()
    db = get_db()
    notes = list(
        db.scalars(
            select(Notification)
            .where(notifications_condition(actor))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(100)
        )
    )
    bookings = {
        b.id: b
        for b in db.scalars(
            select(Booking)
            .where(Booking.id.in_({n.booking_id for n in notes if n.booking_id}))
            .options(selectinload(Booking.venue).selectinload(Venue.committee))
        )
    }
    rows = [
        (n, notices.notice_text(n.kind, n.params, notices.notification_tz(n, bookings)))
        for n in notes
    ]
    tz = ZoneInfo(actor.committee.timezone)
    return render_template("bookings/notifications.html", rows=rows, tz=tz, button_form=EmptyForm())


@bp.route("/notifications/read", methods=["POST"])
@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@login_required
def mark_read(notification_id: int | None = None) -> Any:
    actor = _actor()
    if not EmptyForm().validate_on_submit():
        abort(400)
    db = get_db()
    stmt = select(Notification).where(notifications_condition(actor))
    if notification_id is not None:
        # One notice: through the same scoped query; someone else's is not there (404).
        note = db.scalars(stmt.where(Notification.id == notification_id)).one_or_none()
        if note is None:
            raise NotFound("notification_not_found", _("No such notification."))
        notes = [note] if note.read_at is None else []
    else:
        notes = list(db.scalars(stmt.where(Notification.read_at.is_(None))))
    now = _now()
    for n in notes:
        n.read_at = now
    return redirect(url_for("bookings.notifications"), 303)


# ---------------------------------------------------------------- iCalendar feeds


def _feed_choices(actor: User) -> tuple[list[Group], list[Venue]]:
    db = get_db()
    groups_stmt = select(Group).where(Group.committee_id == actor.committee_id)
    if actor.is_booker:
        groups_stmt = groups_stmt.where(Group.id == actor.group_id)
    elif actor.is_secretary:
        groups_stmt = groups_stmt.where(Group.unit_id == actor.unit_id)
    groups = list(db.scalars(groups_stmt.order_by(Group.name)))
    venues = list(
        db.scalars(
            select(Venue)
            .where(owned_venues_condition(actor), Venue.retired.is_(False))
            .order_by(Venue.name)
        )
    )
    return groups, venues


def _feeds_page(actor: User, status: int = 200, new_url: str | None = None) -> Any:
    db = get_db()
    groups, venues = _feed_choices(actor)
    tokens = feeds.tokens_of(db, actor)
    return render_template(
        "bookings/feeds.html",
        tokens=[(t, feeds.feed_title(db, t)) for t in tokens],
        groups=groups,
        venues=venues,
        new_url=new_url,
        button_form=EmptyForm(),
    ), status


@bp.route("/feeds/", methods=["GET", "POST"])
@login_required
def feeds_page() -> Any:
    actor = _actor()
    if request.method == "GET":
        return _feeds_page(actor)
    if not EmptyForm().validate_on_submit():
        abort(400)
    target = request.form.get("target", "")
    kind, _sep, raw_id = target.partition(":")
    if kind not in ("venue", "group") or not raw_id.isdigit():
        abort(400)
    token, secret = feeds.create_token(
        get_db(),
        actor,
        venue_id=int(raw_id) if kind == "venue" else None,
        group_id=int(raw_id) if kind == "group" else None,
    )
    url = url_for("bookings.feed", token=secret, _external=True)
    flash(_("Feed created. Copy its address now: it is shown only once."), "success")
    return _feeds_page(actor, 200, new_url=url)


@bp.route("/feeds/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_feed(token_id: int) -> Any:
    actor = _actor()
    if not EmptyForm().validate_on_submit():
        abort(400)
    feeds.revoke(get_db(), actor, token_id, _now())
    flash(_("Feed revoked: its address no longer works."), "success")
    return redirect(url_for("bookings.feeds_page"), 303)


@bp.route("/feeds/<token>.ics")
def feed(token: str) -> Any:
    db = get_db()
    found = feeds.resolve(db, token)
    if found is None:
        abort(404)
    body = feeds.calendar_bytes(db, found, _now())
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
    )


# ---------------------------------------------------------------- wiring


def _mail_on_commit(app: Flask) -> None:
    """E-mail the notices a transaction wrote, after it commits (never for a rolled-back
    one). Skipped entirely when no SMTP host is configured."""
    maker = app.extensions["db_write_sessionmaker"]
    reader = app.extensions["db_sessionmaker"]

    @event.listens_for(maker, "after_flush")
    def _collect(session: Session, _ctx: Any) -> None:
        ids = [o.id for o in session.new if isinstance(o, Notification)]
        if ids:
            session.info.setdefault("notice_ids", []).extend(ids)

    @event.listens_for(maker, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop("notice_ids", None)

    @event.listens_for(maker, "after_commit")
    def _send(session: Session) -> None:
        ids = session.info.pop("notice_ids", None)
        settings = notices.SmtpSettings.from_config(app.config)
        if not ids or settings is None:
            return
        with reader() as read:
            mails = notices.mails_for(read, ids, app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN"))
        notices.send(settings, mails)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    _mail_on_commit(app)

    @app.context_processor
    def _booking_helpers() -> dict[str, Any]:
        return {
            "booking_panel": booking_panel,
            "unread_count": unread_count,
            "units_text": units_text,
            "when_text": when_text,
            "local_dt": local_dt,
        }
