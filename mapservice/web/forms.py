"""Forms (Flask-WTF: CSRF on every one). Field checks live here; rules across fields and
records live in the operations, whose field errors are attached back to these fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    FloatField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from mapservice.core import venue_spec
from mapservice.core.hours import DAY_KEYS, HoursError, parse_hours


def options(pairs: Any) -> list[SelectChoice]:
    """Choices in WTForms' current shape from (value, label) pairs. A lazy label (``_l``) stays
    lazy, so choices declared once on a form class read in each request's language (turned
    into text here, at import, they would stay in the default locale's words for good).
    Templates read a choice as ``c.value`` / ``c.label`` or render the field itself: a
    ``SelectChoice`` unpacks into four values, not two."""
    return [
        SelectChoice(str(value), label if isinstance(label, LazyString) else str(label))
        for value, label in pairs
    ]


T = TypeVar("T")


def form_values(form: FlaskForm, *names: str) -> dict[str, str]:
    """The named text fields' values (an empty field as ""), as keyword arguments."""
    return {name: getattr(form, name).data or "" for name in names}


def attach_errors(form: FlaskForm, exc: Any) -> None:
    """Put a ValidationFailed's field messages on the form's fields of those names."""
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [message]


def submit_form(
    form: FlaskForm,
    save: Callable[[], T],
    page: Callable[[int], Any],
    done: Callable[[T], str],
    after: str,
) -> Any:
    """The usual form view: on a valid post ``save()`` (its ValidationFailed put back on the
    fields, the page again with 422), then ``done(saved)`` flashed and on to ``after``; else
    ``page(status)`` (422 for a post that did not validate)."""
    from flask import flash, redirect, request

    from mapservice.core.errors import ValidationFailed

    if form.validate_on_submit():
        try:
            saved = save()
        except ValidationFailed as exc:
            attach_errors(form, exc)
            return page(422)
        flash(done(saved), "success")
        return redirect(after)
    return page(422 if request.method == "POST" else 200)


PHONE = Regexp(venue_spec.PHONE_PATTERN, message=_l("Use digits, spaces, + - ( ) only (3 to 30)."))


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=60)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])


def _day_validator(form: Any, field: Any) -> None:
    """One day's ranges (field ``hours_<weekday>``), checked as that day's, so a fault is
    reported on the day it was entered."""
    if not field.data or not field.data.strip():
        return
    weekday = int(field.name.rsplit("_", 1)[1])
    try:
        parse_hours(f"{DAY_KEYS[weekday]} {field.data}")
    except HoursError as exc:
        from mapservice.operations.venues import _hours_message

        raise ValidationError(_hours_message(exc)) from exc


DAY_LABELS = [
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
]


#: What each day's hours field holds on a new venue's form: a real value, saved as it stands
#: (a grey placeholder would look the same and save the venue closed every day).
DEFAULT_DAY_HOURS = "09:00-21:00"


def _label(name: str) -> LazyString:
    """A venue field's label from the venue spec, translated per request."""
    return _l(venue_spec.field(name).label)


def _checks(name: str) -> list[Any]:
    """A venue field's validators from the venue spec: required or optional, its range or
    length, its pattern."""
    spec = venue_spec.field(name)
    if spec.kind == "text":
        checks: list[Any] = [DataRequired() if spec.required else Optional()]
        if spec.max_length:
            checks.append(Length(max=spec.max_length))
        if spec.pattern == PHONE.regex.pattern:
            checks.append(PHONE)
        return checks
    checks = [Optional() if spec.nullable else InputRequired()]
    if spec.min is not None and spec.max is not None:
        checks.append(NumberRange(spec.min, spec.max))
    return checks


def _number(name: str) -> IntegerField:
    spec = venue_spec.field(name)
    return IntegerField(_label(name), default=spec.default, validators=_checks(name))


