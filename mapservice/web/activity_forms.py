"""Forms of the activity pages (checks of one field here; the activity's rules in
``core/activities.py`` and ``operations/activities.py``, attached back to these fields)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from mapservice.web.forms import TIME, _sane_date, options


class ActivityForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=[], validate_choice=True)
    lead_unit_id = SelectField(_l("Lead unit"), choices=[], validate_choice=False)
    date = DateField(_l("Date"), validators=[InputRequired(), _sane_date])
    start = StringField(_l("From"), validators=[InputRequired(), TIME])
    end = StringField(_l("Until"), validators=[InputRequired(), TIME])
    capacity = IntegerField(_l("Capacity (people)"), validators=[InputRequired()])
    deadline_date = DateField(_l("Sign-up deadline"), validators=[Optional(), _sane_date])
    deadline_time = StringField(_l("Deadline time"), validators=[Optional(), TIME])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=4000)])
    place = SelectField(
        _l("Where"),
        default="venue",
        choices=options([("venue", _l("At a venue (booked now)")), ("site", _l("At a site"))]),
    )
    venue_id = SelectField(_l("Venue"), choices=[], validate_choice=False)
    site_lon = FloatField(_l("Longitude"), validators=[Optional()])
    site_lat = FloatField(_l("Latitude"), validators=[Optional()])
    site_area = TextAreaField(_l("Drawn area (GeoJSON polygon)"), validators=[Optional()])
    site_name = StringField(_l("Site name"), validators=[Optional(), Length(max=120)])
    site_street = StringField(_l("Community / street"), validators=[Optional(), Length(max=120)])
    plan_entry = HiddenField()
    publish = BooleanField(_l("Open for sign-up now"), default=True)
    status = SelectField(_l("Status"), choices=[], validate_choice=False)


class SignUpForm(FlaskForm):
    headcount = IntegerField(_l("Headcount"), validators=[InputRequired()])
    group = SelectField(_l("Signing up"), choices=[], validate_choice=False)
    note = StringField(_l("Note"), validators=[Optional(), Length(max=200)])


class CancelActivityForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])
