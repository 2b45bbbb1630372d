"""What the booking pages share: the blueprint (``bookings``), local times as the pages show
them, the form errors, the way back after an action. Times are typed in the venue's local
time (its committee's zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, request

from mapservice.booking.loading import venue_tz
from mapservice.core.dates import parse_day
from mapservice.core.errors import BookingConflict, NotAllowed, RuleViolation
from mapservice.core.i18n import _, lang
from mapservice.core.vocab import BookingStatus
from mapservice.models import Booking, User, Venue
from mapservice.web.auth import _safe_next, current_actor
from mapservice.web.database import get_db
from mapservice.web.forms import BookingForm, RescheduleForm

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


def hhmm(instant: datetime, tz: ZoneInfo, day: date | None = None) -> str:
    """Local wall-clock time; midnight ending ``day`` is written 24:00."""
    local = instant.astimezone(tz)
    if day is not None and local.date() > day and local.hour == 0 and local.minute == 0:
        return "24:00"
    return local.strftime("%H:%M")


def _add_error(field: Any, message: str) -> None:
    field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]


def _attach_errors(form: Any, fields: dict[str, str], general: list[str]) -> None:
    """Show each message at its form field (one the form lacks, or the group picker when
    there is nothing to pick, above the form)."""
    for name, message in fields.items():
        field = getattr(form, name, None)
        if field is not None and (name != "group" or form.group.choices):
            _add_error(field, message)
        else:
            general.append(message)


def _local_range(
    form: BookingForm | RescheduleForm, tz: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The form's date/start/end as aware instants, or None with the field errors attached."""
    from mapservice.operations.booking_form import local_window

    assert form.date.data is not None
    window, errors = local_window(form.date.data, form.start.data or "", form.end.data or "", tz)
    _attach_errors(form, errors, [])
    return window


def _attach_violations(form: Any, exc: RuleViolation, general: list[str]) -> None:
    for v in exc.violations:
        name = FIELD_OF.get(v.field)
        if name:
            _attach_errors(form, {name: v.message}, general)
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


def _first_day(arg: str | None, default: date) -> date:
    try:
        return parse_day(arg) if arg else default
    except ValueError:
        return default


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