class VenueForm(FlaskForm):
    name = StringField(_label("name"), validators=_checks("name"))
    unit = SelectField(_label("unit"), validators=[InputRequired()])
    type = SelectField(_label("type"), validators=[InputRequired()])
    crs = SelectField(_label("crs"), default=venue_spec.field("crs").default)
    lon = FloatField(_label("lon"), validators=_checks("lon"))
    lat = FloatField(_label("lat"), validators=_checks("lat"))
    address = StringField(_label("address"), validators=_checks("address"))
    capacity_units = _number("capacity_units")
    max_headcount = _number("max_headcount")
    facilities = TextAreaField(_label("facilities"), validators=_checks("facilities"))
    phone = StringField(_label("phone"), validators=_checks("phone"))
    hours_0 = StringField(DAY_LABELS[0], validators=[_day_validator])
    hours_1 = StringField(DAY_LABELS[1], validators=[_day_validator])
    hours_2 = StringField(DAY_LABELS[2], validators=[_day_validator])
    hours_3 = StringField(DAY_LABELS[3], validators=[_day_validator])
    hours_4 = StringField(DAY_LABELS[4], validators=[_day_validator])
    hours_5 = StringField(DAY_LABELS[5], validators=[_day_validator])
    hours_6 = StringField(DAY_LABELS[6], validators=[_day_validator])
    slot_minutes = SelectField(
        _label("slot_minutes"),
        coerce=int,
        default=venue_spec.field("slot_minutes").default,
        choices=options((m, m) for m in venue_spec.field("slot_minutes").choices),
    )
    min_duration_minutes = _number("min_duration_minutes")
    max_duration_minutes = _number("max_duration_minutes")
    max_days_ahead = _number("max_days_ahead")
    min_notice_minutes = _number("min_notice_minutes")
    requires_approval = BooleanField(
        _label("requires_approval"), default=venue_spec.field("requires_approval").default
    )
    bookable_by = SelectField(
        _label("bookable_by"), default=venue_spec.field("bookable_by").default
    )
    paired_units = SelectMultipleField(
        _l("Paired units (when only paired units may book)"), coerce=int
    )
    weekly_quota_hours = _number("weekly_quota_hours")
    published = BooleanField(_label("published"), default=venue_spec.field("published").default)
    hold_hours = _number("hold_hours")
    cancel_cutoff_minutes = _number("cancel_cutoff_minutes")
    checks_in = BooleanField(
        _label("checks_in"),
        default=venue_spec.field("checks_in").default,
        description=_l(venue_spec.field("checks_in").help),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Errors about the week as a whole (no hours at all), shown above the seven days.
        self.week_errors: list[str] = []

    def prefill_hours(self) -> None:
        """A new venue's default week: every day 09:00-21:00, for the owner to change."""
        for d in range(7):
            getattr(self, f"hours_{d}").data = DEFAULT_DAY_HOURS

    def hours_text(self) -> str:
        return "; ".join(
            f"{DAY_KEYS[d]} {getattr(self, f'hours_{d}').data.strip()}"
            for d in range(7)
            if (getattr(self, f"hours_{d}").data or "").strip()
        )


#: What a datetime-local input sends: minutes, or seconds when a browser adds them.
LOCAL_MINUTES = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


class ClosureForm(FlaskForm):
    """A closure in the venue's local time; its period and reason are judged by
    ``operations.venues.add_closure`` (which also finds the bookings it would cover)."""

    start_at = DateTimeLocalField(
        _l("From"),
        format=LOCAL_MINUTES,
        invalid_value_message=_l("Enter a date and time such as 2026-12-31 08:00."),
        validators=[InputRequired(_l("Enter when the closure begins."))],
    )
    end_at = DateTimeLocalField(
        _l("Until"),
        format=LOCAL_MINUTES,
        invalid_value_message=_l("Enter a date and time such as 2026-12-31 08:00."),
        validators=[InputRequired(_l("Enter when the closure ends."))],
    )
    reason = StringField(_l("Reason"), validators=[Optional()], render_kw={"maxlength": 200})


class UnitForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    name_en = StringField(_l("English name"), validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("Kind"))
    secretary = StringField(_l("League secretary"), validators=[Optional(), Length(max=60)])
    phone = StringField(_l("Phone"), validators=[Optional(), PHONE])


class ImportForm(FlaskForm):
    file = FileField(_l("File (CSV, XLSX or GeoJSON)"), validators=[FileRequired()])


class EmptyForm(FlaskForm):
    """A form with only its CSRF token, for buttons that change state."""


# ---------------------------------------------------------------- bookings

TIME = Regexp(r"^([01]?\d|2[0-4]):[0-5]\d$", message=_l("Use a time like 19:00."))
# Dates a booking may name: a bound well beyond any venue's booking window that keeps the
# date arithmetic (time zones, a series' last date) away from the calendar's ends.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)


def _sane_date(form: Any, field: Any) -> None:
    if field.data is not None and not FIRST_DATE <= field.data <= LAST_DATE:
        raise ValidationError(
            _l("Enter a date between %(first)s and %(last)s.")
            % {"first": FIRST_DATE.year, "last": LAST_DATE.year}
        )


class BookingForm(FlaskForm):
    """A booking request in the venue's local time; the engine judges the rules."""

    group = SelectField(_l("For group"), coerce=str, validate_choice=False)
    date = DateField(_l("Date"), validators=[InputRequired(), _sane_date])
    start = StringField(_l("From"), validators=[InputRequired(), TIME])
    end = StringField(_l("Until"), validators=[InputRequired(), TIME])
    units = IntegerField(
        _l("Units (courts, tables…)"), default=1, validators=[InputRequired(), NumberRange(1, 100)]
    )
    headcount = IntegerField(_l("Headcount"), validators=[Optional(), NumberRange(1, 10000)])
    purpose = TextAreaField(
        _l("Purpose"),
        validators=[
            Optional(),
            Length(
                max=2000,
                message=_l(
                    "The purpose may have at most %(max)d characters (this one has %(length)d)."
                ),
            ),
        ],
    )
    repeat = SelectField(
        _l("Repeat"),
        default="",
        choices=options(
            [
                ("", _l("Does not repeat")),
                ("daily", _l("Daily")),
                ("weekly", _l("Weekly")),
                ("biweekly", _l("Every two weeks")),
            ]
        ),
    )
    count = IntegerField(_l("Number of dates"), validators=[Optional(), NumberRange(1, 104)])
    until = DateField(_l("Until date"), validators=[Optional(), _sane_date])
    policy = SelectField(
        _l("If some dates are taken"),
        default="all_or_nothing",
        choices=options(
            [
                ("all_or_nothing", _l("Book none of them")),
                ("skip_conflicts", _l("Book the free dates only")),
            ]
        ),
    )


class RescheduleForm(FlaskForm):
    date = DateField(_l("Date"), validators=[InputRequired(), _sane_date])
    start = StringField(_l("From"), validators=[InputRequired(), TIME])
    end = StringField(_l("Until"), validators=[InputRequired(), TIME])


class ReasonForm(FlaskForm):
    reason = StringField(
        _l("Reason"),
        validators=[
            Optional(),
            Length(
                max=200,
                message=_l(
                    "The reason may have at most %(max)d characters (this one has %(length)d)."
                ),
            ),
        ],
    )
    scope = SelectField(
        _l("Which dates"),
        default="one",
        choices=options(
            [
                ("one", _l("Only this one")),
                ("following", _l("This and the following")),
                ("series", _l("The whole series")),
            ]
        ),
    )
